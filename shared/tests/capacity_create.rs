//! capacity-create against the local emulator: create (output pinned), a re-run with zero
//! mutating calls, a changed instance type (one new template version, one group update), an AMI
//! update reported with both AMIs, a pinned AMI checked (it exists, its architecture, EBS), a
//! desired count managed scaling chose kept, dry run, refusals of what is not ours or another
//! cluster's, capacity made before the cluster tag adopted, delete leaves nothing.

use ecskit::capacity_create::{Args, CapacityCreate};
use ecskit::output::OutputFormat;
use ecskit_testkit::LocalStack;

/// The ECS-optimized Amazon Linux 2023 x86_64 AMI that moto's copy of the public SSM
/// parameter names (moto 5.2.5).
const AMI: &str = "ami-0d66bfd8d204c3aed";

async fn run(a: Args) -> ecskit::Result<ecskit::Report> {
    ecskit::step::run_from_flags::<CapacityCreate>(&a).await
}

fn args(stack: &LocalStack, extra: &[&str]) -> Args {
    let mut all = vec!["--cluster", "acme", "--name", "acme-ec2"];
    all.extend_from_slice(extra);
    stack.parse("capacity-create", &all)
}

struct Seen {
    template_id: Option<String>,
    template_versions: i64,
    group: Option<aws_sdk_autoscaling::types::AutoScalingGroup>,
    provider: Option<aws_sdk_ecs::types::CapacityProvider>,
    cluster_providers: Vec<String>,
    cluster_strategy: Vec<String>,
}

