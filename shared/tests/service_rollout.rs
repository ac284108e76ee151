//! Rollouts against the local emulator (moto), for what it keeps: a service whose
//! deploymentController is CODE_DEPLOY or EXTERNAL, deployed by service-run's flags (a new
//! revision, a strategy), gets no mutating call at all and exit 2 naming the controller. (What
//! moto does not keep, deploymentConfiguration.strategy and the rest, is tested on recorded
//! answers in service_rollout_recorded.rs.)

use aws_sdk_ecs::types::{DeploymentController, DeploymentControllerType};
use ecskit::service_run::{Args, ServiceRun};
use ecskit_testkit::local_stack;

#[tokio::test]
async fn a_service_ecs_does_not_deploy_gets_no_mutating_call_from_the_flags() {
    for controller in [
        DeploymentControllerType::CodeDeploy,
        DeploymentControllerType::External,
    ] {
        let stack = local_stack();
        let ecs = stack.ctx(false).await.ecs();
        let first = stack.register_app("web", "nginx:1").await;
        let second = stack.register_app("web", "nginx:2").await;
        let (subnets, sg) = stack.default_network().await;
        ecs.create_cluster()
            .cluster_name("prod")
            .send()
            .await
            .unwrap();
        ecs.create_service()
            .cluster("prod")
            .service_name("web")
            .task_definition(&first)
            .desired_count(1)
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .deployment_controller(
                DeploymentController::builder()
                    .r#type(controller.clone())
                    .build()
                    .unwrap(),
            )
            .network_configuration(ecskit::ecs::network::configuration(
                subnets,
                vec![sg],
                false,
            ))
            .send()
            .await
            .unwrap();

        for extra in [
            &["--desired-count", "2"][..],
            &["--strategy", "rolling", "--alarm", "web-5xx"][..],
        ] {
            let mut argv = vec![
                "--cluster",
                "prod",
                "--service",
                "web",
                "--task-definition",
                &second,
                "--no-wait",
            ];
            argv.extend_from_slice(extra);
            let args: Args = stack.parse("service-run", &argv);
            let ctx = stack.ctx(false).await;
            let err = ecskit::step::run::<ServiceRun>(&ctx, &args)
                .await
                .err()
                .unwrap_or_else(|| panic!("{controller}: the update was accepted"));
            assert_eq!(err.exit_code(), 2, "{}", err.render());
            assert!(
                err.to_string().starts_with(&format!(
                    "service web has deploymentController {controller}: its deployments are made by"
                )),
                "{err}"
            );
            assert!(
                err.render().contains(
                    "aws ecs update-service --cluster prod --service web --deployment-controller type=ECS"
                ),
                "{}",
                err.render()
            );
            assert!(
                ctx.calls().mutating().is_empty(),
                "{controller}: {:?}",
                ctx.calls().mutating()
            );
        }
        let live = ecs
            .describe_services()
            .cluster("prod")
            .services("web")
            .send()
            .await
            .unwrap();
        assert_eq!(live.services()[0].task_definition(), Some(first.as_str()));
    }
}

