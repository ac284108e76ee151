//! Blue/green, canary and linear deployments followed stage by stage, `--wait-until`,
//! `--continue` and `--stop-deployment`, on recorded answers: moto has none of the
//! service-deployment API (ListServiceDeployments, DescribeServiceDeployments,
//! DescribeServiceRevisions, ContinueServiceDeployment, StopServiceDeployment). The answers'
//! shapes are the API reference's (field names, enums, timestamps in epoch seconds), played back
//! at the HTTP layer in strict order ([`json_replay`]), so each test also pins the calls made.
//! The clock is virtual: a 10-minute bake time runs instantly.
//!
//! The five scenarios of the issue: (a) a blue/green deployment through every stage (started
//! from a service file whose strategy is BLUE_GREEN), (b) a canary an alarm rolls back during
//! bake time, (c) a pause hook that holds until `--continue`, (d) a Lambda hook that fails,
//! (e) a deployment a person stops.
//!
//! Over 600 lines because each scenario is a recording of ECS's answers, poll by poll, and they
//! share one set of fixtures: split, the fixtures would be written twice.

mod json_replay;

use clap::Parser;
use ecskit::output::OutputFormat;
use ecskit::progress::Progress;
use ecskit::service_run::{Args, ServiceRun};
use json_replay::{Exchange, Replay, ok};
use serde_json::{Value, json};

const CLUSTER: &str = "arn:aws:ecs:us-west-2:123456789012:cluster/app";
const SERVICE: &str = "arn:aws:ecs:us-west-2:123456789012:service/app/web";
const TD_OLD: &str = "arn:aws:ecs:us-west-2:123456789012:task-definition/web:2";
const TD_NEW: &str = "arn:aws:ecs:us-west-2:123456789012:task-definition/web:3";
/// This run's service deployment and its target revision.
const SD: &str =
    "arn:aws:ecs:us-west-2:123456789012:service-deployment/app/web/Xy7pQ2rT9sLm4KvB1nWc8";
const REV_NEW: &str =
    "arn:aws:ecs:us-west-2:123456789012:service-revision/app/web/4681436386437183218";
/// Another service deployment, created a second before this run's: web:2 again, by someone else.
const SD_OTHER: &str =
    "arn:aws:ecs:us-west-2:123456789012:service-deployment/app/web/Ab3dE5fG7hJ9kL1mN3pQ5";
const REV_OLD: &str =
    "arn:aws:ecs:us-west-2:123456789012:service-revision/app/web/2207385329116590301";
const SMOKE: &str = "arn:aws:lambda:us-west-2:123456789012:function:web-smoke-test";
const HOOK: &str = "e5c3a1f0-8d6b-4f5e-9a2c-7b1d3e5f7a9c";
/// When this run's DescribeServices deployment was created.
const T0: f64 = 1_760_000_000.0;

/// DescribeServices: web deploying web:3 with `strategy`, web:2 still serving.
fn service(strategy: &str, rollout: &str, running: i32) -> Value {
    json!({"services": [{
        "serviceArn": SERVICE, "serviceName": "web", "clusterArn": CLUSTER, "status": "ACTIVE",
        "taskDefinition": TD_NEW, "desiredCount": 2, "runningCount": running, "pendingCount": 0,
        "launchType": "FARGATE",
        "deploymentConfiguration": {
            "strategy": strategy, "bakeTimeInMinutes": 10,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true},
            "maximumPercent": 200, "minimumHealthyPercent": 100
        },
        "deployments": [
            {"id": "ecs-svc/3333", "status": "PRIMARY", "taskDefinition": TD_NEW, "desiredCount": 2,
             "runningCount": running, "pendingCount": 0, "rolloutState": rollout,
             "rolloutStateReason": "ECS deployment ecs-svc/3333 in progress.", "createdAt": T0},
            {"id": "ecs-svc/2222", "status": "ACTIVE", "taskDefinition": TD_OLD, "desiredCount": 2,
             "runningCount": 2, "pendingCount": 0, "rolloutState": "COMPLETED", "createdAt": T0 - 86_400.0}
        ],
        "events": [],
        "currentServiceDeployment": SD
    }], "failures": []})
}

fn task_definition() -> Value {
    json!({"taskDefinition": {
        "taskDefinitionArn": TD_NEW, "family": "web", "revision": 3, "status": "ACTIVE",
        "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "app", "image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/web:3", "essential": true,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/web", "awslogs-region": "us-west-2", "awslogs-stream-prefix": "ecs"}}}]
    }})
}

/// ListServiceDeployments: the other one first (created a second before this run's deployment,
/// so closest in time), then this run's.
fn listed() -> Value {
    json!({"serviceDeployments": [
        {"serviceDeploymentArn": SD_OTHER, "serviceArn": SERVICE, "clusterArn": CLUSTER,
         "createdAt": T0 - 1.0, "startedAt": T0 - 1.0, "finishedAt": T0 + 1.0,
         "targetServiceRevisionArn": REV_OLD, "status": "STOPPED",
         "statusReason": "Service deployment stopped because a new deployment was started."},
        {"serviceDeploymentArn": SD, "serviceArn": SERVICE, "clusterArn": CLUSTER,
         "createdAt": T0 + 2.0, "startedAt": T0 + 2.0,
         "targetServiceRevisionArn": REV_NEW, "status": "IN_PROGRESS"}
    ]})
}

fn revisions() -> Value {
    json!({"serviceRevisions": [
        {"serviceRevisionArn": REV_OLD, "serviceArn": SERVICE, "clusterArn": CLUSTER,
         "taskDefinition": TD_OLD, "launchType": "FARGATE", "createdAt": T0 - 1.0},
        {"serviceRevisionArn": REV_NEW, "serviceArn": SERVICE, "clusterArn": CLUSTER,
         "taskDefinition": TD_NEW, "launchType": "FARGATE", "createdAt": T0 + 2.0}
    ], "failures": []})
}

/// DescribeServiceDeployments: this run's at `stage` with `status`, `extra` laid over it.
fn deployment(strategy: &str, stage: &str, status: &str, extra: Value) -> Value {
    let mut sd = json!({
        "serviceDeploymentArn": SD, "serviceArn": SERVICE, "clusterArn": CLUSTER,
        "createdAt": T0 + 2.0, "startedAt": T0 + 2.0, "updatedAt": T0 + 60.0,
        "sourceServiceRevisions": [{"arn": REV_OLD, "requestedTaskCount": 2, "runningTaskCount": 2, "pendingTaskCount": 0,
            "requestedTestTrafficWeight": 0.0, "requestedProductionTrafficWeight": 100.0}],
        "targetServiceRevision": {"arn": REV_NEW, "requestedTaskCount": 2, "runningTaskCount": 2, "pendingTaskCount": 0,
            "requestedTestTrafficWeight": 100.0, "requestedProductionTrafficWeight": 0.0},
        "status": status,
        "lifecycleStage": stage,
        "deploymentConfiguration": {
            "strategy": strategy, "bakeTimeInMinutes": 10,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true},
            "alarms": {"alarmNames": ["web-5xx"], "enable": true, "rollback": true},
            "maximumPercent": 200, "minimumHealthyPercent": 100
        },
        "deploymentCircuitBreaker": {"failureCount": 0, "status": "MONITORING", "threshold": 10},
        "alarms": {"alarmNames": ["web-5xx"], "status": "MONITORING", "triggeredAlarmNames": []}
    });
    if let (Some(base), Some(over)) = (sd.as_object_mut(), extra.as_object()) {
        for (k, v) in over {
            base.insert(k.clone(), v.clone());
        }
    }
    json!({"serviceDeployments": [sd], "failures": []})
}

