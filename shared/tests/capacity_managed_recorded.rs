//! capacity-create --managed (ECS Managed Instances) on recorded ECS answers (aws-smithy-mocks,
//! in strict call order): the emulator has no Managed Instances. The provider is created with
//! the cluster, the infrastructure role, the instance profile's ARN, the network and storage;
//! one that matches gets no mutating call; one that drifted gets one update naming the change;
//! Spot vs On-Demand (which ECS does not update), a provider not tagged managed-by=ecskit and an
//! Auto Scaling group provider of the same name are refused as bad input.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::create_capacity_provider::CreateCapacityProviderOutput;
use aws_sdk_ecs::operation::delete_capacity_provider::DeleteCapacityProviderOutput;
use aws_sdk_ecs::operation::describe_capacity_providers::DescribeCapacityProvidersOutput;
use aws_sdk_ecs::operation::update_capacity_provider::UpdateCapacityProviderOutput;
use aws_sdk_ecs::types::{
    AutoScalingGroupProvider, CapacityOptionType, CapacityProvider, CapacityProviderStatus,
    InstanceLaunchTemplate, ManagedInstancesNetworkConfiguration, ManagedInstancesProvider,
    ManagedInstancesStorageConfiguration, Tag,
};
use aws_smithy_mocks::{Rule, mock};
use ecskit::capacity_create::managed::{self, Spec};
use ecskit::output::OutputFormat;

mod ecs_recorded;
use ecs_recorded::deps;
mod json_replay;

const ARN: &str = "arn:aws:ecs:us-west-2:123456789012:capacity-provider/acme-mi";
const ROLE: &str = "arn:aws:iam::123456789012:role/acme-mi-infrastructure";
const PROFILE: &str = "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole-profile";

fn spec() -> Spec {
    Spec {
        infrastructure_role_arn: ROLE.into(),
        instance_profile_arn: PROFILE.into(),
        subnets: vec!["subnet-0a1b2c3d".into(), "subnet-0e4f5a6b".into()],
        security_groups: vec!["sg-0123abcd".into()],
        root_volume_gib: 30,
        spot: false,
    }
}

/// The provider as ECS describes it after a create from `s`.
fn provider(s: &Spec, ours: bool) -> CapacityProvider {
    let template = InstanceLaunchTemplate::builder()
        .ec2_instance_profile_arn(&s.instance_profile_arn)
        .network_configuration(
            ManagedInstancesNetworkConfiguration::builder()
                .set_subnets(Some(s.subnets.clone()))
                .set_security_groups(Some(s.security_groups.clone()))
                .build(),
        )
        .storage_configuration(
            ManagedInstancesStorageConfiguration::builder()
                .storage_size_gib(s.root_volume_gib)
                .build(),
        )
        .capacity_option_type(if s.spot {
            CapacityOptionType::Spot
        } else {
            CapacityOptionType::OnDemand
        })
        .build()
        .unwrap();
    let mut p = CapacityProvider::builder()
        .name("acme-mi")
        .cluster("acme")
        .capacity_provider_arn(ARN)
        .status(CapacityProviderStatus::Active)
        .managed_instances_provider(
            ManagedInstancesProvider::builder()
                .infrastructure_role_arn(&s.infrastructure_role_arn)
                .instance_launch_template(template)
                .build(),
        );
    if ours {
        p = p.tags(Tag::builder().key("managed-by").value("ecskit").build());
    }
    p.build()
}

fn described(p: Option<CapacityProvider>) -> Rule {
    mock!(Client::describe_capacity_providers)
        .match_requests(|r| r.capacity_providers() == ["acme-mi"] && r.cluster() == Some("acme"))
        .then_output(move || {
            DescribeCapacityProvidersOutput::builder()
                .set_capacity_providers(Some(p.clone().into_iter().collect()))
                .build()
        })
}

async fn read(rules: &[Rule]) -> (ecskit::ecs::Deps, Option<managed::Current>) {
    let d = deps(rules);
    let now = managed::read(&d, "acme", "acme-mi").await.unwrap();
    (d, now)
}