/// What the emulator holds under the name `acme-ec2` and in cluster `acme`.
async fn seen(stack: &LocalStack) -> Seen {
    let ctx = stack.ctx(false).await;
    let tpl = ctx
        .ec2()
        .describe_launch_templates()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("launch-template-name")
                .values("acme-ec2")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tpl = tpl.launch_templates().first();
    let group = ctx
        .autoscaling()
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("acme-ec2")
        .send()
        .await
        .unwrap()
        .auto_scaling_groups()
        .first()
        .cloned();
    let provider = ctx
        .ecs()
        .describe_capacity_providers()
        .capacity_providers("acme-ec2")
        .send()
        .await
        .unwrap()
        .capacity_providers()
        .first()
        .cloned();
    let cluster = ctx
        .ecs()
        .describe_clusters()
        .clusters("acme")
        .send()
        .await
        .unwrap()
        .clusters()
        .first()
        .cloned();
    Seen {
        template_id: tpl.and_then(|t| t.launch_template_id().map(str::to_string)),
        template_versions: tpl.and_then(|t| t.latest_version_number()).unwrap_or(0),
        group,
        provider,
        cluster_providers: cluster
            .as_ref()
            .map(|c| c.capacity_providers().to_vec())
            .unwrap_or_default(),
        cluster_strategy: cluster
            .as_ref()
            .map(|c| {
                c.default_capacity_provider_strategy()
                    .iter()
                    .map(|s| format!("{}:{}", s.capacity_provider(), s.weight()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

async fn network(stack: &LocalStack) -> (String, String) {
    let (mut subnets, sg) = stack.default_network().await;
    subnets.sort();
    (subnets.join(","), sg)
}

#[tokio::test]
async fn creates_template_group_and_provider_then_a_rerun_changes_nothing() {
    let stack = ecskit_testkit::local_stack();
    let (subnets, sg) = network(&stack).await;
    let report = run(args(&stack, &[])).await.unwrap();
    let s = seen(&stack).await;
    let lt = s.template_id.clone().unwrap();
    let group = s.group.clone().unwrap();
    assert_eq!(
        report.render(OutputFormat::Text),
        format!(
            "  create launch template acme-ec2 ({AMI}, t3.small, ecsInstanceRole-profile)\n  \
             create Auto Scaling group acme-ec2 (0..2 instances, desired 0, t3.small)\n  \
             create capacity provider acme-ec2 over Auto Scaling group acme-ec2 (managed scaling to 100%, managed termination protection)\n  \
             create cluster acme (FARGATE, FARGATE_SPOT)\n  \
             add capacity provider acme-ec2 to cluster acme as its default strategy (acme-ec2:1)\n\
             changed: true\n\
             capacity_provider_name: acme-ec2\n\
             capacity_provider_arn: arn:aws:ecs:us-west-2:123456789012:capacity-provider/acme-ec2\n\
             auto_scaling_group_name: acme-ec2\n\
             launch_template_id: {lt}\n\
             launch_template_version: 1\n\
             ami_id: {AMI}\n"
        )
    );
    // The template version holds what the instances need to join the cluster.
    let ctx = stack.ctx(false).await;
    let v = ctx
        .ec2()
        .describe_launch_template_versions()
        .launch_template_id(&lt)
        .versions("1")
        .send()
        .await
        .unwrap();
    let data = v.launch_template_versions()[0]
        .launch_template_data()
        .unwrap();
    assert_eq!(data.image_id(), Some(AMI));
    assert_eq!(
        data.iam_instance_profile().and_then(|p| p.name()),
        Some("ecsInstanceRole-profile")
    );
    assert_eq!(
        data.metadata_options()
            .and_then(|m| m.http_tokens())
            .map(|t| t.as_str()),
        Some("required")
    );
    assert_eq!(data.security_group_ids(), std::slice::from_ref(&sg));
    let root = data.block_device_mappings()[0].ebs().unwrap();
    assert_eq!(
        (root.encrypted(), root.volume_size()),
        (Some(true), Some(30))
    );
    use base64::Engine;
    let user_data = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(data.user_data().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(user_data, ecskit::capacity_create::user_data("acme"));
    // The group pins the version, protects new instances, spans the default subnets.
    let spec = group.launch_template().unwrap();
    assert_eq!(
        (spec.launch_template_id(), spec.version()),
        (Some(lt.as_str()), Some("1"))
    );
    assert_eq!(group.new_instances_protected_from_scale_in(), Some(true));
    let mut group_subnets: Vec<&str> = group.vpc_zone_identifier().unwrap().split(',').collect();
    group_subnets.sort();
    assert_eq!(group_subnets.join(","), subnets);
    let provider = s.provider.unwrap();
    let asg = provider.auto_scaling_group_provider().unwrap();
    assert_eq!(
        asg.auto_scaling_group_arn(),
        group.auto_scaling_group_arn().unwrap()
    );
    assert_eq!(
        asg.managed_termination_protection().map(|m| m.as_str()),
        Some("ENABLED")
    );
    assert_eq!(s.cluster_providers, ["FARGATE", "FARGATE_SPOT", "acme-ec2"]);
    assert_eq!(s.cluster_strategy, ["acme-ec2:1"]);

    let again = run(args(&stack, &[])).await.unwrap();
    assert!(!again.changed, "{:?}", again.actions);
    assert_eq!(again.calls.mutating, 0);
    assert_eq!(
        again.get_str("LAUNCH_TEMPLATE_VERSION").as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn a_new_instance_type_is_one_new_template_version_and_one_group_update() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &[])).await.unwrap();
    let report = run(args(&stack, &["--instance-type", "t3.medium"]))
        .await
        .unwrap();
    assert_eq!(
        report.actions,
        [
            "create launch template acme-ec2 version 2 (instance type t3.small -> t3.medium)",
            "update Auto Scaling group acme-ec2 (launch template version 1 -> 2)",
        ]
    );
    assert_eq!(report.calls.mutating, 2);
    assert_eq!(
        report.get_str("LAUNCH_TEMPLATE_VERSION").as_deref(),
        Some("2")
    );
    assert_eq!(report.get_str("PREVIOUS_AMI_ID"), None);
    let s = seen(&stack).await;
    assert_eq!(s.template_versions, 2);
    assert_eq!(
        s.group.unwrap().launch_template().unwrap().version(),
        Some("2")
    );
    let again = run(args(&stack, &["--instance-type", "t3.medium"]))
        .await
        .unwrap();
    assert_eq!(again.calls.mutating, 0, "{:?}", again.actions);
}

#[tokio::test]
async fn a_new_ami_is_a_new_version_reported_with_the_old_and_new_ami() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &[])).await.unwrap();
    let report = run(args(&stack, &["--ami", "ami-04681a1dbd79675a5"]))
        .await
        .unwrap();
    assert_eq!(
        report.actions,
        [
            format!(
                "create launch template acme-ec2 version 2 (image {AMI} -> ami-04681a1dbd79675a5)"
            ),
            "update Auto Scaling group acme-ec2 (launch template version 1 -> 2)".to_string(),
        ]
    );
    assert_eq!(
        report.get_str("AMI_ID").as_deref(),
        Some("ami-04681a1dbd79675a5")
    );
    assert_eq!(report.get_str("PREVIOUS_AMI_ID").as_deref(), Some(AMI));
}

#[tokio::test]
async fn spot_and_several_types_make_a_mixed_instances_group() {
    let stack = ecskit_testkit::local_stack();
    let report = run(args(
        &stack,
        &[
            "--instance-type",
            "m7g.large,m6g.large",
            "--spot",
            "--max-size",
            "4",
        ],
    ))
    .await
    .unwrap();
    // The arm64 AMI, from its own parameter.
    assert_eq!(
        report.get_str("AMI_ID").as_deref(),
        Some("ami-0737f91f0e0a2dae7")
    );
    let group = seen(&stack).await.group.unwrap();
    let mixed = group.mixed_instances_policy().unwrap();
    let types: Vec<&str> = mixed
        .launch_template()
        .unwrap()
        .overrides()
        .iter()
        .filter_map(|o| o.instance_type())
        .collect();
    assert_eq!(types, ["m7g.large", "m6g.large"]);
    assert_eq!(
        mixed
            .instances_distribution()
            .and_then(|d| d.on_demand_percentage_above_base_capacity()),
        Some(0)
    );
    let again = run(args(
        &stack,
        &[
            "--instance-type",
            "m7g.large,m6g.large",
            "--spot",
            "--max-size",
            "4",
        ],
    ))
    .await
    .unwrap();
    assert_eq!(again.calls.mutating, 0, "{:?}", again.actions);
}

#[tokio::test]
async fn a_dry_run_reads_and_changes_nothing() {
    let stack = ecskit_testkit::local_stack();
    let report = run(args(&stack, &["--dry-run"])).await.unwrap();
    assert!(report.changed && report.dry_run);
    assert_eq!(report.calls.mutating, 0);
    assert_eq!(report.actions.len(), 5, "{:?}", report.actions);
    let s = seen(&stack).await;
    assert!(s.template_id.is_none() && s.group.is_none() && s.provider.is_none());
}

#[tokio::test]
async fn a_group_of_that_name_that_is_not_ours_is_refused_before_any_change() {
    let stack = ecskit_testkit::local_stack();
    let (subnets, _) = network(&stack).await;
    let ctx = stack.ctx(false).await;
    ctx.ec2()
        .create_launch_template()
        .launch_template_name("theirs")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(AMI)
                .build(),
        )
        .send()
        .await
        .unwrap();
    ctx.autoscaling()
        .create_auto_scaling_group()
        .auto_scaling_group_name("acme-ec2")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("theirs")
                .build(),
        )
        .min_size(0)
        .max_size(1)
        .vpc_zone_identifier(subnets)
        .send()
        .await
        .unwrap();
    let err = run(args(&stack, &[])).await.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.render().contains("Auto Scaling group acme-ec2"),
        "{err}"
    );
    assert!(seen(&stack).await.template_id.is_none());
    // Nor is it deleted.
    let err = run(args(&stack, &["--delete"])).await.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(seen(&stack).await.group.is_some());
}