/// The target revision's share of production traffic (a PRODUCTION_TRAFFIC_SHIFT's answer).
fn production_weight(percent: f64) -> Value {
    json!({"targetServiceRevision": {"arn": REV_NEW, "requestedTaskCount": 2, "runningTaskCount": 2,
        "pendingTaskCount": 0, "requestedProductionTrafficWeight": percent}})
}

fn no_stopped_tasks() -> Exchange {
    ok("ListTasks", json!({"taskArns": []}))
}

/// One poll of the watch once the service deployment is known.
fn poll(service: Value, sd: Value) -> Vec<Exchange> {
    vec![
        ok("DescribeServices", service),
        ok("DescribeServiceDeployments", sd),
        no_stopped_tasks(),
    ]
}

/// The first poll: finds this run's service deployment among the service's.
fn first_poll(service: Value, sd: Value) -> Vec<Exchange> {
    vec![
        ok("DescribeServices", service),
        ok("ListServiceDeployments", listed()),
        ok("DescribeServiceRevisions", revisions()),
        ok("DescribeServiceDeployments", sd),
        no_stopped_tasks(),
    ]
}

fn lambda_hook(status: &str) -> Value {
    json!([{"hookId": HOOK, "targetType": "AWS_LAMBDA", "targetArn": SMOKE, "status": status}])
}

fn pause_hook(status: &str) -> Value {
    json!([{"hookId": HOOK, "targetType": "PAUSE", "status": status,
            "expiresAt": T0 + 3_600.0, "timeoutAction": "ROLLBACK"}])
}

/// A blue/green deployment through every stage: a Lambda hook tests the green revision at
/// TEST_TRAFFIC_SHIFT, the bake time is polled twice, SUCCESSFUL ends it.
fn blue_green_polls() -> Vec<Exchange> {
    let bg = |stage: &str, extra: Value| deployment("BLUE_GREEN", stage, "IN_PROGRESS", extra);
    let svc = || service("BLUE_GREEN", "IN_PROGRESS", 2);
    let mut polls = first_poll(svc(), bg("PRE_SCALE_UP", json!({})));
    for (stage, extra) in [
        ("SCALE_UP", json!({})),
        ("POST_SCALE_UP", json!({})),
        (
            "TEST_TRAFFIC_SHIFT",
            json!({"lifecycleHookDetails": lambda_hook("IN_PROGRESS")}),
        ),
        (
            "TEST_TRAFFIC_SHIFT",
            json!({"lifecycleHookDetails": lambda_hook("SUCCEEDED")}),
        ),
        ("POST_TEST_TRAFFIC_SHIFT", json!({})),
        ("PRODUCTION_TRAFFIC_SHIFT", production_weight(100.0)),
        ("POST_PRODUCTION_TRAFFIC_SHIFT", json!({})),
        ("BAKE_TIME", json!({})),
        ("BAKE_TIME", json!({})),
        ("CLEAN_UP", json!({})),
    ] {
        polls.extend(poll(svc(), bg(stage, extra)));
    }
    polls.extend(poll(
        service("BLUE_GREEN", "COMPLETED", 2),
        deployment(
            "BLUE_GREEN",
            "CLEAN_UP",
            "SUCCESSFUL",
            json!({"finishedAt": T0 + 900.0}),
        ),
    ));
    polls
}

fn args(extra: &[&str]) -> Args {
    let mut all = vec![
        "service-run",
        "--region",
        "us-west-2",
        "--cluster",
        "app",
        "--service",
        "web",
    ];
    all.extend_from_slice(extra);
    Args::try_parse_from(all).unwrap()
}

/// Runs service-run as its binary would, on the recording; the lines it printed on stderr.
async fn run(
    script: Vec<Exchange>,
    args: &Args,
) -> (Replay, ecskit::Result<ecskit::Report>, Vec<String>) {
    run_as(script, args, false).await
}

async fn run_as(
    script: Vec<Exchange>,
    args: &Args,
    dry_run: bool,
) -> (Replay, ecskit::Result<ecskit::Report>, Vec<String>) {
    let replay = Replay::new(script);
    let progress = Progress::capturing();
    let ctx = replay.ctx(dry_run).with_progress(progress.clone());
    let result = ecskit::step::run::<ServiceRun>(&ctx, args).await;
    (replay, result, progress.lines())
}

/// `--watch`'s reads before it follows: the service, its new task definition.
fn attach() -> Vec<Exchange> {
    vec![
        ok("DescribeServices", service("BLUE_GREEN", "IN_PROGRESS", 2)),
        ok("DescribeTaskDefinition", task_definition()),
    ]
}

fn env_of(report: &ecskit::Report) -> String {
    report.render(OutputFormat::Env)
}