async fn converge(
    d: &ecskit::ecs::Deps,
    now: Option<managed::Current>,
    want: &Spec,
) -> ecskit::Result<String> {
    managed::check_existing(now.as_ref(), "acme-mi")?;
    managed::check_capacity_option(now.as_ref(), "acme-mi", want.spot)?;
    managed::converge_provider(d, "acme", "acme-mi", now, want, "us-west-2", "123456789012").await
}

#[tokio::test]
async fn a_missing_provider_is_created_in_the_cluster_with_role_profile_network_and_storage() {
    let create = mock!(Client::create_capacity_provider)
        .match_requests(|r| {
            let m = r.managed_instances_provider().unwrap();
            let lt = m.instance_launch_template().unwrap();
            let net = lt.network_configuration().unwrap();
            r.name() == Some("acme-mi")
                && r.cluster() == Some("acme")
                && r.auto_scaling_group_provider().is_none()
                && m.infrastructure_role_arn() == ROLE
                && lt.ec2_instance_profile_arn() == PROFILE
                && net.subnets() == ["subnet-0a1b2c3d", "subnet-0e4f5a6b"]
                && net.security_groups() == ["sg-0123abcd"]
                && lt
                    .storage_configuration()
                    .and_then(|s| s.storage_size_gib())
                    == Some(30)
                && lt.capacity_option_type() == Some(&CapacityOptionType::OnDemand)
                && r.tags()
                    .iter()
                    .any(|t| t.key() == Some("managed-by") && t.value() == Some("ecskit"))
                && r.tags()
                    .iter()
                    .any(|t| t.key() == Some("ecskit:cluster") && t.value() == Some("acme"))
        })
        .then_output(|| {
            CreateCapacityProviderOutput::builder()
                .capacity_provider(provider(&spec(), true))
                .build()
        });
    let (d, now) = read(&[described(None), create.clone()]).await;
    assert!(now.is_none());
    let arn = converge(&d, now, &spec()).await.unwrap();
    assert_eq!(arn, ARN);
    let report = d.ctx.report().output("CAPACITY_PROVIDER_ARN", arn);
    assert_eq!(
        report.render(OutputFormat::Text),
        format!(
            "  create capacity provider acme-mi in cluster acme (ECS Managed Instances, ON_DEMAND, {PROFILE})\n\
             changed: true\n\
             capacity_provider_arn: {ARN}\n"
        )
    );
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test]
async fn a_matching_provider_gets_no_mutating_call() {
    let (d, now) = read(&[described(Some(provider(&spec(), true)))]).await;
    let arn = converge(&d, now, &spec()).await.unwrap();
    assert_eq!(arn, ARN);
    // The mock answers the describe only: any other call would find no answer and fail.
    let report = d.ctx.report();
    assert!(!report.changed, "{:?}", report.actions);
    assert!(report.actions.is_empty());
}

#[tokio::test]
async fn a_drifted_provider_gets_one_update_naming_the_change() {
    let mut want = spec();
    want.security_groups = vec!["sg-0456cdef".into()];
    want.root_volume_gib = 60;
    let update = mock!(Client::update_capacity_provider)
        .match_requests(|r| {
            let lt = r
                .managed_instances_provider()
                .and_then(|m| m.instance_launch_template())
                .unwrap();
            r.name() == Some("acme-mi")
                && r.cluster() == Some("acme")
                && lt.network_configuration().unwrap().security_groups() == ["sg-0456cdef"]
                && lt
                    .storage_configuration()
                    .and_then(|s| s.storage_size_gib())
                    == Some(60)
        })
        .then_output(|| UpdateCapacityProviderOutput::builder().build());
    let (d, now) = read(&[described(Some(provider(&spec(), true))), update.clone()]).await;
    converge(&d, now, &want).await.unwrap();
    let report = d.ctx.report();
    assert_eq!(
        report.actions,
        [
            "update capacity provider acme-mi (security groups sg-0123abcd -> sg-0456cdef, storage GiB 30 -> 60)"
        ]
    );
    assert_eq!(update.num_calls(), 1);
}

#[tokio::test]
async fn spot_against_on_demand_is_refused_before_any_change() {
    let mut want = spec();
    want.spot = true;
    let (d, now) = read(&[described(Some(provider(&spec(), true)))]).await;
    let err = converge(&d, now, &want).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        "capacity provider acme-mi launches On-Demand instances; ECS does not change that on an update"
    );
    assert!(d.ctx.report().actions.is_empty());
}