#[tokio::test]
async fn a_template_of_that_name_that_is_not_ours_is_refused() {
    let stack = ecskit_testkit::local_stack();
    stack
        .ctx(false)
        .await
        .ec2()
        .create_launch_template()
        .launch_template_name("acme-ec2")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(AMI)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let err = run(args(&stack, &[])).await.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.render().contains("launch template acme-ec2"), "{err}");
    assert_eq!(seen(&stack).await.template_versions, 1);
    assert!(seen(&stack).await.group.is_none());
}

#[tokio::test]
async fn delete_leaves_nothing_and_a_second_delete_changes_nothing() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &[])).await.unwrap();
    let report = run(args(&stack, &["--delete"])).await.unwrap();
    assert_eq!(
        report.actions,
        [
            "remove capacity provider acme-ec2 from cluster acme",
            "delete capacity provider acme-ec2",
            "delete Auto Scaling group acme-ec2 and its instances",
            "delete launch template acme-ec2",
        ]
    );
    let s = seen(&stack).await;
    assert!(s.template_id.is_none() && s.group.is_none() && s.provider.is_none());
    assert_eq!(s.cluster_providers, ["FARGATE", "FARGATE_SPOT"]);
    assert!(s.cluster_strategy.is_empty());
    let again = run(args(&stack, &["--delete"])).await.unwrap();
    assert!(!again.changed);
    assert_eq!(again.calls.mutating, 0);
}

/// Capacity made for one cluster is never moved to another by a run that names another (a
/// forgotten --cluster, a renamed stack): exit 2 before any change, naming both clusters.
#[tokio::test]
async fn capacity_made_for_one_cluster_is_not_moved_to_another() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &[])).await.unwrap();
    let other = stack.parse(
        "capacity-create",
        &["--cluster", "other", "--name", "acme-ec2"],
    );
    let err = run(other).await.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert_eq!(
        err.to_string(),
        "launch template acme-ec2 belongs to cluster acme (tagged ecskit:cluster=acme), not other: this run does not change or delete it"
    );
    let s = seen(&stack).await;
    assert_eq!(s.template_versions, 1, "no new template version");
    assert_eq!(
        s.group.unwrap().launch_template().unwrap().version(),
        Some("1")
    );
}

