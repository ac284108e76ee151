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
