//! instance-profile against the local emulator: create, converge, drift, conflicts, dry-run,
//! bad input, delete.

use ecskit::iam::policy;
use ecskit::instance_profile::{Args, InstanceProfile};

/// The step as its binary runs it.
async fn run(a: Args) -> ecskit::Result<ecskit::Report> {
    ecskit::step::run_from_flags::<InstanceProfile>(&a).await
}
use ecskit_testkit::LocalStack;

fn args(stack: &LocalStack, extra: &[&str]) -> Args {
    stack.parse("instance-profile", extra)
}

const EC2_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role";

async fn attached(stack: &LocalStack, role: &str) -> Vec<String> {
    let out = stack
        .ctx(false)
        .await
        .iam()
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    let mut v: Vec<String> = out
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    v.sort();
    v
}

async fn profile_roles(stack: &LocalStack, name: &str) -> Option<Vec<String>> {
    let out = stack
        .ctx(false)
        .await
        .iam()
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .ok()?;
    Some(
        out.instance_profile
            .unwrap()
            .roles()
            .iter()
            .map(|r| r.role_name().to_string())
            .collect(),
    )
}

#[tokio::test]
async fn creates_role_and_profile_then_a_rerun_changes_nothing() {
    let stack = ecskit_testkit::local_stack();
    let flags = [
        "--s3-read",
        "cfg-bucket/ecs",
        "--cloudwatch-logs",
        "--ecs-anywhere",
    ];
    let report = run(args(&stack, &flags)).await.unwrap();
    assert!(report.changed);
    assert_eq!(
        report.get_str("INSTANCE_ROLE_NAME").as_deref(),
        Some("ecsInstanceRole")
    );
    assert_eq!(
        report.get_str("INSTANCE_ROLE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:role/ecsInstanceRole")
    );
    assert_eq!(
        report.get_str("INSTANCE_PROFILE_NAME").as_deref(),
        Some("ecsInstanceRole-profile")
    );
    assert_eq!(
        report.get_str("INSTANCE_PROFILE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:instance-profile/ecsInstanceRole-profile")
    );
    assert_eq!(
        profile_roles(&stack, "ecsInstanceRole-profile").await,
        Some(vec!["ecsInstanceRole".to_string()])
    );
    assert_eq!(
        attached(&stack, "ecsInstanceRole").await,
        vec![
            "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore".to_string(),
            EC2_POLICY.to_string()
        ]
    );
    let iam = stack.ctx(false).await.iam();
    let logs = iam
        .get_role_policy()
        .role_name("ecsInstanceRole")
        .policy_name("ecskit-cloudwatch-logs")
        .send()
        .await
        .unwrap();
    assert!(policy::same(
        &policy::decode(logs.policy_document()).unwrap(),
        &policy::cloudwatch_logs("aws")
    ));
    let role = iam
        .get_role()
        .role_name("ecsInstanceRole")
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    let trust = policy::decode(role.assume_role_policy_document().unwrap()).unwrap();
    assert!(policy::same(
        &trust,
        &policy::service_trust(&["ssm.amazonaws.com", "ec2.amazonaws.com"])
    ));

    let again = run(args(&stack, &flags)).await.unwrap();
    assert!(!again.changed, "{:?}", again.actions);
    assert_eq!(again.calls.mutating, 0);

    // Switching to the managed S3 policy replaces the inline one; dropping --ecs-anywhere detaches SSM.
    let switched = run(args(
        &stack,
        &["--s3-read-only-managed", "--cloudwatch-logs"],
    ))
    .await
    .unwrap();
    let actions = switched.actions.join("\n");
    assert!(
        actions.contains("delete inline policy ecskit-s3-read"),
        "{actions}"
    );
    assert!(
        actions.contains("detach arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"),
        "{actions}"
    );
    assert!(
        actions.contains("update trust policy of role ecsInstanceRole"),
        "{actions}"
    );
    assert_eq!(
        attached(&stack, "ecsInstanceRole").await,
        vec![
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".to_string(),
            EC2_POLICY.to_string()
        ]
    );
}

#[tokio::test]
async fn drift_is_repaired_and_dry_run_only_plans() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &[])).await.unwrap();
    let iam = stack.ctx(false).await.iam();
    iam.detach_role_policy()
        .role_name("ecsInstanceRole")
        .policy_arn(EC2_POLICY)
        .send()
        .await
        .unwrap();
    iam.remove_role_from_instance_profile()
        .instance_profile_name("ecsInstanceRole-profile")
        .role_name("ecsInstanceRole")
        .send()
        .await
        .unwrap();

    let mut dry = args(&stack, &[]);
    dry.common.dry_run = true;
    let plan = run(dry).await.unwrap();
    assert_eq!(plan.calls.mutating, 0);
    assert_eq!(plan.actions.len(), 2, "{:?}", plan.actions);
    assert!(attached(&stack, "ecsInstanceRole").await.is_empty());

    let report = run(args(&stack, &[])).await.unwrap();
    assert_eq!(report.actions, plan.actions);
    assert_eq!(
        attached(&stack, "ecsInstanceRole").await,
        vec![EC2_POLICY.to_string()]
    );
    assert_eq!(
        profile_roles(&stack, "ecsInstanceRole-profile").await,
        Some(vec!["ecsInstanceRole".to_string()])
    );
    assert_eq!(run(args(&stack, &[])).await.unwrap().calls.mutating, 0);
}

