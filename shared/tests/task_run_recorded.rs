//! task-run on ECS on recorded RunTask/DescribeTasks/FilterLogEvents answers (aws-smithy-mocks,
//! in strict call order): the emulator never produces stopped reasons, exit codes or
//! IAM-propagation errors. The clock is virtual, so minutes of polling run instantly.

use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::run_task::{RunTaskError, RunTaskOutput};
use aws_sdk_ecs::types::Task;
use aws_sdk_ecs::types::error::ClientException;
use aws_smithy_mocks::{Rule, mock};
use aws_smithy_types::error::metadata::ErrorMetadata;
use ecskit::ecs::taskdef::TaskDef;
use ecskit::output::OutputFormat;
use ecskit::task_run::run::{TaskSpec, run_task};

mod ecs_recorded;
use ecs_recorded::{RecordedLogs, TASK, deps, described, failed_outputs, task};

fn spec() -> TaskSpec {
    TaskSpec {
        cluster: "app".into(),
        task_definition: TaskDef {
            arn: "arn:aws:ecs:us-west-2:123456789012:task-definition/migrate:1".into(),
            family: "migrate".into(),
            revision: 1,
            awsvpc: false,
            essentials: vec!["app".into()],
            ..Default::default()
        },
        command: Some(vec!["bin/migrate".into()]),
        env: vec![("MODE".into(), "once".into())],
        task_role_arn: Some("arn:aws:iam::123456789012:role/migrate".into()),
        wait: true,
        ..Default::default()
    }
}

fn run_ok() -> Rule {
    let out = RunTaskOutput::builder()
        .tasks(
            Task::builder()
                .task_arn(TASK)
                .last_status("PROVISIONING")
                .build(),
        )
        .build();
    mock!(Client::run_task)
        .match_requests(|r| {
            let o = r.overrides().unwrap();
            let c = &o.container_overrides()[0];
            o.task_role_arn() == Some("arn:aws:iam::123456789012:role/migrate")
                && c.name() == Some("app")
                && c.command() == ["bin/migrate"]
                && c.environment()[0].name() == Some("MODE")
                && r.client_token().is_some()
        })
        .then_output(move || out.clone())
}

#[tokio::test]
async fn run_task_with_a_failing_essential_container_fails_with_its_exit_code() {
    let d = deps(&[
        run_ok(),
        described(task(
            "PROVISIONING",
            None,
            &[("app", None), ("sidecar", None)],
        )),
        described(task("RUNNING", None, &[("app", None), ("sidecar", None)])),
        described(task(
            "STOPPED",
            Some("Essential container in task exited"),
            &[("app", Some(2)), ("sidecar", Some(0))],
        )),
    ]);
    let err = run_task(&d, &spec()).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    let text = err.to_string();
    assert!(
        text.contains("essential container app exited with code 2"),
        "{text}"
    );
    assert!(
        text.contains("Essential container in task exited"),
        "{text}"
    );
    let env = failed_outputs(&err, OutputFormat::Env);
    assert_eq!(env["ECSKIT_TASK_ARN"], TASK, "{env:?}");
    assert_eq!(env["ECSKIT_EXIT_CODE"], "2", "{env:?}");
    assert_eq!(env["ECSKIT_EXIT_CODE_APP"], "2", "{env:?}");
    // Only essential containers have a code output (the sidecar is not essential here).
    assert!(!env.contains_key("ECSKIT_EXIT_CODE_SIDECAR"), "{env:?}");
    assert!(
        env["ECSKIT_FAILURE"].contains("exited with code 2"),
        "{env:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ecskit::cli::failure_output(&err, OutputFormat::Json).unwrap())
            .unwrap();
    assert_eq!(json["task_arn"], TASK, "{json:#}");
    assert_eq!(json["exit_code_app"], 2, "{json:#}");
}

fn not_assumable() -> Rule {
    mock!(Client::run_task).then_error(|| {
        let message = "ECS was unable to assume the role 'arn:aws:iam::123456789012:role/migrate' that was provided for this task. Please verify that the role being passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role.";
        RunTaskError::ClientException(
            ClientException::builder()
                .message(message)
                .meta(ErrorMetadata::builder().code("ClientException").message(message).build())
                .build(),
        )
    })
}

#[tokio::test]
async fn iam_propagation_is_retried_until_the_role_works() {
    let d = deps(&[
        not_assumable(),
        not_assumable(),
        run_ok(),
        described(task(
            "STOPPED",
            Some("Essential container in task exited"),
            &[("app", Some(0))],
        )),
    ]);
    let finished = run_task(&d, &spec()).await.unwrap().remove(0);
    assert_eq!(finished.task_arn, TASK);
    assert_eq!(finished.exit_code, Some(0));
    assert_eq!(
        d.clock.elapsed(),
        Duration::from_secs(5 + 10),
        "backoff 5s then 10s"
    );
}

#[tokio::test]
async fn iam_propagation_retry_gives_up_after_two_minutes() {
    let rules: Vec<Rule> = (0..10).map(|_| not_assumable()).collect();
    let d = deps(&rules);
    let err = run_task(&d, &spec()).await.unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string().contains("unable to assume the role"),
        "{err}"
    );
    assert!(err.hint_text().unwrap().contains("trust policy"));
    assert!(d.clock.elapsed() <= Duration::from_secs(120));
}