#[tokio::test]
async fn a_blue_green_deployment_from_a_service_file_is_followed_through_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.json");
    let doc = json!({
        "cluster": "app", "serviceName": "web", "taskDefinition": "web:3", "desiredCount": 2,
        "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"], "assignPublicIp": "DISABLED"}},
        "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 10,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true}, "maximumPercent": 200, "minimumHealthyPercent": 100},
        // Blue/green shifts traffic between two target groups: the file names both and the rules.
        "loadBalancers": [{
            "targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-blue/0123456789abcdef",
            "containerName": "app", "containerPort": 8080,
            "advancedConfiguration": {
                "alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-green/fedcba9876543210",
                "productionListenerRule": "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9ac1c3a4e3b4b2e0",
                "testListenerRule": "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/web/50dc6c495c0c9188/0467ef3c8400ae65/1b2c3d4e5f6a7b8c",
                "roleArn": "arn:aws:iam::123456789012:role/ecs-blue-green"
            }
        }]
    });
    std::fs::write(&file, doc.to_string()).unwrap();
    // The live service deploys rolling: the file moves it to blue/green with one UpdateService.
    let mut live = service("ROLLING", "COMPLETED", 2);
    live["services"][0]["deploymentConfiguration"]
        .as_object_mut()
        .unwrap()
        .remove("strategy");
    live["services"][0]["taskDefinition"] = json!(TD_OLD);
    live["services"][0]["networkConfiguration"] = doc["networkConfiguration"].clone();
    live["services"][0]["loadBalancers"] = doc["loadBalancers"].clone();
    live["services"][0]["deployments"] = json!([live["services"][0]["deployments"][1]]);
    let mut script = vec![
        ok("DescribeTaskDefinition", task_definition()),
        ok("DescribeServices", live),
        ok(
            "DescribeClusters",
            json!({"clusters": [{"clusterArn": CLUSTER, "clusterName": "app", "status": "ACTIVE",
                "capacityProviders": ["FARGATE", "FARGATE_SPOT"], "registeredContainerInstancesCount": 0}], "failures": []}),
        ),
        ok(
            "UpdateService",
            json!({"service": service("BLUE_GREEN", "IN_PROGRESS", 0)["services"][0]}),
        ),
        ok("TagResource", json!({})),
    ];
    script.extend(blue_green_polls());
    let args = args(&["--service-file", file.to_str().unwrap()]);
    let (replay, result, lines) = run(script, &args).await;
    let report = result.unwrap_or_else(|e| panic!("{}\nsent: {:?}", e.render(), replay.sent()));
    assert!(replay.left().is_empty(), "{:?}", replay.left());
    // The strategy reached UpdateService as the file wrote it.
    let at = replay
        .sent()
        .iter()
        .position(|o| o == "UpdateService")
        .unwrap();
    let body: Value = serde_json::from_str(&replay.bodies()[at]).unwrap();
    assert_eq!(body["deploymentConfiguration"]["strategy"], "BLUE_GREEN");
    // The service deployment looked up is this run's, by its task definition: the other one,
    // a second closer in time, deploys web:2.
    let at = replay
        .sent()
        .iter()
        .position(|o| o == "DescribeServiceDeployments")
        .unwrap();
    let body: Value = serde_json::from_str(&replay.bodies()[at]).unwrap();
    assert_eq!(body["serviceDeploymentArns"], json!([SD]));
    insta::assert_snapshot!("blue_green_lines", lines.join("\n"));
    insta::assert_snapshot!("blue_green_env", env_of(&report));
}

#[tokio::test]
async fn wait_until_stops_at_each_stage_and_names_it_with_the_deployment() {
    // Each point a CI job may wait for, and the poll (1-based) the recording reaches it at.
    let cases = [
        ("PRE_SCALE_UP", 1),
        ("SCALE_UP", 2),
        ("POST_SCALE_UP", 3),
        ("TEST_TRAFFIC_SHIFT", 4),
        ("POST_TEST_TRAFFIC_SHIFT", 6),
        ("PRODUCTION_TRAFFIC_SHIFT", 7),
        ("POST_PRODUCTION_TRAFFIC_SHIFT", 8),
        ("deployed", 8),
        ("BAKE_TIME", 9),
        ("CLEAN_UP", 11),
        ("stable", 12),
    ];
    for (wait, polls) in cases {
        let mut script = attach();
        script.extend(blue_green_polls());
        let args = args(&["--watch", "--wait-until", wait]);
        let (replay, result, lines) = run(script, &args).await;
        let report = result.unwrap_or_else(|e| panic!("{wait}: {}", e.render()));
        let asked = replay
            .sent()
            .iter()
            .filter(|o| *o == "DescribeServiceDeployments")
            .count();
        assert_eq!(asked, polls, "--wait-until {wait}: {lines:#?}");
        let stage = match wait {
            "deployed" => "POST_PRODUCTION_TRAFFIC_SHIFT",
            "stable" => "CLEAN_UP",
            s => s,
        };
        assert_eq!(
            report.get_str("LIFECYCLE_STAGE").as_deref(),
            Some(stage),
            "{wait}"
        );
        assert_eq!(
            report.get_str("SERVICE_DEPLOYMENT_ARN").as_deref(),
            Some(SD)
        );
        let reached = if wait == "stable" {
            "SUCCESSFUL"
        } else {
            stage
        };
        assert_eq!(
            lines.last().unwrap(),
            &format!("reached {reached} (--wait-until {wait}): deployment {SD}")
        );
        assert!(!report.changed, "--watch changes nothing");
    }
}

#[tokio::test]
async fn the_stage_and_the_deployment_reached_are_outputs_in_every_format() {
    let mut script = attach();
    script.extend(blue_green_polls());
    let args = args(&["--watch", "--wait-until", "POST_TEST_TRAFFIC_SHIFT"]);
    let (_, result, _) = run(script, &args).await;
    let report = result.unwrap();
    let json: Value = serde_json::from_str(&report.render(OutputFormat::Json)).unwrap();
    assert_eq!(json["lifecycle_stage"], "POST_TEST_TRAFFIC_SHIFT");
    assert_eq!(json["service_deployment_arn"], SD);
    let github = report.render(OutputFormat::Github);
    assert!(
        github.contains("lifecycle_stage=POST_TEST_TRAFFIC_SHIFT\n")
            && github.contains(&format!("service_deployment_arn={SD}\n")),
        "{github}"
    );
    let text = report.render(OutputFormat::Text);
    assert!(
        text.contains("lifecycle_stage: POST_TEST_TRAFFIC_SHIFT\n"),
        "{text}"
    );
    assert!(env_of(&report).contains("ECSKIT_LIFECYCLE_STAGE=POST_TEST_TRAFFIC_SHIFT\n"));
}

/// A service deployment of the same task definition from an earlier run (a rollback to it, a
/// redeploy) is never taken for this run's, even finished SUCCESSFUL: until ECS lists this
/// run's, the watch waits for it, and the verdict is this run's deployment's.
#[tokio::test]
async fn an_earlier_deployment_of_the_same_task_definition_is_not_this_runs() {
    let earlier =
        "arn:aws:ecs:us-west-2:123456789012:service-deployment/app/web/Old0Old0Old0Old0Old0O";
    let svc = || service("BLUE_GREEN", "IN_PROGRESS", 2);
    let only_the_earlier = json!({"serviceDeployments": [
        {"serviceDeploymentArn": earlier, "serviceArn": SERVICE, "clusterArn": CLUSTER,
         "createdAt": T0 - 86_400.0, "startedAt": T0 - 86_400.0, "finishedAt": T0 - 86_000.0,
         "targetServiceRevisionArn": REV_NEW, "status": "SUCCESSFUL"}
    ]});
    let mut script = attach();
    script.extend(vec![
        ok("DescribeServices", svc()),
        ok("ListServiceDeployments", only_the_earlier),
        ok("DescribeServiceRevisions", revisions()),
        no_stopped_tasks(),
    ]);
    script.extend(first_poll(
        service("BLUE_GREEN", "COMPLETED", 2),
        deployment("BLUE_GREEN", "CLEAN_UP", "SUCCESSFUL", json!({})),
    ));
    let (replay, result, lines) = run(script, &args(&["--watch"])).await;
    let report = result.unwrap_or_else(|e| panic!("{}\n{lines:#?}", e.render()));
    assert!(replay.left().is_empty(), "{:?}", replay.left());
    let json: Value = serde_json::from_str(&report.render(OutputFormat::Json)).unwrap();
    assert_eq!(json["service_deployment_arn"], SD, "{lines:#?}");
}

