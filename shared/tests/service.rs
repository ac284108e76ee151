//! service-run against the emulator: create, update, converged re-runs, bad input, delete.
//! (The waiting logic is tested on recorded answers in service_watch.rs: the emulator never
//! produces events, rollbacks or stopped reasons.)

use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
use ecskit::service_run::{Args, ServiceRun};

/// The step as its binary runs it.
async fn run(a: ecskit::service_run::Args) -> ecskit::Result<ecskit::Report> {
    ecskit::step::run_from_flags::<ServiceRun>(&a).await
}

async fn register(stack: &ecskit_testkit::LocalStack, family: &str, image: &str) -> String {
    let ecs = stack.ctx(false).await.ecs();
    let out = ecs
        .register_task_definition()
        .family(family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image(image)
                .memory(512)
                .essential(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.task_definition.unwrap().task_definition_arn.unwrap()
}

fn args(stack: &ecskit_testkit::LocalStack, extra: &[&str]) -> Args {
    let mut v = vec!["--poll-interval", "100ms", "--timeout", "20s"];
    v.extend_from_slice(extra);
    stack.parse("service-run", &v)
}

async fn describe(stack: &ecskit_testkit::LocalStack) -> aws_sdk_ecs::types::Service {
    stack
        .ctx(false)
        .await
        .ecs()
        .describe_services()
        .cluster("app")
        .services("web")
        .send()
        .await
        .unwrap()
        .services
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn create_then_update_then_converge() {
    let stack = ecskit_testkit::local_stack();
    let td1 = register(&stack, "web", "nginx:1").await;
    let td2 = register(&stack, "web", "nginx:2").await;

    // Create: the cluster and the service, networked in the default VPC.
    let first = run(args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--task-definition",
            "web:1",
        ],
    ))
    .await
    .unwrap();
    assert!(first.changed);
    assert_eq!(first.actions.len(), 2, "{:?}", first.actions);
    assert!(first.actions[0].starts_with("create cluster app"));
    assert!(first.actions[1].starts_with("create service web"));
    let service_arn = first.get_str("SERVICE_ARN").unwrap();
    assert!(service_arn.contains(":service/"), "{service_arn}");
    assert!(
        first
            .get_str("CLUSTER_ARN")
            .unwrap()
            .ends_with(":cluster/app")
    );
    assert_eq!(first.get_str("ROLLOUT_STATE").as_deref(), Some("COMPLETED"));
    assert!(
        first
            .get_str("DEPLOYMENT_ID")
            .unwrap()
            .starts_with("ecs-svc/")
    );

    let svc = describe(&stack).await;
    assert_eq!(svc.task_definition(), Some(td1.as_str()));
    assert_eq!(svc.desired_count(), 1);
    let vpc = svc
        .network_configuration()
        .unwrap()
        .awsvpc_configuration()
        .unwrap();
    let ctx = stack.ctx(false).await;
    let default_subnets = ctx
        .ec2()
        .describe_subnets()
        .send()
        .await
        .unwrap()
        .subnets
        .unwrap()
        .into_iter()
        .filter(|s| s.default_for_az == Some(true))
        .filter_map(|s| s.subnet_id)
        .collect::<Vec<_>>();
    assert!(!vpc.subnets().is_empty());
    assert!(
        vpc.subnets().iter().all(|s| default_subnets.contains(s)),
        "{vpc:?}"
    );
    assert_eq!(vpc.security_groups().len(), 1);
    let tags = ctx
        .ecs()
        .list_tags_for_resource()
        .resource_arn(&service_arn)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == Some("managed-by") && t.value() == Some("ecskit"))
    );

    // The same inputs again: nothing to do, no mutating call.
    let again = run(args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--task-definition",
            "web:1",
        ],
    ))
    .await
    .unwrap();
    assert!(!again.changed, "{:?}", again.actions);
    assert_eq!(again.calls.mutating, 0);
    assert_eq!(
        again.get_str("SERVICE_ARN").as_deref(),
        Some(service_arn.as_str())
    );

    // Update: a new revision (given as an ARN) and other deployment settings.
    let update = run(args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--task-definition",
            &td2,
            "--min-healthy-percent",
            "50",
            "--enable-execute-command",
        ],
    ))
    .await
    .unwrap();
    assert!(update.changed);
    assert_eq!(update.calls.mutating, 1, "{:?}", update.actions);
    assert!(
        update.actions[0].contains("task definition"),
        "{:?}",
        update.actions
    );
    let svc = describe(&stack).await;
    assert_eq!(svc.task_definition(), Some(td2.as_str()));
    assert!(svc.enable_execute_command());
    let dc = svc.deployment_configuration().unwrap();
    assert_eq!(dc.minimum_healthy_percent(), Some(50));
    assert!(dc.deployment_circuit_breaker().unwrap().rollback());

    // And converged again, with the family name (latest revision) this time.
    let converged = run(args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--task-definition",
            "web",
            "--min-healthy-percent",
            "50",
            "--enable-execute-command",
        ],
    ))
    .await
    .unwrap();
    assert!(!converged.changed, "{:?}", converged.actions);
    assert_eq!(converged.calls.mutating, 0);
}

#[tokio::test]
async fn unknown_task_definition_is_bad_input_and_changes_nothing() {
    let stack = ecskit_testkit::local_stack();
    let err = run(args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--task-definition",
            "nope:3",
        ],
    ))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let text = err.render();
    assert!(
        text.contains("--task-definition 'nope:3' does not exist"),
        "{text}"
    );
    assert!(text.contains("taskdef-register"), "{text}");
    // Nothing was created: the cluster is still missing.
    let clusters = stack
        .ctx(false)
        .await
        .ecs()
        .describe_clusters()
        .clusters("app")
        .send()
        .await
        .unwrap();
    assert!(
        clusters
            .clusters()
            .iter()
            .all(|c| c.status() != Some("ACTIVE"))
    );
}

