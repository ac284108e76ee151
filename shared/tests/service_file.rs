//! A service set up by hand (the seeds' console procedure, done here with SDK calls) read back
//! from the emulator as JSON, written out as a service file, and compared with itself: adopting
//! it needs no change. Then one changed field is one update, and a create-only field is drift.

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
    register_fargate(
        &ctx,
        "snaplex",
        "jcc",
        "123456789012.dkr.ecr.us-west-2.amazonaws.com/snaplex:4.35",
    )
    .await;
    let (subnets, sg) = stack.default_network().await;
    let subnet = subnets[0].clone();
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
                        // moto answers launchType EC2 for this FARGATE service, and EC2 tasks
                        // get no public IP: the file written from its answer would be refused.
                        .assign_public_ip(AssignPublicIp::Disabled)
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

/// `service-run --service-file` as its binary runs it, through a proxy that records what
/// reached the wire (the emulator answers behind it).
async fn run_file(
    proxy: &ecskit_testkit::fault_proxy::FaultProxy,
    file: &std::path::Path,
    extra: &[&str],
) -> ecskit::Result<ecskit::Report> {
    use clap::Parser;
    let mut argv = vec![
        "service-run",
        "--region",
        "us-west-2",
        "--endpoint-url",
        &proxy.url,
        "--retry-attempts",
        "1",
        "--cluster",
        "filed",
        "--no-wait",
        "--service-file",
        file.to_str().unwrap(),
    ];
    argv.extend_from_slice(extra);
    let args = ecskit::service_run::Args::try_parse_from(argv).unwrap();
    ecskit::step::run_from_flags::<ecskit::service_run::ServiceRun>(&args).await
}