#[tokio::test]
async fn a_bake_time_longer_than_the_no_progress_limit_is_waited_out() {
    let bg = |stage: &str| deployment("BLUE_GREEN", stage, "IN_PROGRESS", json!({}));
    let svc = || service("BLUE_GREEN", "IN_PROGRESS", 2);
    let mut script = attach();
    script.extend(first_poll(svc(), bg("BAKE_TIME")));
    // Ten polls of 6 s with nothing changing: a minute, twice the no-progress limit.
    for _ in 0..10 {
        script.extend(poll(svc(), bg("BAKE_TIME")));
    }
    script.extend(poll(
        service("BLUE_GREEN", "COMPLETED", 2),
        deployment("BLUE_GREEN", "CLEAN_UP", "SUCCESSFUL", json!({})),
    ));
    let args = args(&["--watch", "--no-progress-timeout", "30s"]);
    let (_, result, lines) = run(script, &args).await;
    result.unwrap_or_else(|e| panic!("{}\n{lines:#?}", e.render()));
    assert_eq!(lines[0], "stage BAKE_TIME 10m left");
}

/// A canary's wait at 10% of production traffic and a Lambda hook ECS keeps calling are quiet
/// by design: neither is "no progress" (only --timeout limits them).
#[tokio::test]
async fn a_canary_step_and_a_running_lambda_hook_are_not_no_progress() {
    let svc = || service("CANARY", "IN_PROGRESS", 2);
    for (stage, extra) in [
        ("PRODUCTION_TRAFFIC_SHIFT", production_weight(10.0)),
        (
            "TEST_TRAFFIC_SHIFT",
            json!({"lifecycleHookDetails": lambda_hook("IN_PROGRESS")}),
        ),
    ] {
        let quiet = || deployment("CANARY", stage, "IN_PROGRESS", extra.clone());
        let mut script = attach();
        script[0] = ok("DescribeServices", svc());
        script.extend(first_poll(svc(), quiet()));
        // Ten polls of 6 s with nothing changing: a minute, twice the no-progress limit.
        for _ in 0..10 {
            script.extend(poll(svc(), quiet()));
        }
        script.extend(poll(
            service("CANARY", "COMPLETED", 2),
            deployment("CANARY", "CLEAN_UP", "SUCCESSFUL", json!({})),
        ));
        let args = args(&["--watch", "--no-progress-timeout", "30s"]);
        let (_, result, lines) = run(script, &args).await;
        result.unwrap_or_else(|e| panic!("{stage}: {}\n{lines:#?}", e.render()));
    }
}