/// The `ecskit:cluster` tag of each of the three resources, as the emulator holds them.
async fn cluster_tags(stack: &LocalStack) -> [Option<String>; 3] {
    let ctx = stack.ctx(false).await;
    let s = seen(stack).await;
    let tpl = ctx
        .ec2()
        .describe_launch_templates()
        .launch_template_ids(s.template_id.unwrap())
        .send()
        .await
        .unwrap();
    let find = |k: &str, v: &str| (k == "ecskit:cluster").then(|| v.to_string());
    let t = tpl.launch_templates()[0]
        .tags()
        .iter()
        .find_map(|t| find(t.key().unwrap_or_default(), t.value().unwrap_or_default()));
    let g = s
        .group
        .unwrap()
        .tags()
        .iter()
        .find_map(|t| find(t.key().unwrap_or_default(), t.value().unwrap_or_default()));
    let p = ctx
        .ecs()
        .describe_capacity_providers()
        .capacity_providers("acme-ec2")
        .include(aws_sdk_ecs::types::CapacityProviderField::Tags)
        .send()
        .await
        .unwrap()
        .capacity_providers()[0]
        .tags()
        .iter()
        .find_map(|t| find(t.key().unwrap_or_default(), t.value().unwrap_or_default()));
    [t, g, p]
}

/// Two clusters' capacity of one name: everything the step makes is tagged with its cluster,
/// and a delete (or an update) for another cluster is refused before any change, naming the
/// resource and the cluster it belongs to; nothing of the first cluster's is touched.
#[tokio::test]
async fn another_clusters_capacity_is_neither_changed_nor_deleted() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &[])).await.unwrap();
    let acme = Some("acme".to_string());
    assert_eq!(
        cluster_tags(&stack).await,
        [acme.clone(), acme.clone(), acme]
    );
    for extra in [&["--delete"][..], &["--max-size", "5"][..]] {
        let mut all = vec!["--cluster", "beta", "--name", "acme-ec2"];
        all.extend_from_slice(extra);
        let err = run(stack.parse("capacity-create", &all)).await.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{}", err.render());
        assert_eq!(
            err.to_string(),
            "launch template acme-ec2 belongs to cluster acme (tagged ecskit:cluster=acme), not beta: this run does not change or delete it",
            "{extra:?}"
        );
        assert!(err.render().contains("--cluster acme"), "{}", err.render());
    }
    let s = seen(&stack).await;
    assert!(s.template_id.is_some() && s.group.is_some() && s.provider.is_some());
    assert_eq!(s.group.unwrap().max_size(), Some(2));
    assert_eq!(s.cluster_providers, ["FARGATE", "FARGATE_SPOT", "acme-ec2"]);
}

/// Capacity an earlier ecskit made (tagged managed-by=ecskit, without the cluster tag) and whose
/// instances join this cluster is taken as this cluster's: tagged once, then left alone.
#[tokio::test]
async fn capacity_made_before_the_cluster_tag_is_adopted_by_its_cluster() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &[])).await.unwrap();
    let ctx = stack.ctx(false).await;
    let s = seen(&stack).await;
    // moto answers a launch template's tags as they were at its creation (CreateTags and
    // DeleteTags do not reach DescribeLaunchTemplates), so the template keeps its tag here and
    // the group and provider show the adoption.
    ctx.autoscaling()
        .delete_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id("acme-ec2")
                .resource_type("auto-scaling-group")
                .key("ecskit:cluster")
                .build(),
        )
        .send()
        .await
        .unwrap();
    ctx.ecs()
        .untag_resource()
        .resource_arn(s.provider.unwrap().capacity_provider_arn().unwrap())
        .tag_keys("ecskit:cluster")
        .send()
        .await
        .unwrap();
    let acme = Some("acme".to_string());
    assert_eq!(cluster_tags(&stack).await, [acme.clone(), None, None]);
    let report = run(args(&stack, &[])).await.unwrap();
    assert_eq!(
        report.actions,
        [
            "tag Auto Scaling group acme-ec2 ecskit:cluster=acme (made before ecskit tagged the cluster)",
            "tag capacity provider acme-ec2 ecskit:cluster=acme (made before ecskit tagged the cluster)",
        ]
    );
    let acme = Some("acme".to_string());
    assert_eq!(
        cluster_tags(&stack).await,
        [acme.clone(), acme.clone(), acme]
    );
    let again = run(args(&stack, &[])).await.unwrap();
    assert_eq!(again.calls.mutating, 0, "{:?}", again.actions);
}