/// A field this tool has never heard of reaches CreateService's body as written; a second run
/// changes nothing; one changed field is exactly one UpdateService carrying that field; a
/// field only CreateService takes is refused as drift (exit 2, no call); a dry run plans.
#[tokio::test]
async fn a_service_file_is_sent_as_written_and_compared_by_meaning() {
    use ecskit_testkit::fault_proxy::{self, Faults};
    let stack = local_stack();
    let ctx = stack.ctx(false).await;
    register_fargate(&ctx, "filed", "app", "nginx:1").await;
    let (subnets, sg) = stack.default_network().await;
    let subnet = subnets[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.json");
    let mut doc = json!({
        "serviceName": "web",
        "taskDefinition": "filed:1",
        "desiredCount": 1,
        "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": [subnet], "securityGroups": [sg], "assignPublicIp": "ENABLED"}},
        "healthCheckGracePeriodSeconds": 30,
        "aFieldFromTheFuture": {"enabled": true}
    });
    std::fs::write(&file, doc.to_string()).unwrap();
    let proxy = fault_proxy::start(&stack.moto_url, Faults::None);

    let created = run_file(&proxy, &file, &[]).await.unwrap();
    assert!(created.changed);
    let sent = proxy.mutating_bodies();
    let (_, body) = sent
        .iter()
        .find(|(op, _)| op == "CreateService")
        .expect("a CreateService request");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body["aFieldFromTheFuture"],
        json!({"enabled": true}),
        "{body:#}"
    );
    assert_eq!(body["healthCheckGracePeriodSeconds"], json!(30), "{body:#}");
    assert_eq!(body["cluster"], json!("filed"));
    assert!(
        body["tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "managed-by", "value": "ecskit"})),
        "{body:#}"
    );

    // The emulator keeps neither a field it does not know nor the grace period (as ECS does
    // not return a field newer than its API, or a write-only one): the digest of the applied
    // document on the service (ecskit:last-applied) says they were applied, so a second run
    // changes nothing.
    let before = proxy.mutating().len();
    let again = run_file(&proxy, &file, &[]).await.unwrap();
    assert!(!again.changed, "{:?}", again.actions);
    assert_eq!(again.calls.mutating, 0);
    assert_eq!(proxy.mutating().len(), before, "{:?}", proxy.mutating());

    // One changed field: one UpdateService with it (and, the document being new, the fields
    // the answer cannot confirm), then the new digest remembered.
    doc["desiredCount"] = json!(2);
    std::fs::write(&file, doc.to_string()).unwrap();
    let dry = run_file(&proxy, &file, &["--dry-run"]).await.unwrap();
    assert_eq!(
        dry.actions,
        [
            "update service web in cluster filed: desiredCount 1 -> 2; healthCheckGracePeriodSeconds unset -> 30; aFieldFromTheFuture unset -> {\"enabled\":true}",
            "remember on service web what was applied (ecskit:last-applied)"
        ]
    );
    assert_eq!(proxy.mutating().len(), before, "a dry run sends nothing");
    let updated = run_file(&proxy, &file, &[]).await.unwrap();
    assert_eq!(updated.actions, dry.actions);
    let after: Vec<_> = proxy.mutating_bodies()[before..].to_vec();
    let ops: Vec<&str> = after.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(ops, ["UpdateService", "TagResource"], "{after:?}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&after[0].1).unwrap(),
        json!({"desiredCount": 2, "healthCheckGracePeriodSeconds": 30,
               "aFieldFromTheFuture": {"enabled": true}, "cluster": "filed", "service": "web"})
    );
    let again = run_file(&proxy, &file, &[]).await.unwrap();
    assert!(!again.changed, "{:?}", again.actions);
    // A flag wins over the file: --desired-count 2 with the file's 1 is no change now.
    doc["desiredCount"] = json!(1);
    std::fs::write(&file, doc.to_string()).unwrap();
    let flag = run_file(&proxy, &file, &["--desired-count", "2"])
        .await
        .unwrap();
    assert!(!flag.changed, "{:?}", flag.actions);
    doc["desiredCount"] = json!(2);

    // UpdateService replaces networkConfiguration whole: a file that names only the subnets
    // changes the subnets and sends the service's security group and public IP with them,
    // not ECS's defaults (no security group given: the VPC's default; no public IP).
    doc["networkConfiguration"] = json!({"awsvpcConfiguration": {"subnets": [subnets[1]]}});
    std::fs::write(&file, doc.to_string()).unwrap();
    let count = proxy.mutating().len();
    let moved = run_file(&proxy, &file, &[]).await.unwrap();
    assert!(moved.changed);
    let bodies = proxy.mutating_bodies()[count..].to_vec();
    let (op, body) = &bodies[0];
    assert_eq!(op, "UpdateService");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body["networkConfiguration"],
        json!({"awsvpcConfiguration": {"subnets": [subnets[1]], "securityGroups": [sg], "assignPublicIp": "ENABLED"}}),
        "{body:#}"
    );

    // Tags in the file are applied on update too (UpdateService takes none): TagResource.
    doc["tags"] = json!([{"key": "team", "value": "payments"}]);
    std::fs::write(&file, doc.to_string()).unwrap();
    let tagged = run_file(&proxy, &file, &[]).await.unwrap();
    assert!(tagged.changed);
    let live = service_file::describe_live(&ctx, "filed", "web")
        .await
        .unwrap()
        .unwrap();
    assert!(
        live["tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "team", "value": "payments"})),
        "{live:#}"
    );
    let again = run_file(&proxy, &file, &[]).await.unwrap();
    assert!(!again.changed, "{:?}", again.actions);

    // A field only CreateService takes: drift that needs a re-create, refused before any call.
    doc["launchType"] = json!("EC2");
    doc["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] = json!("DISABLED");
    std::fs::write(&file, doc.to_string()).unwrap();
    let count = proxy.mutating().len();
    let err = run_file(&proxy, &file, &[]).await.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string().contains(
            "service web: launchType: \"FARGATE\" -> \"EC2\" (UpdateService cannot change it)"
        ),
        "{err}"
    );
    assert_eq!(proxy.mutating().len(), count);
}

/// A Fargate task definition of one container (512 CPU units, 1 GiB).
async fn register_fargate(ctx: &ecskit::aws::Ctx, family: &str, container: &str, image: &str) {
    ctx.ecs()
        .register_task_definition()
        .family(family)
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("512")
        .memory("1024")
        .container_definitions(
            ContainerDefinition::builder()
                .name(container)
                .image(image)
                .memory(1024)
                .build(),
        )
        .send()
        .await
        .unwrap();
}