/// (b) A canary: 10% of production traffic, then all of it, then the alarm fires during the bake
/// time and ECS rolls back. One green task crashed meanwhile: its last log lines are in the
/// failure report.
#[tokio::test]
async fn a_canary_rolled_back_by_an_alarm_during_bake_time_is_exit_3_naming_the_alarm() {
    let canary =
        |stage: &str, status: &str, extra: Value| deployment("CANARY", stage, status, extra);
    let svc = || service("CANARY", "IN_PROGRESS", 2);
    let task = "arn:aws:ecs:us-west-2:123456789012:task/app/0f3c9a1e5b7d4c2a8e6f1a3b5c7d9e0f";
    let mut script = attach();
    script[0] = ok("DescribeServices", svc());
    script.extend(first_poll(
        svc(),
        canary("POST_SCALE_UP", "IN_PROGRESS", json!({})),
    ));
    script.extend(poll(
        svc(),
        canary(
            "PRODUCTION_TRAFFIC_SHIFT",
            "IN_PROGRESS",
            production_weight(10.0),
        ),
    ));
    script.extend(poll(
        svc(),
        canary(
            "PRODUCTION_TRAFFIC_SHIFT",
            "IN_PROGRESS",
            production_weight(100.0),
        ),
    ));
    script.extend(poll(svc(), canary("BAKE_TIME", "IN_PROGRESS", json!({}))));
    script.extend([
        ok("DescribeServices", svc()),
        ok(
            "DescribeServiceDeployments",
            canary(
                "BAKE_TIME",
                "ROLLBACK_IN_PROGRESS",
                json!({
                    "statusReason": "Service deployment rolled back because of an alarm.",
                    "alarms": {"alarmNames": ["web-5xx"], "status": "TRIGGERED", "triggeredAlarmNames": ["web-5xx"]},
                    "rollback": {"reason": "Rolling back because CloudWatch alarm web-5xx is in ALARM state.",
                                 "serviceRevisionArn": REV_OLD, "startedAt": T0 + 400.0}
                }),
            ),
        ),
        ok("ListTasks", json!({"taskArns": [task]})),
        ok(
            "DescribeTasks",
            json!({"tasks": [{"taskArn": task, "lastStatus": "STOPPED", "stopCode": "EssentialContainerExited",
                "stoppedReason": "Essential container in task exited",
                "containers": [{"name": "app", "exitCode": 1}]}], "failures": []}),
        ),
        ok(
            "GetLogEvents",
            json!({"events": [
                {"timestamp": 1, "message": "listening on :8080", "ingestionTime": 2},
                {"timestamp": 3, "message": "panic: pool exhausted: 500 on /checkout", "ingestionTime": 4}],
                "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}),
        ),
    ]);
    let (replay, result, lines) = run(script, &args(&["--watch"])).await;
    let err = result.unwrap_err();
    assert!(replay.left().is_empty(), "{:?}", replay.left());
    assert_eq!(err.exit_code(), 3);
    insta::assert_snapshot!("canary_alarm_lines", lines.join("\n"));
    insta::assert_snapshot!("canary_alarm_error", err.render());
    let details = err.details().expect("the failure report");
    assert_eq!(
        details["failures"][0]["log_tail"],
        json!([
            "listening on :8080",
            "panic: pool exhausted: 500 on /checkout"
        ])
    );
    let env = ecskit::cli::failure_output(&err, OutputFormat::Env).unwrap();
    assert!(
        env.contains(&format!("ECSKIT_SERVICE_DEPLOYMENT_ARN={SD}\n")),
        "{env}"
    );
    assert!(env.contains("ECSKIT_LIFECYCLE_STAGE=BAKE_TIME\n"), "{env}");
}

#[tokio::test]
async fn a_circuit_breaker_rollback_names_the_breaker() {
    let mut script = attach();
    script.extend(first_poll(
        service("LINEAR", "IN_PROGRESS", 1),
        deployment(
            "LINEAR",
            "SCALE_UP",
            "ROLLBACK_SUCCESSFUL",
            json!({
                "statusReason": "Service deployment rolled back because the circuit breaker threshold was exceeded.",
                "deploymentCircuitBreaker": {"failureCount": 10, "status": "TRIGGERED", "threshold": 10}
            }),
        ),
    ));
    script[0] = ok("DescribeServices", service("LINEAR", "IN_PROGRESS", 1));
    let (_, result, _) = run(script, &args(&["--watch"])).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        err.to_string(),
        format!(
            "deployment {SD} of service web was rolled back at stage SCALE_UP by the deployment circuit breaker (10 failed tasks of 10 allowed): Service deployment rolled back because the circuit breaker threshold was exceeded (ROLLBACK_SUCCESSFUL)"
        )
    );
}

/// (c) A pause hook at POST_TEST_TRAFFIC_SHIFT: the CI job waits until it, tests against the test
/// listener, then `--continue`s; the deployment goes on to SUCCESSFUL.
#[tokio::test]
async fn a_pause_hook_holds_until_continue() {
    let bg = |stage: &str, extra: Value| deployment("BLUE_GREEN", stage, "IN_PROGRESS", extra);
    let svc = || service("BLUE_GREEN", "IN_PROGRESS", 2);
    let paused = || {
        bg(
            "POST_TEST_TRAFFIC_SHIFT",
            json!({"lifecycleHookDetails": pause_hook("AWAITING_ACTION")}),
        )
    };

    // 1. The CI job waits until the paused stage: exit 0 there.
    let mut script = attach();
    script.extend(first_poll(svc(), bg("TEST_TRAFFIC_SHIFT", json!({}))));
    script.extend(poll(svc(), paused()));
    let wait = args(&["--watch", "--wait-until", "POST_TEST_TRAFFIC_SHIFT"]);
    let (_, result, lines) = run(script, &wait).await;
    result.unwrap();
    insta::assert_snapshot!("pause_wait_lines", lines.join("\n"));

    // 2. A watch until stable holds at the pause (its hook line once), and goes on when the
    // hook is continued.
    let mut script = attach();
    script.extend(first_poll(svc(), paused()));
    script.extend(poll(svc(), paused()));
    script.extend(poll(svc(), paused()));
    script.extend(poll(
        svc(),
        bg(
            "POST_TEST_TRAFFIC_SHIFT",
            json!({"lifecycleHookDetails": pause_hook("SUCCEEDED")}),
        ),
    ));
    script.extend(poll(
        svc(),
        bg("PRODUCTION_TRAFFIC_SHIFT", production_weight(100.0)),
    ));
    script.extend(poll(
        service("BLUE_GREEN", "COMPLETED", 2),
        deployment("BLUE_GREEN", "CLEAN_UP", "SUCCESSFUL", json!({})),
    ));
    // Two polls of 6 s with nothing changing: longer than the no-progress limit, which a pause
    // waiting for a person does not count against.
    let hold = args(&["--watch", "--no-progress-timeout", "10s"]);
    let (replay, result, lines) = run(script, &hold).await;
    result.unwrap_or_else(|e| panic!("{}\n{lines:#?}", e.render()));
    assert!(replay.left().is_empty());
    insta::assert_snapshot!("pause_hold_lines", lines.join("\n"));

    // 3. --continue: the one deployment in progress, its paused hook, action CONTINUE.
    let in_progress = json!({"serviceDeployments": [
        {"serviceDeploymentArn": SD, "serviceArn": SERVICE, "clusterArn": CLUSTER,
         "targetServiceRevisionArn": REV_NEW, "status": "IN_PROGRESS", "createdAt": T0 + 2.0}]});
    let continued = vec![
        ok("ListServiceDeployments", in_progress.clone()),
        ok("DescribeServiceDeployments", paused()),
        ok(
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": SD}),
        ),
    ];
    let (replay, result, _) = run(continued, &args(&["--continue"])).await;
    let report = result.unwrap();
    assert!(replay.left().is_empty());
    let bodies = replay.bodies();
    let listed: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        listed["status"],
        json!([
            "PENDING",
            "IN_PROGRESS",
            "STOP_REQUESTED",
            "ROLLBACK_REQUESTED",
            "ROLLBACK_IN_PROGRESS"
        ])
    );
    let body: Value = serde_json::from_str(&bodies[2]).unwrap();
    assert_eq!(
        body,
        json!({"serviceDeploymentArn": SD, "hookId": HOOK, "action": "CONTINUE"})
    );
    assert!(report.changed);
    insta::assert_snapshot!("continue_text", report.render(OutputFormat::Text));

    // Its dry run names the same deployment and sends nothing that changes it.
    let dry = vec![
        ok("ListServiceDeployments", in_progress.clone()),
        ok("DescribeServiceDeployments", paused()),
    ];
    let (replay, result, _) = run_as(dry, &args(&["--continue", "--dry-run"]), true).await;
    let report = result.unwrap();
    assert!(replay.left().is_empty());
    assert_eq!(
        replay.sent(),
        ["ListServiceDeployments", "DescribeServiceDeployments"]
    );
    assert_eq!(
        report.actions,
        [format!(
            "continue deployment {SD} of service web at stage POST_TEST_TRAFFIC_SHIFT (pause hook {HOOK})"
        )]
    );

    // A second --continue finds it no longer paused: nothing to do, changed false.
    let again = vec![
        ok("ListServiceDeployments", in_progress),
        ok(
            "DescribeServiceDeployments",
            bg(
                "POST_TEST_TRAFFIC_SHIFT",
                json!({"lifecycleHookDetails": pause_hook("SUCCEEDED")}),
            ),
        ),
    ];
    let (replay, result, _) = run(again, &args(&["--continue"])).await;
    let report = result.unwrap();
    assert!(replay.left().is_empty());
    assert!(!report.changed);
    assert_eq!(
        report.get_str("SERVICE_DEPLOYMENT_ARN").as_deref(),
        Some(SD)
    );
}