/// A pinned --ami is read (DescribeImages) before any change: one that does not exist, one of
/// the other architecture than the instance types, and one not backed by EBS are bad input.
/// moto's default AMIs give one of each.
#[tokio::test]
async fn a_pinned_ami_is_checked_before_any_change() {
    let stack = ecskit_testkit::local_stack();
    for (ami, types, want) in [
        (
            "ami-0123456789abcdef0",
            "t3.small",
            "--ami ami-0123456789abcdef0: no such AMI in this region (or not shared with this account)",
        ),
        (
            "ami-0e9271c829888680e",
            "t3.small",
            "--ami ami-0e9271c829888680e: the AMI is for arm64, the instance types are x86_64",
        ),
        (
            "ami-04681a1dbd79675a5",
            "t4g.small",
            "--ami ami-04681a1dbd79675a5: the AMI is for x86_64, the instance types are arm64",
        ),
        (
            "ami-04681a1dbd79675b6",
            "t3.small",
            "--ami ami-04681a1dbd79675b6: its root device is instance-store, not ebs: the template's encrypted gp3 root volume needs an EBS-backed AMI",
        ),
    ] {
        let err = run(args(&stack, &["--ami", ami, "--instance-type", types]))
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 2, "{}", err.render());
        assert_eq!(err.to_string(), want);
        let s = seen(&stack).await;
        assert!(s.template_id.is_none() && s.group.is_none() && s.provider.is_none());
    }
    // The arm64 one with Graviton types is taken.
    let report = run(args(
        &stack,
        &[
            "--ami",
            "ami-0e9271c829888680e",
            "--instance-type",
            "t4g.small",
        ],
    ))
    .await
    .unwrap();
    assert_eq!(
        report.get_str("AMI_ID").as_deref(),
        Some("ami-0e9271c829888680e")
    );
}

/// Once the capacity provider's managed scaling runs the group, the desired count ECS set is not
/// drift: a re-run with the same --desired-capacity (as a stack passes on every deploy) makes no
/// call that changes anything. New sizes that leave the count outside them do set it.
#[tokio::test]
async fn a_desired_count_managed_scaling_chose_is_kept() {
    let stack = ecskit_testkit::local_stack();
    let flags = ["--desired-capacity", "0", "--max-size", "3"];
    run(args(&stack, &flags)).await.unwrap();
    // What managed scaling does when tasks need an instance.
    let ctx = stack.ctx(false).await;
    ctx.autoscaling()
        .set_desired_capacity()
        .auto_scaling_group_name("acme-ec2")
        .desired_capacity(2)
        .send()
        .await
        .unwrap();
    let again = run(args(&stack, &flags)).await.unwrap();
    assert!(!again.changed, "{:?}", again.actions);
    assert_eq!(again.calls.mutating, 0);
    assert_eq!(
        seen(&stack).await.group.unwrap().desired_capacity(),
        Some(2)
    );
    // A max below the count: the count is set to the given one.
    let report = run(args(
        &stack,
        &["--desired-capacity", "0", "--max-size", "1"],
    ))
    .await
    .unwrap();
    assert_eq!(
        report.actions,
        ["update Auto Scaling group acme-ec2 (size 0..3 -> 0..1, desired 2 -> 0)"]
    );
}

/// The cluster's status, or None when ECS no longer knows it.
async fn cluster_status(stack: &LocalStack, name: &str) -> Option<String> {
    let ctx = stack.ctx(false).await;
    let out = ctx
        .ecs()
        .describe_clusters()
        .clusters(name)
        .send()
        .await
        .unwrap();
    out.clusters()
        .first()
        .and_then(|c| c.status().map(str::to_string))
        .filter(|s| s != "INACTIVE")
}

/// `--delete --delete-cluster` (what `cargo xtask destroy` runs for a stack's capacity) takes
/// the cluster with it when ecskit made it and it is left empty; a cluster made by hand stays.
#[tokio::test]
async fn delete_cluster_removes_only_a_cluster_ecskit_made() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &[])).await.unwrap();
    let report = run(args(&stack, &["--delete", "--delete-cluster"]))
        .await
        .unwrap();
    assert_eq!(
        report.actions.last().map(String::as_str),
        Some("delete cluster acme"),
        "{:?}",
        report.actions
    );
    assert_eq!(cluster_status(&stack, "acme").await, None);

    let ctx = stack.ctx(false).await;
    ctx.ecs()
        .create_cluster()
        .cluster_name("by-hand")
        .send()
        .await
        .unwrap();
    let mine = |extra: &[&str]| {
        let mut all = vec!["--cluster", "by-hand", "--name", "hand-ec2"];
        all.extend_from_slice(extra);
        stack.parse("capacity-create", &all)
    };
    run(mine(&[])).await.unwrap();
    let report = run(mine(&["--delete", "--delete-cluster"])).await.unwrap();
    assert!(
        !report.actions.iter().any(|a| a.contains("delete cluster")),
        "{:?}",
        report.actions
    );
    assert_eq!(
        cluster_status(&stack, "by-hand").await.as_deref(),
        Some("ACTIVE")
    );

    // A cluster ecskit made that holds a container instance of another (not the group's): the
    // instance is not deregistered, and the cluster is left. (The group has an instance of its
    // own, so its instances are looked for among the cluster's.)
    run(args(&stack, &["--desired-capacity", "1"]))
        .await
        .unwrap();
    let other = ctx
        .ec2()
        .run_instances()
        .image_id("ami-04681a1dbd79675a5")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Small)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let other = other.instances()[0].instance_id().unwrap();
    let document = serde_json::json!({
        "instanceId": other,
        "region": "us-west-2",
        "accountId": "123456789012",
    });
    ctx.ecs()
        .register_container_instance()
        .cluster("acme")
        .instance_identity_document(document.to_string())
        .send()
        .await
        .unwrap();
    let report = run(args(&stack, &["--delete", "--delete-cluster"]))
        .await
        .unwrap();
    assert!(
        !report
            .actions
            .iter()
            .any(|a| a.contains("delete cluster") || a.contains("deregister")),
        "{:?}",
        report.actions
    );
    assert_eq!(
        cluster_status(&stack, "acme").await.as_deref(),
        Some("ACTIVE")
    );
}

