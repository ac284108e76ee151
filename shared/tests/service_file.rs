//! A service set up by hand (the seeds' console procedure, done here with SDK calls) read back
//! from the emulator as JSON, written out as a service file, and compared with itself: adopting
//! it needs no change. Then one changed field is one update, and a create-only field is drift.

use aws_sdk_ec2::types::Filter;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerDefinition,
    LoadBalancer, NetworkConfiguration,
};
use ecskit::service_run::service_file;
use ecskit_testkit::local_stack;
use serde_json::json;

#[tokio::test]
async fn a_service_made_by_hand_is_adopted_without_a_change() {
    let stack = local_stack();
    let ctx = stack.ctx(false).await;
    let ecs = ctx.ecs();
    ecs.create_cluster()
        .cluster_name("console")
        .capacity_providers("FARGATE")
        .send()
        .await
        .unwrap();
    ecs.register_task_definition()
        .family("snaplex")
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("512")
        .memory("1024")
        .container_definitions(
            ContainerDefinition::builder()
                .name("jcc")
                .image("123456789012.dkr.ecr.us-west-2.amazonaws.com/snaplex:4.35")
                .memory(1024)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ec2 = ctx.ec2();
    let subnet = ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("default-for-az")
                .values("true")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();
    let sg = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("group-name")
                .values("default")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .security_groups()[0]
        .group_id()
        .unwrap()
        .to_string();
    let target_group =
        "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/snaplex/0123456789abcdef";
    ecs.create_service()
        .cluster("console")
        .service_name("snaplex")
        .task_definition("snaplex:1")
        .desired_count(1)
        .capacity_provider_strategy(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("FARGATE")
                .weight(1)
                .build()
                .unwrap(),
        )
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(target_group)
                .container_name("jcc")
                .container_port(8081)
                .build(),
        )
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets(&subnet)
                        .security_groups(&sg)
                        .assign_public_ip(AssignPublicIp::Enabled)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let live = service_file::describe_live(&ctx, "console", "snaplex")
        .await
        .unwrap()
        .expect("the service exists");
    let (doc, not_carried) = service_file::from_described(&live);
    assert!(not_carried.is_empty(), "{not_carried:?}");
    // What was clicked together is carried over.
    assert_eq!(
        doc["loadBalancers"][0]["targetGroupArn"],
        json!(target_group)
    );
    // moto keeps no capacityProviderStrategy (it answers launchType EC2 instead), so the file
    // holds what the emulator reports; the unit tests carry a strategy as AWS reports it.
    assert_eq!(doc["launchType"], live["launchType"]);
    assert_eq!(
        doc["networkConfiguration"]["awsvpcConfiguration"]["subnets"],
        json!([subnet])
    );
    assert!(doc.get("serviceArn").is_none() && doc.get("events").is_none());
    assert!(
        service_file::check(&doc).is_empty(),
        "{:?}",
        service_file::check(&doc)
    );

    // Read back, the file is the live service: nothing to update, nothing to re-create.
    assert_eq!(
        service_file::plan(&doc, &live),
        service_file::Plan::default()
    );

    // One changed field is one update; a create-only one is drift.
    let mut changed = doc.clone();
    changed["desiredCount"] = json!(3);
    changed["schedulingStrategy"] = json!("DAEMON");
    let plan = service_file::plan(&changed, &live);
    assert_eq!(
        serde_json::Value::Object(plan.update),
        json!({"desiredCount": 3})
    );
    assert_eq!(
        plan.needs_recreate,
        ["schedulingStrategy: \"REPLICA\" -> \"DAEMON\""]
    );
    assert_eq!(
        ctx.calls().mutating().len(),
        3,
        "only the setup's calls mutate"
    );
}