/// `--continue` run before ECS reaches the pause (a CI job right after the deploy) waits for it
/// and then continues it, rather than exiting 0 having released nothing; a deployment already
/// past its pause changes nothing; one without any pause hook is exit 2.
#[tokio::test]
async fn continue_waits_for_a_pause_not_yet_reached() {
    let in_progress = json!({"serviceDeployments": [
        {"serviceDeploymentArn": SD, "serviceArn": SERVICE, "clusterArn": CLUSTER,
         "targetServiceRevisionArn": REV_NEW, "status": "IN_PROGRESS", "createdAt": T0 + 2.0}]});
    // The deployment as ECS sends it: its configuration names the pause.
    let at = |stage: &str, hooks: Value| {
        deployment(
            "BLUE_GREEN",
            stage,
            "IN_PROGRESS",
            json!({"lifecycleHookDetails": hooks, "deploymentConfiguration": {
                "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 10,
                "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]}}),
        )
    };
    let script = vec![
        ok("ListServiceDeployments", in_progress.clone()),
        ok("DescribeServiceDeployments", at("SCALE_UP", json!([]))),
        ok(
            "DescribeServiceDeployments",
            at("TEST_TRAFFIC_SHIFT", json!([])),
        ),
        ok(
            "DescribeServiceDeployments",
            at("POST_TEST_TRAFFIC_SHIFT", pause_hook("AWAITING_ACTION")),
        ),
        ok(
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": SD}),
        ),
    ];
    let (replay, result, lines) = run(script, &args(&["--continue"])).await;
    let report = result.unwrap_or_else(|e| panic!("{}\n{lines:#?}", e.render()));
    assert!(replay.left().is_empty());
    assert!(report.changed);
    let body: Value = serde_json::from_str(&replay.bodies()[4]).unwrap();
    assert_eq!(
        body,
        json!({"serviceDeploymentArn": SD, "hookId": HOOK, "action": "CONTINUE"})
    );
    assert_eq!(
        report.get_str("LIFECYCLE_STAGE").as_deref(),
        Some("POST_TEST_TRAFFIC_SHIFT")
    );
    let waiting = format!(
        "deployment {SD} has not reached its pause at POST_TEST_TRAFFIC_SHIFT yet (now SCALE_UP): waiting for it"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(&waiting)).count(),
        1,
        "said once: {lines:#?}"
    );

    // Its dry run says what it would wait for, and waits for nothing.
    let dry = vec![
        ok("ListServiceDeployments", in_progress.clone()),
        ok("DescribeServiceDeployments", at("SCALE_UP", json!([]))),
    ];
    let (replay, result, _) = run_as(dry, &args(&["--continue", "--dry-run"]), true).await;
    let report = result.unwrap();
    assert!(replay.left().is_empty());
    assert_eq!(
        report.actions,
        [format!(
            "wait for deployment {SD} of service web to pause at POST_TEST_TRAFFIC_SHIFT (now SCALE_UP), then continue it"
        )]
    );

    // Past the pause: nothing to continue, changed false.
    let past = vec![
        ok("ListServiceDeployments", in_progress.clone()),
        ok(
            "DescribeServiceDeployments",
            at("PRODUCTION_TRAFFIC_SHIFT", json!([])),
        ),
    ];
    let (replay, result, _) = run(past, &args(&["--continue"])).await;
    let report = result.unwrap();
    assert!(replay.left().is_empty());
    assert!(!report.changed);

    // Never reached within --timeout: exit 3 naming the pause, nothing continued.
    let mut slow = vec![ok("ListServiceDeployments", in_progress.clone())];
    for _ in 0..4 {
        slow.push(ok(
            "DescribeServiceDeployments",
            at("TEST_TRAFFIC_SHIFT", json!([])),
        ));
    }
    let (replay, result, _) = run(
        slow,
        &args(&["--continue", "--timeout", "18s", "--poll-interval", "6s"]),
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string()
            .contains("did not reach its pause at POST_TEST_TRAFFIC_SHIFT within 18s"),
        "{err}"
    );
    assert!(
        !replay
            .sent()
            .iter()
            .any(|c| c == "ContinueServiceDeployment")
    );

    // --no-wait: a pause not reached yet is exit 2, nothing continued.
    let early = vec![
        ok("ListServiceDeployments", in_progress.clone()),
        ok("DescribeServiceDeployments", at("SCALE_UP", json!([]))),
    ];
    let (replay, result, _) = run(early, &args(&["--continue", "--no-wait"])).await;
    assert_eq!(result.unwrap_err().exit_code(), 2);
    assert!(replay.left().is_empty());

    // A deployment with no pause hook (neither in its answer nor on the service): exit 2,
    // nothing sent that changes it.
    let no_pause = vec![
        ok("ListServiceDeployments", in_progress),
        ok(
            "DescribeServiceDeployments",
            deployment("BLUE_GREEN", "TEST_TRAFFIC_SHIFT", "IN_PROGRESS", json!({})),
        ),
        ok("DescribeServices", service("BLUE_GREEN", "IN_PROGRESS", 2)),
    ];
    let (replay, result, _) = run(no_pause, &args(&["--continue"])).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("has no pause hook"), "{err}");
    assert_eq!(
        replay.sent(),
        [
            "ListServiceDeployments",
            "DescribeServiceDeployments",
            "DescribeServices"
        ]
    );
}

/// Two pauses, and canary's pause before each production step: `--continue` never waits for a
/// later pause (a retry whose answer was lost must not release the next one): past a pause, it
/// changes nothing and says to wait with --wait-until; a pause that timed out and went on is
/// nothing to do; a deployment that rolls back while `--continue` waits for its first pause is
/// exit 3, one rolling back already exit 2 naming the pause that timed out.
#[tokio::test]
async fn continue_never_waits_past_a_pause_and_refuses_a_deployment_that_ended() {
    let in_progress = json!({"serviceDeployments": [
        {"serviceDeploymentArn": SD, "serviceArn": SERVICE, "clusterArn": CLUSTER,
         "targetServiceRevisionArn": REV_NEW, "status": "IN_PROGRESS", "createdAt": T0 + 2.0}]});
    let with_pauses = |strategy: &str, stage: &str, status: &str, stages: Value, extra: Value| {
        let mut over = json!({"deploymentConfiguration": {
            "strategy": strategy, "bakeTimeInMinutes": 10,
            "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": stages}]}});
        if let (Some(o), Some(e)) = (over.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        deployment(strategy, stage, status, over)
    };
    let two = json!(["POST_TEST_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"]);
    let nothing_sent = |stage: &str, strategy: &str, stages: &Value, extra: Value| {
        vec![
            ok("ListServiceDeployments", in_progress.clone()),
            ok(
                "DescribeServiceDeployments",
                with_pauses(strategy, stage, "IN_PROGRESS", stages.clone(), extra),
            ),
        ]
    };

    // Right after the first pause was continued, or after it timed out and went on: a retry
    // changes nothing.
    for status in ["SUCCEEDED", "TIMED_OUT"] {
        let script = nothing_sent(
            "POST_TEST_TRAFFIC_SHIFT",
            "BLUE_GREEN",
            &two,
            json!({"lifecycleHookDetails": pause_hook(status)}),
        );
        let (replay, result, _) = run(script, &args(&["--continue"])).await;
        let report = result.unwrap();
        assert!(replay.left().is_empty());
        assert!(!report.changed, "{status}");
    }

    // Past the first, before the second: not waited for (a retry must not release it); the
    // note says how to release it.
    let script = nothing_sent("PRODUCTION_TRAFFIC_SHIFT", "BLUE_GREEN", &two, json!({}));
    let (replay, result, _) = run(script, &args(&["--continue"])).await;
    let report = result.unwrap();
    assert!(replay.left().is_empty());
    assert!(!report.changed);
    let text = report.render(OutputFormat::Text);
    assert!(
        text.contains(
            "past its pause at POST_TEST_TRAFFIC_SHIFT, and no pause is waiting: nothing to continue (to release a later pause, wait for it with --wait-until STAGE, then --continue)"
        ),
        "{text}"
    );
    // ... and once it waits there, --continue releases it.
    let script = vec![
        ok("ListServiceDeployments", in_progress.clone()),
        ok(
            "DescribeServiceDeployments",
            with_pauses(
                "BLUE_GREEN",
                "POST_PRODUCTION_TRAFFIC_SHIFT",
                "IN_PROGRESS",
                two.clone(),
                json!({"lifecycleHookDetails": pause_hook("AWAITING_ACTION")}),
            ),
        ),
        ok(
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": SD}),
        ),
    ];
    let (replay, result, _) = run(script, &args(&["--continue"])).await;
    assert!(result.unwrap().changed);
    assert!(replay.left().is_empty());

    // Canary between two traffic steps: its pause is behind it, nothing is sent.
    let pre = json!(["PRE_PRODUCTION_TRAFFIC_SHIFT"]);
    let script = nothing_sent(
        "PRODUCTION_TRAFFIC_SHIFT",
        "CANARY",
        &pre,
        production_weight(10.0),
    );
    let (replay, result, _) = run(script, &args(&["--continue"])).await;
    assert!(!result.unwrap().changed);
    assert!(replay.left().is_empty());

    // Rolls back while --continue waits for its first pause: exit 3 naming the deployment.
    let script = vec![
        ok("ListServiceDeployments", in_progress.clone()),
        ok(
            "DescribeServiceDeployments",
            with_pauses(
                "BLUE_GREEN",
                "SCALE_UP",
                "IN_PROGRESS",
                two.clone(),
                json!({}),
            ),
        ),
        ok(
            "DescribeServiceDeployments",
            with_pauses(
                "BLUE_GREEN",
                "SCALE_UP",
                "ROLLBACK_IN_PROGRESS",
                two.clone(),
                json!({}),
            ),
        ),
    ];
    let (replay, result, _) = run(script, &args(&["--continue"])).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 3, "{}", err.render());
    assert!(replay.left().is_empty());
    assert!(
        ecskit::cli::failure_output(&err, OutputFormat::Env).is_some_and(|o| o.contains(SD)),
        "the deployment is named"
    );

    // Rolling back already after the pause timed out: exit 2 naming the status and the pause.
    let mut rolling_back = in_progress;
    rolling_back["serviceDeployments"][0]["status"] = json!("ROLLBACK_IN_PROGRESS");
    let ended = vec![
        ok("ListServiceDeployments", rolling_back),
        ok(
            "DescribeServiceDeployments",
            with_pauses(
                "BLUE_GREEN",
                "POST_TEST_TRAFFIC_SHIFT",
                "ROLLBACK_IN_PROGRESS",
                two,
                json!({"lifecycleHookDetails": pause_hook("TIMED_OUT")}),
            ),
        ),
    ];
    let (replay, result, _) = run(ended, &args(&["--continue"])).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains(
            "is ROLLBACK_IN_PROGRESS (its pause hook at POST_TEST_TRAFFIC_SHIFT is TIMED_OUT)"
        ),
        "{err}"
    );
    assert!(replay.left().is_empty());
}

