//! service-run --verify checks that the rollout's CloudWatch alarms exist, on recorded answers:
//! the SDK's CloudWatch client speaks Smithy RPC v2 CBOR, which moto 5.2.5 does not (its
//! CloudWatch answers the query protocol only), so DescribeAlarms is played back as CBOR. An
//! alarm that does not exist is a failed check, exit 2, before any mutating call; the flags'
//! alarms and a service file's are both checked.

mod json_replay;

use clap::Parser;
use ecskit::service_run::{Args, ServiceRun};
use json_replay::{Replay, ok};
use serde_json::json;

const TD: &str = "arn:aws:ecs:us-west-2:123456789012:task-definition/web:1";

fn task_definition() -> json_replay::Exchange {
    // bridge mode: no network to check, so the alarms are the only check here.
    ok(
        "DescribeTaskDefinition",
        json!({"taskDefinition": {
            "taskDefinitionArn": TD, "family": "web", "revision": 1, "status": "ACTIVE",
            "networkMode": "bridge", "requiresCompatibilities": ["EC2"],
            "containerDefinitions": [{"name": "app", "image": "nginx:1", "essential": true, "memory": 128}]
        }}),
    )
}

async fn run(replay: &Replay, extra: &[&str]) -> ecskit::Result<ecskit::Report> {
    let mut all = vec![
        "service-run",
        "--cluster",
        "prod",
        "--service",
        "web",
        "--task-definition",
        TD,
        "--launch-type",
        "EC2",
        "--verify=network",
        "--no-wait",
    ];
    all.extend_from_slice(extra);
    let mut args = Args::try_parse_from(all).unwrap();
    args.aws.region = Some("us-west-2".into());
    ecskit::step::run::<ServiceRun>(&replay.ctx(false), &args).await
}

#[tokio::test]
async fn an_alarm_that_does_not_exist_fails_verify_before_any_change() {
    let replay = Replay::new(vec![
        task_definition(),
        ok(
            "DescribeAlarms",
            json!({"MetricAlarms": [{"AlarmName": "web-5xx", "StateValue": "OK"}], "CompositeAlarms": []}),
        ),
    ]);
    let err = run(&replay, &["--alarm", "web-5xx", "--alarm", "web-latency"])
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert_eq!(
        err.to_string(),
        "verify: alarm web-latency: no CloudWatch alarm of this name in this region: it would never fire, and never roll the deployment back (create it, or fix the name)"
    );
    assert_eq!(replay.sent(), ["DescribeTaskDefinition", "DescribeAlarms"]);
    let body = &replay.bodies()[1];
    assert!(!body.is_empty(), "the names are asked for");

    // A service file's alarms are checked the same way.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.json");
    std::fs::write(
        &file,
        json!({"desiredCount": 1,
               "deploymentConfiguration": {"alarms": {"alarmNames": ["web-errors"], "enable": true, "rollback": true}}})
        .to_string(),
    )
    .unwrap();
    let replay = Replay::new(vec![
        task_definition(),
        ok(
            "DescribeAlarms",
            json!({"MetricAlarms": [], "CompositeAlarms": []}),
        ),
    ]);
    let err = run(&replay, &["--service-file", file.to_str().unwrap()])
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(
        err.to_string()
            .starts_with("verify: alarm web-errors: no CloudWatch alarm of this name"),
        "{err}"
    );
    assert_eq!(replay.sent(), ["DescribeTaskDefinition", "DescribeAlarms"]);
}