/// `--logs`: the one-off task's lines are printed while it runs, each once, before
/// the stopped report; the exit code contract is kept (a failing essential container is exit 3).
#[tokio::test]
async fn run_task_logs_streams_the_tasks_lines_while_it_runs() {
    let stream = format!("ecs/app/{}", TASK.rsplit('/').next().unwrap());
    let first: &'static str = Box::leak(
        format!(
            r#"{{"events":[{{"logStreamName":"{stream}","timestamp":10,"message":"migrating 1/2","eventId":"e1"}}],"searchedLogStreams":[]}}"#
        )
        .into_boxed_str(),
    );
    let second: &'static str = Box::leak(
        format!(
            r#"{{"events":[{{"logStreamName":"{stream}","timestamp":10,"message":"migrating 1/2","eventId":"e1"}},{{"logStreamName":"{stream}","timestamp":20,"message":"FATAL: table locked","eventId":"e2"}}],"searchedLogStreams":[]}}"#
        )
        .into_boxed_str(),
    );
    let recorded = RecordedLogs {
        answers: vec![first, second],
        ..Default::default()
    };
    let mut d = deps(&[
        run_ok(),
        described(task("RUNNING", None, &[("app", None)])),
        described(task(
            "STOPPED",
            Some("Essential container in task exited"),
            &[("app", Some(1))],
        )),
    ]);
    d.ctx = recorded.ctx();
    let mut s = spec();
    s.logs = true;
    s.task_definition.logs.insert(
        "app".into(),
        Some(ecskit::ecs::logs::AwsLogs {
            group: "/ecs/migrate".into(),
            stream_prefix: Some("ecs".into()),
            region: None,
        }),
    );
    let err = run_task(&d, &s).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    let short = TASK.rsplit('/').next().unwrap();
    let short = &short[..8.min(short.len())];
    let lines = d.progress.lines();
    let streamed: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("migrating") || l.contains("FATAL"))
        .collect();
    assert!(
        streamed.len() >= 2 && streamed[0].contains(&format!("{short} app] migrating 1/2")),
        "{lines:#?}"
    );
    // Each line once, though the polls overlap (the failure report's tail below is apart).
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.ends_with("app] migrating 1/2"))
            .count(),
        1,
        "{lines:#?}"
    );
    let fatal = lines
        .iter()
        .position(|l| l.ends_with("app] FATAL: table locked"))
        .expect("the last line");
    let stopped = lines
        .iter()
        .position(|l| l.contains("stopped: Essential container"))
        .unwrap();
    assert!(
        fatal < stopped,
        "the lines come before the stopped report: {lines:#?}"
    );
    let asked = recorded.asked.lock().unwrap().clone();
    let first_request: serde_json::Value = serde_json::from_str(&asked[0]).unwrap();
    assert_eq!(first_request["logGroupName"], "/ecs/migrate");
    assert_eq!(first_request["logStreamNames"], serde_json::json!([stream]));
}

const TASK2: &str = "arn:aws:ecs:us-west-2:123456789012:task/app/fedcba9876543210";

/// A task like [`task`], with another ARN.
fn second(status: &str, containers: &[(&str, Option<i32>)]) -> Task {
    let mut t = task(
        status,
        Some("Essential container in task exited"),
        containers,
    );
    t.task_arn = Some(TASK2.into());
    t
}

fn described_second(t: Task) -> Rule {
    let out = aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput::builder()
        .tasks(t)
        .build();
    mock!(Client::describe_tasks)
        .match_requests(|r| r.tasks() == [TASK2])
        .then_output(move || out.clone())
}