/// (d) The Lambda hook at TEST_TRAFFIC_SHIFT answers FAILED; ECS rolls back (its answer no longer
/// lists the hook): exit 3 naming the hook.
#[tokio::test]
async fn a_failing_lambda_hook_is_exit_3_naming_the_hook() {
    let bg =
        |stage: &str, status: &str, extra: Value| deployment("BLUE_GREEN", stage, status, extra);
    let svc = || service("BLUE_GREEN", "IN_PROGRESS", 2);
    let mut script = attach();
    script.extend(first_poll(
        svc(),
        bg(
            "TEST_TRAFFIC_SHIFT",
            "IN_PROGRESS",
            json!({"lifecycleHookDetails": lambda_hook("IN_PROGRESS")}),
        ),
    ));
    script.extend(poll(
        svc(),
        bg(
            "TEST_TRAFFIC_SHIFT",
            "IN_PROGRESS",
            json!({"lifecycleHookDetails": lambda_hook("FAILED")}),
        ),
    ));
    script.extend(poll(
        svc(),
        bg(
            "TEST_TRAFFIC_SHIFT",
            "ROLLBACK_IN_PROGRESS",
            json!({"statusReason": "Service deployment rolled back because a lifecycle hook failed.",
                   "rollback": {"reason": "Lifecycle hook returned FAILED.", "serviceRevisionArn": REV_OLD, "startedAt": T0 + 200.0}}),
        ),
    ));
    let (replay, result, lines) = run(script, &args(&["--watch"])).await;
    let err = result.unwrap_err();
    assert!(replay.left().is_empty());
    assert_eq!(err.exit_code(), 3);
    insta::assert_snapshot!("lambda_failed_lines", lines.join("\n"));
    insta::assert_snapshot!("lambda_failed_error", err.render());
}