/// The ECS trust of an infrastructure role, as a user would write it.
const ECS_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A role `NAME-infrastructure` made outside the step, with `tags`.
async fn infrastructure_role(stack: &LocalStack, name: &str, tags: &[(&str, &str)]) {
    let ctx = stack.ctx(false).await;
    let mut call = ctx
        .iam()
        .create_role()
        .role_name(format!("{name}-infrastructure"))
        .assume_role_policy_document(ECS_TRUST);
    for (k, v) in tags {
        call = call.tags(
            aws_sdk_iam::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap(),
        );
    }
    call.send().await.unwrap();
}

/// The role's tags, sorted, and its attached policies; None when it is gone.
async fn role_state(stack: &LocalStack, name: &str) -> Option<(Vec<(String, String)>, usize)> {
    let ctx = stack.ctx(false).await;
    let role = ctx
        .iam()
        .get_role()
        .role_name(format!("{name}-infrastructure"))
        .send()
        .await
        .ok()?
        .role?;
    let mut tags: Vec<(String, String)> = role
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    tags.sort();
    let attached = ctx
        .iam()
        .list_attached_role_policies()
        .role_name(format!("{name}-infrastructure"))
        .send()
        .await
        .unwrap()
        .attached_policies()
        .len();
    Some((tags, attached))
}

fn managed_args(stack: &LocalStack, cluster: &str, name: &str, extra: &[&str]) -> Args {
    let mut all = vec!["--cluster", cluster, "--name", name, "--managed"];
    all.extend_from_slice(extra);
    stack.parse("capacity-create", &all)
}

/// `--managed` never takes over an infrastructure role ecskit did not make: one without the
/// managed-by=ecskit tag (that is not already an ECS infrastructure role with the policy) is
/// refused before any change, and `--managed --delete` leaves it.
#[tokio::test]
async fn a_managed_run_neither_changes_nor_deletes_an_infrastructure_role_it_did_not_make() {
    let stack = ecskit_testkit::local_stack();
    let ctx = stack.ctx(false).await;
    ctx.iam()
        .create_instance_profile()
        .instance_profile_name("mi-profile")
        .send()
        .await
        .unwrap();
    infrastructure_role(&stack, "hand-mi", &[("team", "infra")]).await;
    let before = role_state(&stack, "hand-mi").await;
    let err = run(managed_args(
        &stack,
        "acme",
        "hand-mi",
        &["--instance-profile", "mi-profile"],
    ))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string()
            .starts_with("role hand-mi-infrastructure exists and is not tagged managed-by=ecskit"),
        "{err}"
    );
    assert_eq!(role_state(&stack, "hand-mi").await, before);
    assert_eq!(cluster_status(&stack, "acme").await, None);

    let report = run(managed_args(&stack, "acme", "hand-mi", &["--delete"]))
        .await
        .unwrap();
    assert!(report.actions.is_empty(), "{:?}", report.actions);
    assert_eq!(role_state(&stack, "hand-mi").await, before);
    // Not even with this cluster's tag: managed-by=ecskit is what says ecskit made it.
    infrastructure_role(&stack, "tagged-mi", &[("ecskit:cluster", "us-west-2/acme")]).await;
    let report = run(managed_args(&stack, "acme", "tagged-mi", &["--delete"]))
        .await
        .unwrap();
    assert!(report.actions.is_empty(), "{:?}", report.actions);
    assert!(role_state(&stack, "tagged-mi").await.is_some());
}