/// A rollout setting given without its strategy takes the service's own: a bake time asked of
/// a rolling service (ECS would drop it, and every run would report a change) is exit 2 before
/// any mutating call, the cluster's included; the same from a service file.
#[tokio::test]
async fn a_bake_time_for_a_rolling_service_is_refused_before_any_change() {
    let stack = local_stack();
    let td = stack.register_app("baked", "nginx:1").await;
    let base = [
        "--cluster",
        "bake",
        "--service",
        "baked",
        "--task-definition",
        td.as_str(),
        "--no-wait",
    ];
    let args: Args = stack.parse("service-run", &base);
    let ctx = stack.ctx(false).await;
    ecskit::step::run::<ServiceRun>(&ctx, &args).await.unwrap();

    let mut argv = base.to_vec();
    argv.extend(["--bake-time", "5m"]);
    let args: Args = stack.parse("service-run", &argv);
    let ctx = stack.ctx(false).await;
    let err = ecskit::step::run::<ServiceRun>(&ctx, &args)
        .await
        .expect_err("the bake time was accepted for a rolling service");
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string()
            .starts_with("service baked keeps ECS's default strategy ROLLING: --bake-time"),
        "{err}"
    );
    assert!(
        ctx.calls().mutating().is_empty(),
        "{:?}",
        ctx.calls().mutating()
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.json");
    std::fs::write(
        &file,
        serde_json::json!({"serviceName": "baked", "desiredCount": 1, "launchType": "FARGATE",
            "deploymentConfiguration": {"bakeTimeInMinutes": 5}})
        .to_string(),
    )
    .unwrap();
    let file = file.to_string_lossy().to_string();
    let mut argv = base.to_vec();
    argv.extend(["--service-file", file.as_str()]);
    let args: Args = stack.parse("service-run", &argv);
    let ctx = stack.ctx(false).await;
    let err = ecskit::step::run::<ServiceRun>(&ctx, &args)
        .await
        .expect_err("the file's bake time was accepted for a rolling service");
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string().contains(
            "keeps ECS's default strategy ROLLING: --bake-time (deploymentConfiguration.bakeTimeInMinutes)"
        ),
        "{err}"
    );
    assert!(
        ctx.calls().mutating().is_empty(),
        "{:?}",
        ctx.calls().mutating()
    );
}

/// A new service starts from ECS's defaults: a bake time without a strategy (ECS would make it
/// rolling and drop the bake time) is exit 2 before any mutating call; a blue/green service file
/// without the bake time ECS requires, the same.
#[tokio::test]
async fn a_new_service_gets_the_rollout_check_of_ecs_defaults_before_any_change() {
    let stack = local_stack();
    let td = stack.register_app("bluegreen", "nginx:1").await;
    let tg = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/green/1";
    let rule = "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/web/1/2/3";
    let role = "arn:aws:iam::123456789012:role/ecs-infrastructure";
    let argv = [
        "--cluster",
        "bg",
        "--service",
        "bluegreen",
        "--task-definition",
        td.as_str(),
        "--no-wait",
        "--bake-time",
        "5m",
    ];
    let args: Args = stack.parse("service-run", &argv);
    let ctx = stack.ctx(false).await;
    let err = ecskit::step::run::<ServiceRun>(&ctx, &args)
        .await
        .expect_err("a new service took a bake time without a strategy");
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string().starts_with(
            "service bluegreen keeps ECS's default strategy ROLLING: --bake-time (deploymentConfiguration.bakeTimeInMinutes) applies to blue-green"
        ),
        "{err}"
    );
    assert!(
        ctx.calls().mutating().is_empty(),
        "{:?}",
        ctx.calls().mutating()
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.json");
    std::fs::write(
        &file,
        serde_json::json!({"serviceName": "bluegreen", "desiredCount": 1, "launchType": "FARGATE",
            "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/blue/1",
                "containerName": "app", "containerPort": 80,
                "advancedConfiguration": {"alternateTargetGroupArn": tg, "productionListenerRule": rule, "roleArn": role}}],
            "deploymentConfiguration": {"strategy": "BLUE_GREEN"}})
        .to_string(),
    )
    .unwrap();
    let file = file.to_string_lossy().to_string();
    let args: Args = stack.parse(
        "service-run",
        &[
            "--cluster",
            "bg",
            "--task-definition",
            td.as_str(),
            "--no-wait",
            "--service-file",
            file.as_str(),
        ],
    );
    let ctx = stack.ctx(false).await;
    let err = ecskit::step::run::<ServiceRun>(&ctx, &args)
        .await
        .expect_err("the file's blue/green service without a bake time was created");
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string().contains(
            "service bluegreen: --bake-time (deploymentConfiguration.bakeTimeInMinutes): missing"
        ),
        "{err}"
    );
    assert!(
        ctx.calls().mutating().is_empty(),
        "{:?}",
        ctx.calls().mutating()
    );
}
