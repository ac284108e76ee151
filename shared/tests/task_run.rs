//! task-run against the emulator: `--count` tasks started with the user's tags and the
//! managed-by tag `--stop` relies on; `--stop` stops what task-run started (once: a second
//! stop is `changed: false`) and refuses, exit 2, a task it did not start; a dry run starts
//! nothing. Each test has a cluster of its own (they share the emulator).

use aws_sdk_ecs::types::TaskField;
use ecskit::task_run::{Args, TaskRun};
use ecskit_testkit::LocalStack;

async fn task_run(stack: &LocalStack, argv: &[&str]) -> ecskit::Result<ecskit::Report> {
    let args: Args = stack.parse("task-run", argv);
    ecskit::step::run_from_flags::<TaskRun>(&args).await
}

/// The task's tags and desired status, as ECS reports them.
async fn described(
    stack: &LocalStack,
    cluster: &str,
    task: &str,
) -> (Vec<(String, String)>, String) {
    let out = stack
        .ctx(false)
        .await
        .ecs()
        .describe_tasks()
        .cluster(cluster)
        .tasks(task)
        .include(TaskField::Tags)
        .send()
        .await
        .unwrap();
    let t = &out.tasks()[0];
    let tags = t
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (tags, t.desired_status().unwrap_or_default().to_string())
}

#[tokio::test]
async fn count_tasks_start_tagged_and_stop_only_what_task_run_started() {
    let stack = ecskit_testkit::local_stack();
    let td = stack.register_app("once", "busybox").await;
    let report = task_run(
        &stack,
        &[
            "--cluster",
            "tr-tags",
            "--task-definition",
            &td,
            "--count",
            "2",
            "--no-wait",
            "--tag",
            "job=nightly",
        ],
    )
    .await
    .unwrap();
    let arns: Vec<String> = report
        .get_str("TASK_ARN")
        .unwrap()
        .split(' ')
        .map(str::to_string)
        .collect();
    assert_eq!(arns.len(), 2, "{arns:?}");
    let (tags, _) = described(&stack, "tr-tags", &arns[0]).await;
    for want in [("managed-by", "ecskit"), ("job", "nightly")] {
        assert!(
            tags.iter().any(|(k, v)| k == want.0 && v == want.1),
            "{want:?} missing from {tags:?}"
        );
    }

    // A task someone else started (no managed-by tag) is refused and keeps running.
    let (subnets, sg) = stack.default_network().await;
    let foreign = stack
        .ctx(false)
        .await
        .ecs()
        .run_task()
        .cluster("tr-tags")
        .task_definition(&td)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .network_configuration(
            aws_sdk_ecs::types::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                        .set_subnets(Some(subnets))
                        .security_groups(sg)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .tasks()[0]
        .task_arn()
        .unwrap()
        .to_string();
    let err = task_run(&stack, &["--cluster", "tr-tags", "--stop", &foreign])
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string().contains("stops only the tasks it started"),
        "{err}"
    );
    assert_eq!(described(&stack, "tr-tags", &foreign).await.1, "RUNNING");

    // Its own task is stopped, with the reason; a second stop changes nothing.
    let stopped = task_run(
        &stack,
        &[
            "--cluster",
            "tr-tags",
            "--stop",
            &arns[1],
            "--reason",
            "test over",
        ],
    )
    .await
    .unwrap();
    assert!(stopped.changed);
    assert_eq!(described(&stack, "tr-tags", &arns[1]).await.1, "STOPPED");
    let again = task_run(&stack, &["--cluster", "tr-tags", "--stop", &arns[1]])
        .await
        .unwrap();
    assert!(!again.changed);
}

#[tokio::test]
async fn a_dry_run_starts_nothing() {
    let stack = ecskit_testkit::local_stack();
    let td = stack.register_app("once", "busybox").await;
    let report = task_run(
        &stack,
        &["--cluster", "tr-dry", "--task-definition", &td, "--dry-run"],
    )
    .await
    .unwrap();
    assert!(report.changed, "a dry run says what it would do");
    assert_eq!(report.get_str("TASK_ARN"), None);
    let listed = stack
        .ctx(false)
        .await
        .ecs()
        .list_tasks()
        .cluster("tr-dry")
        .send()
        .await;
    // The cluster was not even created.
    assert!(listed.map(|l| l.task_arns().is_empty()).unwrap_or(true));
}