/// `--count 2 --started-by --tag`: one RunTask for both, the user's tags beside managed-by
/// (a managed-by of the user's own is dropped: it marks what --stop may stop).
fn run_two() -> Rule {
    let out = RunTaskOutput::builder()
        .tasks(Task::builder().task_arn(TASK).build())
        .tasks(Task::builder().task_arn(TASK2).build())
        .build();
    mock!(Client::run_task)
        .match_requests(|r| {
            let tags: Vec<(&str, &str)> = r
                .tags()
                .iter()
                .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
                .collect();
            r.count() == Some(2)
                && r.started_by() == Some("nightly-job")
                && tags == [("job", "nightly"), ("managed-by", "ecskit")]
        })
        .then_output(move || out.clone())
}

fn two() -> TaskSpec {
    TaskSpec {
        count: 2,
        started_by: Some("nightly-job".into()),
        tags: vec![
            ("job".into(), "nightly".into()),
            ("managed-by".into(), "someone".into()),
        ],
        ..spec()
    }
}

#[tokio::test]
async fn count_tasks_are_all_waited_for_with_every_containers_code() {
    let d = deps(&[
        run_two(),
        described(task(
            "STOPPED",
            Some("done"),
            &[("app", Some(0)), ("sidecar", Some(0))],
        )),
        described_second(second("STOPPED", &[("app", Some(0))])),
    ]);
    let finished = run_task(&d, &two()).await.unwrap();
    let arns: Vec<&str> = finished.iter().map(|f| f.task_arn.as_str()).collect();
    assert_eq!(arns, [TASK, TASK2]);
    assert_eq!(finished[0].exit_code, Some(0));
    // The essential container's code only (the sidecar is not essential here).
    assert_eq!(finished[0].codes, [("app".to_string(), 0)]);
}

/// The first task fails and the second then cannot be read: the failure (exit 3, with the
/// container's code) is what the run reports, not the later AWS error.
#[tokio::test]
async fn the_first_failure_is_kept_when_a_later_task_errs() {
    let d = deps(&[
        run_two(),
        described(task(
            "STOPPED",
            Some("Essential container in task exited"),
            &[("app", Some(7))],
        )),
        mock!(Client::describe_tasks).then_error(|| {
            aws_sdk_ecs::operation::describe_tasks::DescribeTasksError::ClientException(
                ClientException::builder()
                    .message("throttled for good")
                    .meta(ErrorMetadata::builder().code("ClientException").build())
                    .build(),
            )
        }),
    ]);
    let err = run_task(&d, &two()).await.unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    let env = failed_outputs(&err, OutputFormat::Env);
    assert_eq!(env["ECSKIT_EXIT_CODE_APP"], "7", "{env:?}");
    assert_eq!(env["ECSKIT_TASK_ARN"], TASK, "{env:?}");
}

/// ECS started one task of two: a failure (exit 1) naming the one that runs, so it can be
/// stopped, and why the other did not start.
#[tokio::test]
async fn fewer_tasks_than_asked_is_a_failure_naming_the_started_one() {
    let out = RunTaskOutput::builder()
        .tasks(Task::builder().task_arn(TASK).build())
        .failures(
            aws_sdk_ecs::types::Failure::builder()
                .reason("RESOURCE:MEMORY")
                .build(),
        )
        .build();
    let d = deps(&[mock!(Client::run_task).then_output(move || out.clone())]);
    let err = run_task(&d, &two()).await.unwrap_err();
    assert_eq!(err.exit_code(), 1, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("started 1 of 2 tasks") && text.contains(TASK),
        "{text}"
    );
    assert!(text.contains("RESOURCE:MEMORY"), "{text}");
}

/// A service's task carries the service's tags (managed-by=ecskit included, as service-run
/// propagates them): `--stop` refuses it by ECS's service group, exit 2, and never stops it
/// (the mock has no StopTask: a call would be an error of another kind).
#[tokio::test]
async fn stop_refuses_a_task_of_a_service_even_when_tagged() {
    let service_task = Task::builder()
        .task_arn(TASK)
        .last_status("RUNNING")
        .group("service:web")
        .started_by("ecs-svc/1234567890")
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("managed-by")
                .value("ecskit")
                .build(),
        )
        .build();
    let d = deps(&[described(service_task)]);
    let err = ecskit::task_run::stop::stop(&d, "app", TASK, None)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string()
            .contains("belongs to a service (service:web)"),
        "{err}"
    );
}
