//! What the emulator cannot show about adopting a service: moto keeps no capacity provider
//! strategy on a service (it answers DescribeServices without one), so the local-stack tests
//! (`service_file.rs`, `xtask/tests/adopt.rs`) never compare one. Here DescribeServices'
//! answer is recorded as ECS sends it, with the strategy, and played back at the HTTP layer:
//! the file `init` writes from that answer makes no UpdateService, and a changed weight makes
//! exactly one, carrying the strategy (and the new deployment ECS needs to move to it), then
//! one TagResource remembering the applied document. The answer also holds a field newer than
//! the SDK: compared on the raw answer, it is no difference.

mod json_replay;

use clap::Parser;
use ecskit::service_run::{Args, ServiceRun, service_file};
use json_replay::{Replay, ok};
use serde_json::{Value, json};

const TD: &str = "arn:aws:ecs:us-west-2:123456789012:task-definition/snaplex:1";

fn live() -> Value {
    json!({
        "serviceArn": "arn:aws:ecs:us-west-2:123456789012:service/console/snaplex",
        "serviceName": "snaplex",
        "clusterArn": "arn:aws:ecs:us-west-2:123456789012:cluster/console",
        "status": "ACTIVE",
        "taskDefinition": TD,
        "desiredCount": 1,
        "runningCount": 1,
        "pendingCount": 0,
        "capacityProviderStrategy": [
            {"capacityProvider": "FARGATE_SPOT", "weight": 3, "base": 0},
            {"capacityProvider": "FARGATE", "weight": 1, "base": 1}
        ],
        "platformVersion": "LATEST",
        "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/snaplex/0123456789abcdef", "containerName": "jcc", "containerPort": 8081}],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"], "assignPublicIp": "ENABLED"}},
        "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}, "maximumPercent": 200, "minimumHealthyPercent": 100},
        "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "rolloutState": "COMPLETED", "taskDefinition": TD, "desiredCount": 1, "runningCount": 1}],
        "events": [],
        "schedulingStrategy": "REPLICA",
        "createdAt": 1.7e9,
        "aFieldNewerThanTheSdk": {"mode": "STRICT", "level": 2}
    })
}

fn described_task_definition() -> Value {
    json!({"taskDefinition": {
        "taskDefinitionArn": TD, "family": "snaplex", "revision": 1, "status": "ACTIVE",
        "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": "1024",
        "containerDefinitions": [{"name": "jcc", "image": "nginx:1", "essential": true}]
    }})
}

fn cluster() -> Value {
    json!({"clusters": [{
        "clusterArn": "arn:aws:ecs:us-west-2:123456789012:cluster/console", "clusterName": "console",
        "status": "ACTIVE", "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
        "registeredContainerInstancesCount": 0
    }], "failures": []})
}

/// What service-run reads before it decides: the task definition, the service, the cluster.
fn reads() -> Vec<json_replay::Exchange> {
    vec![
        ok("DescribeTaskDefinition", described_task_definition()),
        ok(
            "DescribeServices",
            json!({"services": [live()], "failures": []}),
        ),
        ok("DescribeClusters", cluster()),
    ]
}

/// service-run --service-file with the file written from `live()` (as init writes it).
async fn run(replay: &Replay, doc: &Value) -> ecskit::Result<ecskit::Report> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let mut args = Args::try_parse_from([
        "service-run",
        "--cluster",
        "console",
        "--service-file",
        file.to_str().unwrap(),
        "--no-wait",
    ])
    .unwrap();
    args.aws.region = Some("us-west-2".into());
    ecskit::step::run::<ServiceRun>(&replay.ctx(false), &args).await
}

#[tokio::test]
async fn an_adopted_strategy_is_unchanged_and_a_changed_weight_is_one_update() {
    let (written, not_carried) = service_file::from_described(&live());
    assert!(not_carried.is_empty(), "{not_carried:?}");
    // A field the SDK's model does not know is carried over, and compared with DescribeServices'
    // raw answer (the typed model drops it): unchanged below.
    assert_eq!(
        written["aFieldNewerThanTheSdk"],
        live()["aFieldNewerThanTheSdk"]
    );
    assert_eq!(
        written["capacityProviderStrategy"],
        live()["capacityProviderStrategy"],
        "init carries the strategy over"
    );

    // The file as written: compared by meaning, nothing to update.
    let replay = Replay::new(reads());
    let report = run(&replay, &written)
        .await
        .unwrap_or_else(|e| panic!("{}\nsent: {:?}", e.render(), replay.sent()));
    assert!(!report.changed, "sent: {:?}", replay.sent());
    assert!(
        !replay.sent().iter().any(|o| o == "UpdateService"),
        "{:?}",
        replay.sent()
    );
    assert!(replay.left().is_empty(), "{:?}", replay.left());

    // One weight changed: exactly one UpdateService, with the strategy and a new deployment.
    let mut changed = written.clone();
    changed["capacityProviderStrategy"][0]["weight"] = json!(1);
    let mut updated = live();
    updated["capacityProviderStrategy"] = changed["capacityProviderStrategy"].clone();
    let mut script = reads();
    script.push(ok("UpdateService", json!({"service": updated})));
    script.push(ok("TagResource", json!({})));
    let replay = Replay::new(script);
    let report = run(&replay, &changed)
        .await
        .unwrap_or_else(|e| panic!("{}\nsent: {:?}", e.render(), replay.sent()));
    assert!(report.changed);
    let sent = replay.sent();
    assert_eq!(
        sent.iter().filter(|o| *o == "UpdateService").count(),
        1,
        "{sent:?}"
    );
    let at = sent.iter().position(|o| o == "UpdateService").unwrap();
    let body: Value = serde_json::from_str(&replay.bodies()[at]).unwrap();
    assert_eq!(
        body["capacityProviderStrategy"],
        changed["capacityProviderStrategy"]
    );
    assert_eq!(body["forceNewDeployment"], json!(true));
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "capacityProviderStrategy",
            "cluster",
            "forceNewDeployment",
            "service"
        ],
        "only the changed field is sent"
    );
}