#[tokio::test]
async fn a_provider_not_ours_or_over_a_group_is_refused() {
    let (d, now) = read(&[described(Some(provider(&spec(), false)))]).await;
    let err = converge(&d, now, &spec()).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains("not tagged managed-by=ecskit"),
        "{err}"
    );

    let group = CapacityProvider::builder()
        .name("acme-mi")
        .capacity_provider_arn(ARN)
        .status(CapacityProviderStatus::Active)
        .auto_scaling_group_provider(
            AutoScalingGroupProvider::builder()
                .auto_scaling_group_arn("arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:1:autoScalingGroupName/acme-mi")
                .build()
                .unwrap(),
        )
        .tags(Tag::builder().key("managed-by").value("ecskit").build())
        .build();
    let (d, now) = read(&[described(Some(group))]).await;
    let err = converge(&d, now, &spec()).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        "capacity provider acme-mi is over an Auto Scaling group, not ECS Managed Instances"
    );
    assert!(d.ctx.report().actions.is_empty());
}

#[tokio::test]
async fn delete_names_the_cluster() {
    let delete = mock!(Client::delete_capacity_provider)
        .match_requests(|r| r.capacity_provider() == Some("acme-mi") && r.cluster() == Some("acme"))
        .then_output(|| DeleteCapacityProviderOutput::builder().build());
    let d = deps(&[delete]);
    managed::delete_provider(&d, "acme", "acme-mi")
        .await
        .unwrap();
    assert_eq!(
        d.ctx.report().actions,
        ["delete capacity provider acme-mi of cluster acme"]
    );
}

fn asg_provider(cluster_tag: Option<&str>) -> CapacityProvider {
    let mut p = CapacityProvider::builder()
        .name("acme-mi")
        .capacity_provider_arn(ARN)
        .status(CapacityProviderStatus::Active)
        .auto_scaling_group_provider(
            AutoScalingGroupProvider::builder()
                .auto_scaling_group_arn("arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:1:autoScalingGroupName/acme-mi")
                .build()
                .unwrap(),
        )
        .tags(Tag::builder().key("managed-by").value("ecskit").build());
    if let Some(c) = cluster_tag {
        p = p.tags(Tag::builder().key("ecskit:cluster").value(c).build());
    }
    p.build()
}

fn delete_args() -> ecskit::capacity_create::Args {
    use clap::Parser;
    ecskit::capacity_create::Args::try_parse_from([
        "capacity-create",
        "--cluster",
        "acme",
        "--name",
        "acme-mi",
        "--managed",
        "--delete",
    ])
    .unwrap()
}

/// `--delete` without `--managed` never takes a Managed Instances provider out of the cluster
/// or deletes it: refused (exit 2) on the first read, before any change.
#[tokio::test]
async fn an_ec2_delete_refuses_a_managed_instances_provider() {
    let any = mock!(Client::describe_capacity_providers)
        .match_requests(|r| r.capacity_providers() == ["acme-mi"])
        .then_output(|| {
            DescribeCapacityProvidersOutput::builder()
                .capacity_providers(provider(&spec(), true))
                .build()
        });
    let d = deps(&[any]);
    let Err(err) = ecskit::capacity_create::group_provider_to_delete(&d, "acme", "acme-mi").await
    else {
        panic!("a Managed Instances provider was taken for deletion");
    };
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert_eq!(
        err.to_string(),
        "capacity provider acme-mi is an ECS Managed Instances provider: a run without --managed does not change or delete it"
    );
    assert!(err.render().contains("pass --managed"), "{}", err.render());
    assert!(d.ctx.report().actions.is_empty());
}

/// `--managed --delete` never removes an Auto Scaling group provider of the same name, nor a
/// provider tagged for another cluster: refused before any change (the mock answers the
/// describe only, so any further call would fail the test).
#[tokio::test]
async fn a_managed_delete_refuses_a_group_provider_and_another_clusters_provider() {
    let d = deps(&[described(Some(asg_provider(Some("acme"))))]);
    let err = managed::delete(&d, &delete_args()).await.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert_eq!(
        err.to_string(),
        "capacity provider acme-mi is an Auto Scaling group provider: a run with --managed does not change or delete it"
    );
    assert!(d.ctx.report().actions.is_empty());

    let mut other = provider(&spec(), true);
    other.tags = Some(vec![
        Tag::builder().key("managed-by").value("ecskit").build(),
        Tag::builder().key("ecskit:cluster").value("beta").build(),
    ]);
    let d = deps(&[described(Some(other))]);
    let err = managed::delete(&d, &delete_args()).await.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert_eq!(
        err.to_string(),
        "capacity provider acme-mi belongs to cluster beta (tagged ecskit:cluster=beta), not acme: this run does not change or delete it"
    );
    assert!(err.render().contains("--cluster beta"), "{}", err.render());
}

