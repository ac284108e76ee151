//! service-run's day-2 commands against the emulator: `--rollback` chooses the previous
//! revision and makes exactly one UpdateService; a service with one revision cannot be rolled
//! back (exit 2, nothing changed); `--logs` reads the streams ECS names for the service's tasks.

use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, LogConfiguration, LogDriver, NetworkMode,
};
use ecskit::progress::Progress;
use ecskit::service_run::{Deps, ServiceRun, Timing, run_with};

/// The step as its binary runs it.
async fn run(a: ecskit::service_run::Args) -> ecskit::Result<ecskit::Report> {
    ecskit::step::run_from_flags::<ServiceRun>(&a).await
}
use ecskit_testkit::LocalStack;

async fn register(stack: &LocalStack, image: &str) -> String {
    let ecs = stack.ctx(false).await.ecs();
    ecs.register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image(image)
                .memory(512)
                .log_configuration(
                    LogConfiguration::builder()
                        .log_driver(LogDriver::Awslogs)
                        .options("awslogs-group", "/ecs/web")
                        .options("awslogs-stream-prefix", "ecs")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap()
        .task_definition_arn
        .unwrap()
}

fn args(stack: &LocalStack, extra: &[&str]) -> ecskit::service_run::Args {
    let mut v = vec![
        "--poll-interval",
        "100ms",
        "--timeout",
        "20s",
        "--cluster",
        "app",
        "--service",
        "web",
    ];
    v.extend_from_slice(extra);
    stack.parse("service-run", &v)
}

async fn deps(stack: &LocalStack) -> Deps {
    let timing = Timing {
        poll: Duration::from_millis(100),
        timeout: Duration::from_secs(20),
        ..Timing::default()
    };
    Deps::new(stack.ctx(false).await, Progress::plain(), timing)
}

async fn current_task_definition(stack: &LocalStack) -> String {
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
        .services()[0]
        .task_definition()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn rollback_goes_to_the_previous_revision_with_one_update() {
    let stack = ecskit_testkit::local_stack();
    let td1 = register(&stack, "nginx:1").await;
    register(&stack, "nginx:2").await;
    run(args(&stack, &["--task-definition", "web:2"]))
        .await
        .unwrap();

    // A dry run names the revision and changes nothing.
    let dry = deps(&stack).await;
    let mut a = args(&stack, &["--rollback", "--dry-run"]);
    a.common.dry_run = true;
    let dry_ctx = ecskit::aws::Ctx::from_sdk_config(
        dry.ctx.sdk_config().clone(),
        Some(stack.moto_url.clone()),
        true,
    );
    let dry = Deps::new(dry_ctx, Progress::plain(), dry.timing);
    let planned = run_with(&dry, &a).await.unwrap();
    assert_eq!(dry.ctx.calls().mutating(), vec![]);
    assert!(
        planned
            .get_str("rollback_reason")
            .unwrap()
            .contains("previous ACTIVE revision of web (web:1)"),
        "{planned:?}"
    );
    assert!(current_task_definition(&stack).await.ends_with("web:2"));

    let d = deps(&stack).await;
    let report = run_with(&d, &args(&stack, &["--rollback"])).await.unwrap();
    let ops: Vec<String> = d
        .ctx
        .calls()
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert_eq!(ops, ["UpdateService"]);
    assert!(report.changed);
    assert_eq!(
        report
            .get_str("rollback_from")
            .as_deref()
            .map(|s| s.ends_with("web:2")),
        Some(true)
    );
    assert!(
        current_task_definition(&stack).await.ends_with("web:1"),
        "{td1}"
    );
}

#[tokio::test]
async fn a_service_with_one_revision_cannot_be_rolled_back() {
    let stack = ecskit_testkit::local_stack();
    register(&stack, "nginx:1").await;
    run(args(&stack, &["--task-definition", "web:1"]))
        .await
        .unwrap();
    let d = deps(&stack).await;
    let err = run_with(&d, &args(&stack, &["--rollback"]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string()
            .contains("web:1 is the only ACTIVE revision of its family"),
        "{err}"
    );
    assert_eq!(d.ctx.calls().mutating(), vec![]);
}

#[tokio::test]
async fn logs_reads_the_streams_of_the_services_tasks() {
    let stack = ecskit_testkit::local_stack();
    register(&stack, "nginx:1").await;
    run(args(
        &stack,
        &["--task-definition", "web:1", "--desired-count", "1"],
    ))
    .await
    .unwrap();
    // moto starts no tasks for a service, and lists every task of the cluster for a service
    // name: a task started here stands in for the service's task.
    let one_off: ecskit::task_run::Args = stack.parse(
        "task-run",
        &[
            "--cluster",
            "app",
            "--task-definition",
            "web:1",
            "--no-wait",
        ],
    );
    ecskit::step::run_from_flags::<ecskit::task_run::TaskRun>(&one_off)
        .await
        .unwrap();
    let ctx = stack.ctx(false).await;
    let tasks = ctx
        .ecs()
        .list_tasks()
        .cluster("app")
        .service_name("web")
        .send()
        .await
        .unwrap();
    let task = tasks
        .task_arns()
        .first()
        .cloned()
        .expect("the task is listed");
    let id = task.rsplit('/').next().unwrap();
    let cw = ctx.logs();
    cw.create_log_group()
        .log_group_name("/ecs/web")
        .send()
        .await
        .unwrap();
    let stream = format!("ecs/app/{id}");
    cw.create_log_stream()
        .log_group_name("/ecs/web")
        .log_stream_name(&stream)
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    cw.put_log_events()
        .log_group_name("/ecs/web")
        .log_stream_name(&stream)
        .log_events(
            InputLogEvent::builder()
                .timestamp(now - 1000)
                .message("listening on :8080")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let d = deps(&stack).await;
    let report = run_with(&d, &args(&stack, &["--logs", "--since", "5m"]))
        .await
        .unwrap();
    assert_eq!(report.get_str("lines").as_deref(), Some("1"));
    assert!(!report.changed);
    assert_eq!(d.ctx.calls().mutating(), vec![]);
}