/// The infrastructure role is global: one ecskit made for another cluster (another region's,
/// or another cluster with the same --name) is neither converged nor deleted by this one; this
/// cluster's own is deleted with its provider.
#[tokio::test]
async fn an_infrastructure_role_made_for_another_cluster_is_neither_changed_nor_deleted() {
    let stack = ecskit_testkit::local_stack();
    let ctx = stack.ctx(false).await;
    ctx.iam()
        .create_instance_profile()
        .instance_profile_name("mi-profile")
        .send()
        .await
        .unwrap();
    infrastructure_role(
        &stack,
        "shared-mi",
        &[
            ("managed-by", "ecskit"),
            ("ecskit:cluster", "us-west-2/other"),
        ],
    )
    .await;
    let before = role_state(&stack, "shared-mi").await;
    let err = run(managed_args(
        &stack,
        "acme",
        "shared-mi",
        &["--instance-profile", "mi-profile"],
    ))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string().starts_with(
            "role shared-mi-infrastructure was made by ecskit for cluster us-west-2/other, not us-west-2/acme"
        ),
        "{err}"
    );
    assert_eq!(role_state(&stack, "shared-mi").await, before);
    let err = run(managed_args(&stack, "acme", "shared-mi", &["--delete"]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert_eq!(role_state(&stack, "shared-mi").await, before);

    // Made before the cluster tag: not known to be this cluster's alone, so left.
    infrastructure_role(&stack, "old-mi", &[("managed-by", "ecskit")]).await;
    let report = run(managed_args(&stack, "acme", "old-mi", &["--delete"]))
        .await
        .unwrap();
    assert!(report.actions.is_empty(), "{:?}", report.actions);
    assert!(role_state(&stack, "old-mi").await.is_some());

    // This cluster's own goes with its provider (none here).
    infrastructure_role(
        &stack,
        "own-mi",
        &[
            ("managed-by", "ecskit"),
            ("ecskit:cluster", "us-west-2/acme"),
        ],
    )
    .await;
    let report = run(managed_args(&stack, "acme", "own-mi", &["--delete"]))
        .await
        .unwrap();
    assert_eq!(
        report.actions,
        ["delete role own-mi-infrastructure"],
        "{:?}",
        report.actions
    );
    assert_eq!(role_state(&stack, "own-mi").await, None);
}

/// A dry run of `--delete --delete-cluster` says what the real run does: the group's container
/// instance is deregistered, then the cluster goes (in the dry run it is still registered, so it
/// is not counted against the delete); nothing changes.
#[tokio::test]
async fn a_dry_run_delete_cluster_says_the_cluster_goes_once_the_groups_instances_are_deregistered()
{
    let stack = ecskit_testkit::local_stack();
    let dry = |extra: &[&str]| {
        let mut all = vec!["--cluster", "dry", "--name", "acme-ec2"];
        all.extend_from_slice(extra);
        stack.parse("capacity-create", &all)
    };
    run(dry(&["--desired-capacity", "1"])).await.unwrap();
    let ctx = stack.ctx(false).await;
    let group = ctx
        .autoscaling()
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("acme-ec2")
        .send()
        .await
        .unwrap();
    let instance = group.auto_scaling_groups()[0].instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let document = serde_json::json!({
        "instanceId": instance,
        "region": "us-west-2",
        "accountId": "123456789012",
    });
    ctx.ecs()
        .register_container_instance()
        .cluster("dry")
        .instance_identity_document(document.to_string())
        .send()
        .await
        .unwrap();
    let report = run(dry(&["--delete", "--delete-cluster", "--dry-run"]))
        .await
        .unwrap();
    assert_eq!(
        report.actions.last().map(String::as_str),
        Some("delete cluster dry once its 1 container instance(s) are deregistered"),
        "{:?}",
        report.actions
    );
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.starts_with(&format!("deregister container instance {instance}"))),
        "{:?}",
        report.actions
    );
    assert_eq!(
        cluster_status(&stack, "dry").await.as_deref(),
        Some("ACTIVE")
    );
}

/// An untagged `NAME-infrastructure` that already is an infrastructure role (trusted by ECS,
/// with the policy) is used as it is: no call changes it, the provider is planned with it. One
/// with the policy but another trust is refused.
#[tokio::test]
async fn an_untagged_infrastructure_role_that_fits_is_used_as_it_is() {
    let stack = ecskit_testkit::local_stack();
    let ctx = stack.ctx(false).await;
    ctx.iam()
        .create_instance_profile()
        .instance_profile_name("mi-profile")
        .send()
        .await
        .unwrap();
    let policy = "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForManagedInstances";
    infrastructure_role(&stack, "asis-mi", &[]).await;
    ctx.iam()
        .attach_role_policy()
        .role_name("asis-mi-infrastructure")
        .policy_arn(policy)
        .send()
        .await
        .unwrap();
    let before = role_state(&stack, "asis-mi").await;
    let report = run(managed_args(
        &stack,
        "acme",
        "asis-mi",
        &["--instance-profile", "mi-profile", "--dry-run"],
    ))
    .await
    .unwrap();
    assert!(
        !report.actions.iter().any(|a| a.contains("role")),
        "{:?}",
        report.actions
    );
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.starts_with("create capacity provider asis-mi")),
        "{:?}",
        report.actions
    );
    assert_eq!(role_state(&stack, "asis-mi").await, before);

    ctx.iam()
        .create_role()
        .role_name("ec2-mi-infrastructure")
        .assume_role_policy_document(ECS_TRUST.replace("ecs.amazonaws.com", "ec2.amazonaws.com"))
        .send()
        .await
        .unwrap();
    ctx.iam()
        .attach_role_policy()
        .role_name("ec2-mi-infrastructure")
        .policy_arn(policy)
        .send()
        .await
        .unwrap();
    let err = run(managed_args(
        &stack,
        "acme",
        "ec2-mi",
        &["--instance-profile", "mi-profile"],
    ))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
}