/// The whole `--managed` run against a Spot provider while On-Demand is asked for: refused on
/// the reads (the account, the instance profile, the provider), before the cluster, the role or
/// the provider is touched: exit 2 leaves zero mutating calls (the recording holds no other
/// answer, so any further request fails the test).
/// The whole `--managed` run (On-Demand asked) against a recorded Spot provider tagged `tags`:
/// its refusal, the calls sent and the actions.
async fn whole_run_against_spot(
    tags: serde_json::Value,
) -> (ecskit::Error, Vec<String>, Vec<String>) {
    use json_replay::{Replay, ok};
    use serde_json::{Value, json};
    let sts = ok(
        "GetCallerIdentity",
        Value::String(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>\
             <Arn>arn:aws:iam::123456789012:user/t</Arn><UserId>AIDA1</UserId><Account>123456789012</Account>\
             </GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
                .into(),
        ),
    );
    let profile = ok(
        "GetInstanceProfile",
        Value::String(format!(
            "<GetInstanceProfileResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><GetInstanceProfileResult>\
             <InstanceProfile><Path>/</Path><InstanceProfileName>ecsInstanceRole-profile</InstanceProfileName>\
             <InstanceProfileId>AIPA1</InstanceProfileId><Arn>{PROFILE}</Arn><CreateDate>2024-01-01T00:00:00Z</CreateDate>\
             <Roles/></InstanceProfile></GetInstanceProfileResult><ResponseMetadata><RequestId>2</RequestId></ResponseMetadata>\
             </GetInstanceProfileResponse>"
        )),
    );
    let spot = ok(
        "DescribeCapacityProviders",
        json!({"capacityProviders": [{
            "name": "acme-mi",
            "cluster": "acme",
            "capacityProviderArn": ARN,
            "status": "ACTIVE",
            "managedInstancesProvider": {
                "infrastructureRoleArn": ROLE,
                "instanceLaunchTemplate": {
                    "ec2InstanceProfileArn": PROFILE,
                    "networkConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0123abcd"]},
                    "storageConfiguration": {"storageSizeGiB": 30},
                    "capacityOptionType": "SPOT"
                }
            },
            "tags": tags
        }]}),
    );
    let replay = Replay::new(vec![sts, profile, spot]);
    let ctx = replay.ctx(false);
    let d = ecskit::ecs::Deps::new(ctx.clone(), ctx.progress.clone(), Default::default());
    use clap::Parser;
    let args = ecskit::capacity_create::Args::try_parse_from([
        "capacity-create",
        "--cluster",
        "acme",
        "--name",
        "acme-mi",
        "--managed",
        "--subnets",
        "subnet-0a1b2c3d",
        "--security-groups",
        "sg-0123abcd",
    ])
    .unwrap();
    let Err(err) = managed::converge(&d, &args).await else {
        panic!("a Spot provider was converged to On-Demand");
    };
    let sent = replay.sent();
    (err, sent, ctx.report().actions)
}

#[tokio::test]
async fn a_whole_managed_run_refuses_spot_against_on_demand_before_any_change() {
    let (err, sent, actions) = whole_run_against_spot(serde_json::json!([
        {"key": "managed-by", "value": "ecskit"},
        {"key": "ecskit:cluster", "value": "acme"}
    ]))
    .await;
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert_eq!(
        err.to_string(),
        "capacity provider acme-mi launches Spot instances; ECS does not change that on an update"
    );
    assert_eq!(
        sent,
        [
            "GetCallerIdentity",
            "GetInstanceProfile",
            "DescribeCapacityProviders"
        ]
    );
    assert!(actions.is_empty());
}

