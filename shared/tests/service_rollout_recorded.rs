//! Rollouts on a live service, on answers recorded in ECS's own shape (moto neither keeps a
//! service's deploymentConfiguration.strategy nor knows the load balancer's
//! advancedConfiguration, and never answers with a CODE_DEPLOY service's fields as ECS does):
//! - a change of strategy (rolling to blue-green) on an existing service is one plain
//!   UpdateService carrying the strategy and the load balancer's advanced configuration, no
//!   re-create, and a second run against the service that has it sends nothing;
//! - a service whose deploymentController is CODE_DEPLOY gets no mutating call at all, and the
//!   refusal (exit 2) names the controller and the command that moves it to ECS's blue/green.

mod json_replay;

use clap::Parser;
use ecskit::service_run::{Args, ServiceRun};
use json_replay::{Replay, ok};
use serde_json::{Value, json};

const TD: &str = "arn:aws:ecs:us-west-2:123456789012:task-definition/web:1";
const BLUE: &str =
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-blue/0123456789abcdef";
const GREEN: &str =
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-green/0123456789abcdef";
const RULE: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
const ROLE: &str = "arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers";

fn live() -> Value {
    json!({
        "serviceArn": "arn:aws:ecs:us-west-2:123456789012:service/prod/web",
        "serviceName": "web",
        "clusterArn": "arn:aws:ecs:us-west-2:123456789012:cluster/prod",
        "status": "ACTIVE",
        "taskDefinition": TD,
        "desiredCount": 2,
        "runningCount": 2,
        "pendingCount": 0,
        "launchType": "FARGATE",
        "loadBalancers": [{"targetGroupArn": BLUE, "containerName": "app", "containerPort": 8080}],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"], "assignPublicIp": "DISABLED"}},
        "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}, "maximumPercent": 200, "minimumHealthyPercent": 100, "strategy": "ROLLING"},
        "deploymentController": {"type": "ECS"},
        "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "rolloutState": "COMPLETED", "taskDefinition": TD, "desiredCount": 2, "runningCount": 2}],
        "events": [],
        "schedulingStrategy": "REPLICA"
    })
}

fn described_task_definition() -> Value {
    json!({"taskDefinition": {
        "taskDefinitionArn": TD, "family": "web", "revision": 1, "status": "ACTIVE",
        "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "app", "image": "nginx:1", "essential": true}]
    }})
}

fn cluster() -> Value {
    json!({"clusters": [{
        "clusterArn": "arn:aws:ecs:us-west-2:123456789012:cluster/prod", "clusterName": "prod",
        "status": "ACTIVE", "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
        "registeredContainerInstancesCount": 0
    }], "failures": []})
}

/// What service-run reads before it decides, with the service as `service` says.
fn reads(service: Value) -> Vec<json_replay::Exchange> {
    vec![
        ok("DescribeTaskDefinition", described_task_definition()),
        ok(
            "DescribeServices",
            json!({"services": [service], "failures": []}),
        ),
        ok("DescribeClusters", cluster()),
    ]
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
        "--no-wait",
    ];
    all.extend_from_slice(extra);
    let mut args = Args::try_parse_from(all).unwrap();
    args.aws.region = Some("us-west-2".into());
    ecskit::step::run::<ServiceRun>(&replay.ctx(false), &args).await
}

const BLUE_GREEN: &[&str] = &[
    "--strategy",
    "blue-green",
    "--bake-time",
    "10m",
    "--alternate-target-group",
    GREEN,
    "--production-listener-rule",
    RULE,
    "--load-balancer-role",
    ROLE,
];