#[tokio::test]
async fn a_profile_holding_another_role_is_refused_unless_replaced() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &["--role-name", "oldRole"]))
        .await
        .unwrap();
    let err = run(args(&stack, &[])).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let text = err.render();
    assert!(
        text.contains("oldRole")
            && text.contains("ecsInstanceRole")
            && text.contains("--replace-role"),
        "{text}"
    );
    // Refused before anything changed: the new role was not created.
    let iam = stack.ctx(false).await.iam();
    assert!(
        iam.get_role()
            .role_name("ecsInstanceRole")
            .send()
            .await
            .is_err()
    );

    let report = run(args(&stack, &["--replace-role"])).await.unwrap();
    assert!(
        report
            .actions
            .iter()
            .any(|a| a == "remove role oldRole from instance profile ecsInstanceRole-profile"),
        "{:?}",
        report.actions
    );
    assert_eq!(
        profile_roles(&stack, "ecsInstanceRole-profile").await,
        Some(vec!["ecsInstanceRole".to_string()])
    );
}

#[tokio::test]
async fn bad_input_exits_2_and_creates_nothing() {
    let stack = ecskit_testkit::local_stack();
    for (extra, needle) in [
        (vec!["--role-name", "bad name"], "--role-name"),
        (vec!["--profile-name", ""], "--profile-name"),
        (vec!["--s3-read", "Bad_Bucket"], "--s3-read"),
        (vec!["--s3-read", "cfg-bucket/a:read-write"], "--s3-read"),
        (
            vec!["--permissions-boundary", "arn:aws:iam::123:policy/x"],
            "--permissions-boundary",
        ),
    ] {
        let err = run(args(&stack, &extra)).await.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{extra:?}: {err}");
        assert!(err.to_string().contains(needle), "{extra:?}: {err}");
    }
    let iam = stack.ctx(false).await.iam();
    assert!(iam.list_roles().send().await.unwrap().roles().is_empty());
    assert!(
        iam.list_instance_profiles()
            .send()
            .await
            .unwrap()
            .instance_profiles()
            .is_empty()
    );
}

#[tokio::test]
async fn delete_removes_profile_and_role() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &["--cloudwatch-logs"])).await.unwrap();
    let mut a = args(&stack, &[]);
    a.delete = true;
    let report = run(a).await.unwrap();
    let actions = report.actions.join("\n");
    let pos = |s: &str| {
        actions
            .find(s)
            .unwrap_or_else(|| panic!("no '{s}' in {actions}"))
    };
    assert!(
        pos("remove role ecsInstanceRole from instance profile")
            < pos("delete role ecsInstanceRole")
    );
    assert!(
        pos("delete inline policy ecskit-cloudwatch-logs") < pos("delete role ecsInstanceRole")
    );
    assert!(pos("detach") < pos("delete role ecsInstanceRole"));
    assert_eq!(profile_roles(&stack, "ecsInstanceRole-profile").await, None);
    let iam = stack.ctx(false).await.iam();
    assert!(
        iam.get_role()
            .role_name("ecsInstanceRole")
            .send()
            .await
            .is_err()
    );
}

/// Exit 2 means nothing was changed: an untagged role is refused before the profile is
/// deleted.
#[tokio::test]
async fn deleting_beside_an_untagged_role_changes_nothing() {
    let stack = ecskit_testkit::local_stack();
    let iam = stack.ctx(false).await.iam();
    iam.create_role()
        .role_name("ecsInstanceRole")
        .assume_role_policy_document(policy::service_trust(&["ec2.amazonaws.com"]).to_string())
        .send()
        .await
        .unwrap();
    iam.create_instance_profile()
        .instance_profile_name("ecsInstanceRole-profile")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("managed-by")
                .value("ecskit")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ctx = stack.ctx(false).await;
    let mut a = args(&stack, &[]);
    a.delete = true;
    let err = ecskit::step::run::<ecskit::instance_profile::InstanceProfile>(&ctx, &a)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string()
            .contains("role ecsInstanceRole is not tagged managed-by=ecskit"),
        "{err}"
    );
    assert_eq!(ctx.calls().mutating(), vec![]);
    assert_eq!(
        profile_roles(&stack, "ecsInstanceRole-profile").await,
        Some(vec![]),
        "the profile is still there"
    );
}

/// A re-run that changes nothing reads the profile once: the read made before any change is
/// the one converged, and a profile left as it was is not waited for.
#[tokio::test]
async fn a_rerun_reads_the_profile_once() {
    let stack = ecskit_testkit::local_stack();
    let flags = [
        "--role-name",
        "lean-instance",
        "--profile-name",
        "lean-profile",
    ];
    run(args(&stack, &flags)).await.unwrap();
    let ctx = stack.ctx(false).await;
    let report = ecskit::step::run::<InstanceProfile>(&ctx, &args(&stack, &flags))
        .await
        .unwrap();
    assert!(!report.changed);
    let reads = ctx
        .calls()
        .calls()
        .into_iter()
        .filter(|c| c.operation == "GetInstanceProfile")
        .count();
    assert_eq!(reads, 1, "{:?}", ctx.calls().calls());
}