#[tokio::test]
async fn dry_run_plans_and_prints_arns_without_calls() {
    let stack = ecskit_testkit::local_stack();
    register(&stack, "web", "nginx:1").await;
    let report = run(args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--task-definition",
            "web",
            "--dry-run",
        ],
    ))
    .await
    .unwrap();
    assert!(report.changed && report.dry_run);
    assert_eq!(report.calls.mutating, 0);
    assert_eq!(
        report.get_str("SERVICE_ARN").as_deref(),
        Some("arn:aws:ecs:us-west-2:123456789012:service/app/web")
    );
}

#[tokio::test]
async fn delete_scales_down_deletes_and_removes_the_empty_cluster() {
    let stack = ecskit_testkit::local_stack();
    register(&stack, "web", "nginx:1").await;
    run(args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--task-definition",
            "web",
            "--no-wait",
        ],
    ))
    .await
    .unwrap();
    let deleted = run(args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--delete",
            "--delete-cluster",
        ],
    ))
    .await
    .unwrap();
    assert_eq!(
        deleted.actions,
        [
            "scale service web to 0 tasks",
            "delete service web from cluster app",
            "delete cluster app"
        ]
    );
    let ecs = stack.ctx(false).await.ecs();
    let clusters = ecs
        .describe_clusters()
        .clusters("app")
        .send()
        .await
        .unwrap();
    assert!(
        clusters
            .clusters()
            .iter()
            .all(|c| c.status() != Some("ACTIVE"))
    );
    // Deleting again finds nothing to do.
    let again = run(args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--delete",
            "--delete-cluster",
        ],
    ))
    .await
    .unwrap();
    assert!(!again.changed);
    assert_eq!(again.calls.mutating, 0);
}

#[tokio::test]
async fn the_ec2_launch_type_gets_a_network_ecs_accepts() {
    let stack = ecskit_testkit::local_stack();
    register(&stack, "web", "nginx:1").await;
    // A public IP on EC2 is refused before any call.
    let ctx = stack.ctx(false).await;
    let a = args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--task-definition",
            "web:1",
            "--launch-type",
            "EC2",
            "--assign-public-ip",
        ],
    );
    let err = ecskit::step::run::<ServiceRun>(&ctx, &a).await.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string()
            .contains("--assign-public-ip with --launch-type EC2"),
        "{err}"
    );
    assert!(ctx.calls().calls().is_empty(), "{:?}", ctx.calls().calls());

    // With the default VPC, the EC2 service's request says DISABLED.
    let a = args(
        &stack,
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--task-definition",
            "web:1",
            "--launch-type",
            "EC2",
            "--no-wait",
        ],
    );
    let ctx = stack
        .ctx(false)
        .await
        .with_progress(ecskit::progress::Progress::capturing());
    ecskit::step::run::<ServiceRun>(&ctx, &a).await.unwrap();
    let svc = describe(&stack).await;
    let net = svc
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .unwrap();
    assert_eq!(
        net.assign_public_ip(),
        Some(&aws_sdk_ecs::types::AssignPublicIp::Disabled)
    );
    assert!(!net.subnets().is_empty());
    // The new cluster has no EC2 capacity, and the user is told so.
    let lines = ctx.progress.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("warning: cluster app has no EC2 capacity")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn fargate_with_a_bridge_task_definition_is_refused_before_the_cluster_is_made() {
    let stack = ecskit_testkit::local_stack();
    stack
        .ctx(false)
        .await
        .ecs()
        .register_task_definition()
        .family("bridged")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("nginx")
                .memory(64)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let a = args(
        &stack,
        &[
            "--cluster",
            "fresh",
            "--service",
            "web",
            "--task-definition",
            "bridged:1",
        ],
    );
    let ctx = stack.ctx(false).await;
    let err = ecskit::step::run::<ServiceRun>(&ctx, &a).await.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string().contains("Fargate runs only awsvpc tasks"),
        "{err}"
    );
    assert!(
        ctx.calls().mutating().is_empty(),
        "{:?}",
        ctx.calls().mutating()
    );
}

/// Service-runs of one new cluster started together (as a deploy of many services starts up to
/// --jobs of them) create it once: the first makes it, the others find it.
#[tokio::test]
async fn service_runs_started_together_create_their_new_cluster_once() {
    let stack = ecskit_testkit::local_stack();
    register(&stack, "web", "nginx:1").await;
    let names: Vec<String> = (1..=6).map(|i| format!("web{i}")).collect();
    let runs = names.iter().map(|n| {
        run(args(
            &stack,
            &[
                "--cluster",
                "together",
                "--service",
                n,
                "--task-definition",
                "web:1",
                "--no-wait",
            ],
        ))
    });
    let reports = futures_util::future::join_all(runs).await;
    let created: Vec<&String> = reports
        .iter()
        .flat_map(|r| r.as_ref().unwrap().actions.iter())
        .filter(|a| a.starts_with("create cluster together"))
        .collect();
    assert_eq!(created.len(), 1, "{reports:#?}");
    for r in &reports {
        let r = r.as_ref().unwrap();
        assert!(r.changed);
        assert!(
            r.actions.iter().any(|a| a.starts_with("create service")),
            "{:?}",
            r.actions
        );
    }
}