/// IAM is account-wide and the role's cluster tag is `REGION/CLUSTER`: the role cluster `acme`
/// of us-east-1 made is refused by cluster `acme` of us-west-2 (exit 2, unchanged), and so is
/// us-west-2's `--delete`, so one region's delete never removes the other's role. (The
/// emulator has no Managed Instances: the us-east-1 run stops at the provider, after the role.)
#[tokio::test]
async fn an_infrastructure_role_made_for_the_same_cluster_in_another_region_is_refused() {
    use clap::Parser;
    let stack = ecskit_testkit::local_stack();
    let ctx = stack.ctx(false).await;
    ctx.iam()
        .create_instance_profile()
        .instance_profile_name("mi-profile")
        .send()
        .await
        .unwrap();
    let east = Args::try_parse_from([
        "capacity-create",
        "--region",
        "us-east-1",
        "--endpoint-url",
        &stack.moto_url,
        "--cluster",
        "acme",
        "--name",
        "twin-mi",
        "--managed",
        "--instance-profile",
        "mi-profile",
    ])
    .unwrap();
    let _ = run(east).await;
    let before = role_state(&stack, "twin-mi").await;
    assert_eq!(
        before.as_ref().map(|(tags, _)| tags[0].clone()),
        Some(("ecskit:cluster".to_string(), "us-east-1/acme".to_string()))
    );
    let err = run(managed_args(
        &stack,
        "acme",
        "twin-mi",
        &["--instance-profile", "mi-profile"],
    ))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string().starts_with(
            "role twin-mi-infrastructure was made by ecskit for cluster us-east-1/acme, not us-west-2/acme"
        ),
        "{err}"
    );
    assert_eq!(role_state(&stack, "twin-mi").await, before);
    let err = run(managed_args(&stack, "acme", "twin-mi", &["--delete"]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert_eq!(role_state(&stack, "twin-mi").await, before);
}

/// A role an earlier ecskit made without the cluster tag, that no capacity provider of this
/// cluster uses, may be another cluster's: it is never changed (refused before any change when
/// it lacks the policy, used as it is when it has it) and never deleted. (The emulator has no
/// Managed Instances, so no provider here uses it; taking over a role the cluster's own
/// provider uses is the unit test of `decide_role`.)
#[tokio::test]
async fn an_infrastructure_role_without_the_cluster_tag_is_neither_changed_nor_deleted() {
    let stack = ecskit_testkit::local_stack();
    let ctx = stack.ctx(false).await;
    ctx.iam()
        .create_instance_profile()
        .instance_profile_name("mi-profile")
        .send()
        .await
        .unwrap();
    infrastructure_role(&stack, "old2-mi", &[("managed-by", "ecskit")]).await;
    let trust = || async {
        stack
            .ctx(false)
            .await
            .iam()
            .get_role()
            .role_name("old2-mi-infrastructure")
            .send()
            .await
            .unwrap()
            .role
            .unwrap()
            .assume_role_policy_document
    };
    let before = (role_state(&stack, "old2-mi").await, trust().await);
    let err = run(managed_args(
        &stack,
        "acme",
        "old2-mi",
        &["--instance-profile", "mi-profile"],
    ))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string()
            .starts_with("role old2-mi-infrastructure exists and was made by an ecskit that did not tag its cluster"),
        "{err}"
    );
    assert_eq!((role_state(&stack, "old2-mi").await, trust().await), before);
    assert_eq!(cluster_status(&stack, "acme").await, None);

    // With the policy it is an infrastructure role already: used as it is, no role call.
    ctx.iam()
        .attach_role_policy()
        .role_name("old2-mi-infrastructure")
        .policy_arn("arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForManagedInstances")
        .send()
        .await
        .unwrap();
    let before = (role_state(&stack, "old2-mi").await, trust().await);
    let report = run(managed_args(
        &stack,
        "acme",
        "old2-mi",
        &["--instance-profile", "mi-profile", "--dry-run"],
    ))
    .await
    .unwrap();
    assert!(
        !report.actions.iter().any(|a| a.contains("role")),
        "{:?}",
        report.actions
    );
    let _ = run(managed_args(
        &stack,
        "acme",
        "old2-mi",
        &["--instance-profile", "mi-profile"],
    ))
    .await;
    assert_eq!((role_state(&stack, "old2-mi").await, trust().await), before);
    let report = run(managed_args(&stack, "acme", "old2-mi", &["--delete"]))
        .await
        .unwrap();
    assert!(
        !report.actions.iter().any(|a| a.contains("role")),
        "{:?}",
        report.actions
    );
    assert_eq!((role_state(&stack, "old2-mi").await, trust().await), before);
}