/// (e) A person stops the deployment: `--stop-deployment rollback` names it, and the watch of it
/// is exit 3 saying a request rolled it back; `abort` is a stop, not a rollback.
#[tokio::test]
async fn a_deployment_stopped_by_a_person() {
    let in_progress = json!({"serviceDeployments": [
        {"serviceDeploymentArn": SD, "serviceArn": SERVICE, "clusterArn": CLUSTER,
         "targetServiceRevisionArn": REV_NEW, "status": "IN_PROGRESS", "createdAt": T0 + 2.0}]});
    let bake = deployment("BLUE_GREEN", "BAKE_TIME", "IN_PROGRESS", json!({}));
    for (kind, stop_type) in [("rollback", "ROLLBACK"), ("abort", "ABORT")] {
        let script = vec![
            ok("ListServiceDeployments", in_progress.clone()),
            ok("DescribeServiceDeployments", bake.clone()),
            ok("StopServiceDeployment", json!({"serviceDeploymentArn": SD})),
        ];
        let (replay, result, _) = run(script, &args(&["--stop-deployment", kind])).await;
        let report = result.unwrap_or_else(|e| panic!("{}", e.render()));
        assert!(replay.left().is_empty());
        let body: Value = serde_json::from_str(&replay.bodies()[2]).unwrap();
        assert_eq!(
            body,
            json!({"serviceDeploymentArn": SD, "stopType": stop_type})
        );
        assert_eq!(
            report.get_str("SERVICE_DEPLOYMENT_ARN").as_deref(),
            Some(SD)
        );
        let verb = if kind == "rollback" {
            "roll back"
        } else {
            "abort"
        };
        assert_eq!(
            report.actions,
            [format!(
                "{verb} deployment {SD} of service web at stage BAKE_TIME"
            )]
        );
    }

    // Asked again while ECS is still rolling it back: nothing to do.
    let stopping = json!({"serviceDeployments": [
        {"serviceDeploymentArn": SD, "serviceArn": SERVICE, "clusterArn": CLUSTER,
         "targetServiceRevisionArn": REV_NEW, "status": "ROLLBACK_IN_PROGRESS", "createdAt": T0 + 2.0}]});
    let script = vec![
        ok("ListServiceDeployments", stopping),
        ok(
            "DescribeServiceDeployments",
            deployment("BLUE_GREEN", "BAKE_TIME", "ROLLBACK_IN_PROGRESS", json!({})),
        ),
    ];
    let (replay, result, _) = run(script, &args(&["--stop-deployment", "rollback"])).await;
    assert!(!result.unwrap().changed);
    assert!(replay.left().is_empty());

    // The watch of the deployment a person rolled back, and of one a person aborted.
    for (status, verb) in [
        ("ROLLBACK_SUCCESSFUL", "rolled back"),
        ("STOPPED", "stopped"),
    ] {
        let mut script = attach();
        script.extend(first_poll(
            service("BLUE_GREEN", "IN_PROGRESS", 2),
            deployment(
                "BLUE_GREEN",
                "BAKE_TIME",
                status,
                json!({"statusReason": "Service deployment stopped by a StopServiceDeployment request."}),
            ),
        ));
        let (_, result, _) = run(script, &args(&["--watch"])).await;
        let err = result.unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert_eq!(
            err.to_string(),
            format!(
                "deployment {SD} of service web was {verb} at stage BAKE_TIME by a request through the API (StopServiceDeployment or a hook's ROLLBACK: a person or a pipeline): Service deployment stopped by a StopServiceDeployment request ({status})"
            )
        );
    }
}

#[tokio::test]
async fn continue_and_stop_refuse_when_no_or_several_deployments_are_in_progress() {
    let brief = |arn: &str| {
        json!({"serviceDeploymentArn": arn, "serviceArn": SERVICE, "clusterArn": CLUSTER,
               "status": "IN_PROGRESS", "createdAt": T0})
    };
    for flags in [&["--continue"][..], &["--stop-deployment", "abort"][..]] {
        let none = vec![ok(
            "ListServiceDeployments",
            json!({"serviceDeployments": []}),
        )];
        let (replay, result, _) = run(none, &args(flags)).await;
        let err = result.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{flags:?}");
        assert!(
            err.to_string()
                .ends_with("service web in cluster app has no deployment in progress"),
            "{err}"
        );
        assert_eq!(replay.sent(), ["ListServiceDeployments"]);

        let two = vec![ok(
            "ListServiceDeployments",
            json!({"serviceDeployments": [brief(SD), brief(SD_OTHER)]}),
        )];
        let (replay, result, _) = run(two, &args(flags)).await;
        let err = result.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{flags:?}");
        let text = err.to_string();
        assert!(
            text.contains("has 2 deployments in progress")
                && text.contains(SD)
                && text.contains(SD_OTHER),
            "{text}"
        );
        assert_eq!(
            replay.sent(),
            ["ListServiceDeployments"],
            "no call that changes anything"
        );
    }
}

#[tokio::test]
async fn a_stage_wait_on_a_rolling_service_is_refused_before_any_change() {
    let mut rolling = service("ROLLING", "COMPLETED", 2);
    rolling["services"][0]["deploymentConfiguration"]
        .as_object_mut()
        .unwrap()
        .remove("strategy");
    // A deploy: refused after the reads, before UpdateService.
    let script = vec![
        ok("DescribeTaskDefinition", task_definition()),
        ok("DescribeServices", rolling.clone()),
    ];
    let deploy = args(&[
        "--task-definition",
        "web:3",
        "--wait-until",
        "TEST_TRAFFIC_SHIFT",
    ]);
    let (replay, result, _) = run(script, &deploy).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        "--wait-until TEST_TRAFFIC_SHIFT: service web deploys with the rolling strategy, which has no lifecycle stages"
    );
    assert_eq!(
        replay.sent(),
        ["DescribeTaskDefinition", "DescribeServices"]
    );
    // --watch: refused on its first read.
    let script = vec![ok("DescribeServices", rolling)];
    let watch = args(&["--watch", "--wait-until", "BAKE_TIME"]);
    let (_, result, _) = run(script, &watch).await;
    assert_eq!(result.unwrap_err().exit_code(), 2);
}

/// `--strategy rolling` is what the deploy will be, whatever the live service has now: a stage
/// wait is refused before anything is read of the service.
#[tokio::test]
async fn a_stage_wait_with_strategy_rolling_is_refused_on_a_blue_green_service() {
    let script = vec![
        ok("DescribeTaskDefinition", task_definition()),
        ok("DescribeServices", service("BLUE_GREEN", "COMPLETED", 2)),
    ];
    let deploy = args(&[
        "--task-definition",
        "web:3",
        "--strategy",
        "rolling",
        "--wait-until",
        "TEST_TRAFFIC_SHIFT",
    ]);
    let (replay, result, _) = run(script, &deploy).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("rolling strategy"), "{err}");
    assert_eq!(replay.sent(), ["DescribeTaskDefinition"]);
}

/// A rolling deployment is followed as before (no service-deployment call), and `--wait-until
/// deployed` ends it once every new task runs, while the old ones still drain.
#[tokio::test]
async fn a_rolling_deployment_reads_no_service_deployment_and_deployed_means_all_new_tasks_run() {
    let rolling = |running: i32| {
        let mut s = service("ROLLING", "IN_PROGRESS", running);
        s["services"][0]["deployments"][0]["runningCount"] = json!(running);
        s
    };
    let script = vec![
        ok("DescribeServices", rolling(2)),
        ok("DescribeTaskDefinition", task_definition()),
        ok("DescribeServices", rolling(1)),
        no_stopped_tasks(),
        ok("DescribeServices", rolling(2)),
    ];
    let (replay, result, _) = run(script, &args(&["--watch", "--wait-until", "deployed"])).await;
    let report = result.unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(replay.left().is_empty(), "{:?}", replay.left());
    assert_eq!(
        report.get_str("ROLLOUT_STATE").as_deref(),
        Some("IN_PROGRESS")
    );
    assert_eq!(report.get("LIFECYCLE_STAGE"), None);
    assert!(
        !replay
            .sent()
            .iter()
            .any(|o| o.contains("ServiceDeployment"))
    );
}