/// Whose it is before what it is: another cluster's provider (here also Spot against
/// On-Demand) gets the ownership refusal, before any change.
#[tokio::test]
async fn another_clusters_provider_is_refused_as_such_before_its_capacity_option() {
    let (err, sent, actions) = whole_run_against_spot(serde_json::json!([
        {"key": "managed-by", "value": "ecskit"},
        {"key": "ecskit:cluster", "value": "beta"}
    ]))
    .await;
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string()
            .starts_with("capacity provider acme-mi belongs to cluster beta"),
        "{err}"
    );
    assert_eq!(
        sent,
        [
            "GetCallerIdentity",
            "GetInstanceProfile",
            "DescribeCapacityProviders"
        ]
    );
    assert!(actions.is_empty());
}

/// An ecskit cluster with nothing running, as DescribeClusters answers.
fn empty_cluster(instances: i32) -> Rule {
    mock!(Client::describe_clusters).then_output(move || {
        aws_sdk_ecs::operation::describe_clusters::DescribeClustersOutput::builder()
            .clusters(
                aws_sdk_ecs::types::Cluster::builder()
                    .cluster_name("acme")
                    .cluster_arn("arn:aws:ecs:us-west-2:123456789012:cluster/acme")
                    .status("ACTIVE")
                    .registered_container_instances_count(instances)
                    .tags(Tag::builder().key("managed-by").value("ecskit").build())
                    .build(),
            )
            .build()
    })
}

/// `--delete-cluster` reads every page of the cluster's services: a live service on the second
/// page leaves the cluster (the recording has no DeleteCluster answer: sending one fails).
#[tokio::test]
async fn delete_cluster_reads_every_page_of_services() {
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::list_services::ListServicesOutput;
    const SVC: &str = "arn:aws:ecs:us-west-2:123456789012:service/acme/web";
    let d = deps(&[
        empty_cluster(0),
        mock!(Client::list_services).then_output(|| {
            ListServicesOutput::builder()
                .set_service_arns(Some(vec![]))
                .next_token("page-2")
                .build()
        }),
        mock!(Client::list_services)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| ListServicesOutput::builder().service_arns(SVC).build()),
        mock!(Client::describe_services)
            .match_requests(|r| r.services() == [SVC])
            .then_output(|| {
                DescribeServicesOutput::builder()
                    .services(
                        aws_sdk_ecs::types::Service::builder()
                            .service_arn(SVC)
                            .status("ACTIVE")
                            .build(),
                    )
                    .build()
            }),
    ]);
    let left = ecskit::ecs::cluster::delete_if_empty(&d, "acme")
        .await
        .unwrap();
    assert!(left.is_some());
    assert!(
        d.ctx.report().actions.is_empty(),
        "{:?}",
        d.ctx.report().actions
    );
}

/// A dry run of `--delete-cluster` reads every page of the container instances: the first page
/// holding only the ones this run deregisters does not make the cluster look empty when the
/// second holds another instance.
#[tokio::test]
async fn a_dry_run_delete_cluster_reads_every_page_of_container_instances() {
    use aws_sdk_ecs::operation::list_container_instances::ListContainerInstancesOutput;
    use aws_sdk_ecs::operation::list_services::ListServicesOutput;
    const OURS: &str = "arn:aws:ecs:us-west-2:123456789012:container-instance/acme/ours";
    const OTHER: &str = "arn:aws:ecs:us-west-2:123456789012:container-instance/acme/other";
    let mut d = deps(&[
        empty_cluster(2),
        mock!(Client::list_services).then_output(|| {
            ListServicesOutput::builder()
                .set_service_arns(Some(vec![]))
                .build()
        }),
        mock!(Client::list_container_instances).then_output(|| {
            ListContainerInstancesOutput::builder()
                .container_instance_arns(OURS)
                .next_token("page-2")
                .build()
        }),
        mock!(Client::list_container_instances)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                ListContainerInstancesOutput::builder()
                    .container_instance_arns(OTHER)
                    .build()
            }),
    ]);
    d.ctx.dry_run = true;
    let left = ecskit::ecs::cluster::delete_if_empty_after(&d, "acme", &[OURS.to_string()])
        .await
        .unwrap();
    assert!(left.is_some());
    assert!(
        d.ctx.report().actions.is_empty(),
        "{:?}",
        d.ctx.report().actions
    );
}