#[tokio::test]
async fn a_change_of_strategy_is_one_update_service_and_a_second_run_sends_nothing() {
    let mut after = live();
    after["deploymentConfiguration"]["strategy"] = json!("BLUE_GREEN");
    after["deploymentConfiguration"]["bakeTimeInMinutes"] = json!(10);
    after["loadBalancers"][0]["advancedConfiguration"] =
        json!({"alternateTargetGroupArn": GREEN, "productionListenerRule": RULE, "roleArn": ROLE});
    let mut script = reads(live());
    script.push(ok("UpdateService", json!({"service": after.clone()})));
    let replay = Replay::new(script);
    let report = run(&replay, BLUE_GREEN)
        .await
        .unwrap_or_else(|e| panic!("{}\nsent: {:?}", e.render(), replay.sent()));
    assert!(report.changed);
    let sent = replay.sent();
    assert_eq!(
        sent,
        [
            "DescribeTaskDefinition",
            "DescribeServices",
            "DescribeClusters",
            "UpdateService"
        ]
    );
    let body: Value = serde_json::from_str(&replay.bodies()[3]).unwrap();
    assert_eq!(
        body["deploymentConfiguration"],
        json!({"deploymentCircuitBreaker": {"enable": true, "rollback": true}, "maximumPercent": 200,
               "minimumHealthyPercent": 100, "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 10})
    );
    assert_eq!(
        body["loadBalancers"],
        json!([{"targetGroupArn": BLUE, "containerName": "app", "containerPort": 8080,
                "advancedConfiguration": {"alternateTargetGroupArn": GREEN, "productionListenerRule": RULE, "roleArn": ROLE}}])
    );
    assert!(replay.left().is_empty(), "{:?}", replay.left());

    // The service has the rollout now: nothing to send.
    let replay = Replay::new(reads(after));
    let report = run(&replay, BLUE_GREEN)
        .await
        .unwrap_or_else(|e| panic!("{}\nsent: {:?}", e.render(), replay.sent()));
    assert!(!report.changed, "sent: {:?}", replay.sent());
    assert!(replay.left().is_empty(), "{:?}", replay.left());
}

#[tokio::test]
async fn a_code_deploy_service_gets_no_mutating_call() {
    let mut code_deploy = live();
    code_deploy["deploymentController"] = json!({"type": "CODE_DEPLOY"});
    code_deploy["deploymentConfiguration"] =
        json!({"maximumPercent": 200, "minimumHealthyPercent": 100});
    for extra in [&["--desired-count", "3"][..], BLUE_GREEN] {
        let replay = Replay::new(reads(code_deploy.clone()));
        let err = run(&replay, extra).await.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{}", err.render());
        // Refused before the cluster is even looked at.
        assert_eq!(
            replay.sent(),
            ["DescribeTaskDefinition", "DescribeServices"],
            "only reads"
        );
        let text = err.render();
        assert!(
            text.contains("service web has deploymentController CODE_DEPLOY: its deployments are made by CodeDeploy (a deployment with an AppSpec), not by UpdateService, so service-run changes nothing on it"),
            "{text}"
        );
        assert!(
            text.contains("aws ecs update-service --cluster prod --service web --deployment-controller type=ECS"),
            "{text}"
        );
    }
}

/// A service file moving CANARY to LINEAR is laid over the live deploymentConfiguration: the
/// request carries the file's strategy and settings, never the live canaryConfiguration beside
/// them (ECS refuses that mix).
#[tokio::test]
async fn a_service_file_changing_the_strategy_sends_only_the_new_strategys_settings() {
    let advanced =
        json!({"alternateTargetGroupArn": GREEN, "productionListenerRule": RULE, "roleArn": ROLE});
    let mut canary = live();
    canary["deploymentConfiguration"] = json!({
        "deploymentCircuitBreaker": {"enable": true, "rollback": true}, "maximumPercent": 200,
        "minimumHealthyPercent": 100, "strategy": "CANARY", "bakeTimeInMinutes": 10,
        "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5}
    });
    canary["loadBalancers"][0]["advancedConfiguration"] = advanced.clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.json");
    let doc = json!({
        "cluster": "prod", "serviceName": "web", "taskDefinition": TD, "desiredCount": 2,
        "launchType": "FARGATE",
        "networkConfiguration": live()["networkConfiguration"],
        "loadBalancers": canary["loadBalancers"],
        "deploymentConfiguration": {"strategy": "LINEAR", "bakeTimeInMinutes": 10,
            "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 5}}
    });
    std::fs::write(&file, doc.to_string()).unwrap();
    let mut after = canary.clone();
    after["deploymentConfiguration"] = json!({
        "deploymentCircuitBreaker": {"enable": true, "rollback": true}, "maximumPercent": 200,
        "minimumHealthyPercent": 100, "strategy": "LINEAR", "bakeTimeInMinutes": 10,
        "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 5}
    });
    let mut script = reads(canary);
    script.push(ok("UpdateService", json!({"service": after})));
    script.push(ok("TagResource", json!({})));
    let replay = Replay::new(script);
    let mut args = Args::try_parse_from([
        "service-run",
        "--service-file",
        file.to_str().unwrap(),
        "--no-wait",
    ])
    .unwrap();
    args.aws.region = Some("us-west-2".into());
    ecskit::step::run::<ServiceRun>(&replay.ctx(false), &args)
        .await
        .unwrap_or_else(|e| panic!("{}\nsent: {:?}", e.render(), replay.sent()));
    let at = replay
        .sent()
        .iter()
        .position(|o| o == "UpdateService")
        .unwrap();
    let body: Value = serde_json::from_str(&replay.bodies()[at]).unwrap();
    let dc = &body["deploymentConfiguration"];
    assert_eq!(dc["strategy"], "LINEAR", "{dc:#}");
    assert!(dc.get("canaryConfiguration").is_none(), "{dc:#}");
    assert_eq!(dc["linearConfiguration"]["stepPercent"], 25.0, "{dc:#}");
}
