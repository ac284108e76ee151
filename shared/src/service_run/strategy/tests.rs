use super::*;
use clap::Parser;

const TG: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-green/1";
const RULE: &str =
    "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/web/1/2/3";
const ROLE: &str = "arn:aws:iam::123456789012:role/ecs-infrastructure";
const LAMBDA: &str = "arn:aws:lambda:us-west-2:123456789012:function:smoke";

fn problems(extra: &[&str]) -> Vec<String> {
    let mut all = vec![
        "service-run",
        "--cluster",
        "c",
        "--service",
        "web",
        "--task-definition",
        "web:1",
    ];
    all.extend_from_slice(extra);
    let args = super::super::Args::try_parse_from(all).unwrap();
    check(&args.rollout, None)
}

fn lb_flags() -> Vec<&'static str> {
    vec![
        "--alternate-target-group",
        TG,
        "--production-listener-rule",
        RULE,
        "--load-balancer-role",
        ROLE,
    ]
}

#[test]
fn a_traffic_shifting_strategy_names_each_missing_load_balancer_flag() {
    for s in ["blue-green", "canary", "linear"] {
        let p = problems(&["--strategy", s, "--alternate-target-group", TG]);
        let api = from_str_api(s);
        assert_eq!(
            p,
            [
                format!(
                    "strategy {api} shifts traffic between two target groups and needs --production-listener-rule (advancedConfiguration.productionListenerRule)"
                ),
                format!(
                    "strategy {api} shifts traffic between two target groups and needs --load-balancer-role (advancedConfiguration.roleArn)"
                ),
            ]
        );
        let mut all = vec!["--strategy", s];
        all.extend(lb_flags());
        assert_eq!(problems(&all), Vec::<String>::new(), "{s}");
    }
    // Rolling needs none of them.
    assert!(problems(&["--strategy", "rolling"]).is_empty());
}

fn from_str_api(s: &str) -> &'static str {
    <Strategy as clap::ValueEnum>::from_str(s, false)
        .unwrap()
        .api()
}

#[test]
fn ranges_are_the_api_references() {
    let mut canary = vec!["--strategy", "canary"];
    canary.extend(lb_flags());
    let with = |extra: &[&'static str]| {
        let mut all = canary.clone();
        all.extend_from_slice(extra);
        problems(&all)
    };
    assert!(with(&["--canary-percent", "0.1", "--canary-bake-time", "24h"]).is_empty());
    assert_eq!(
        with(&["--canary-percent", "0"]),
        [
            "--canary-percent (canaryConfiguration.canaryPercent): 0.0 is not a percent from 0.1 to 100 in steps of 0.1"
        ]
    );
    assert_eq!(
        with(&["--canary-percent", "12.34"]),
        [
            "--canary-percent (canaryConfiguration.canaryPercent): 12.34 is not a percent from 0.1 to 100 in steps of 0.1"
        ]
    );
    assert_eq!(
        with(&["--canary-bake-time", "25h"]),
        [
            "--canary-bake-time (canaryConfiguration.canaryBakeTimeInMinutes): 1500 is not 0 to 1440 minutes (24h)"
        ]
    );
    assert_eq!(
        with(&["--bake-time", "90s"]),
        ["--bake-time 90s is not whole minutes: ECS counts it in minutes (use 5m, 1h)"]
    );
    assert_eq!(
        with(&["--bake-time", "1441m"]),
        [
            "--bake-time (deploymentConfiguration.bakeTimeInMinutes): 1441 is not 0 to 1440 minutes (24h)"
        ]
    );
    let mut linear = vec!["--strategy", "linear"];
    linear.extend(lb_flags());
    linear.extend(["--linear-step-percent", "2.9"]);
    assert_eq!(
        problems(&linear),
        [
            "--linear-step-percent (linearConfiguration.stepPercent): 2.9 is not a percent from 3 to 100 in steps of 0.1"
        ]
    );
    // Settings of another strategy, and a bake time with a rolling update.
    assert_eq!(
        problems(&["--strategy", "rolling", "--bake-time", "5m"]),
        [
            "--bake-time (deploymentConfiguration.bakeTimeInMinutes) applies to blue-green, canary and linear, not to a rolling update"
        ]
    );
    let mut bg = vec!["--strategy", "blue-green", "--canary-percent", "5"];
    bg.extend(lb_flags());
    assert_eq!(
        problems(&bg),
        [
            "deploymentConfiguration.canaryConfiguration (the canary flags) is for strategy CANARY, and the strategy is BLUE_GREEN"
        ]
    );
}

#[test]
fn hooks_are_checked_by_kind_and_stage() {
    let hook = format!("POST_TEST_TRAFFIC_SHIFT={LAMBDA}");
    let ok = problems(&[
        "--hook",
        &hook,
        "--hook-role",
        ROLE,
        "--pause-at",
        "post-test-traffic-shift",
        "--hook-timeout",
        "30m",
        "--hook-timeout-action",
        "continue",
    ]);
    assert!(ok.is_empty(), "{ok:?}");
    // A pause where traffic moves; a stage that does not exist; a Lambda without its role.
    let bad = problems(&[
        "--pause-at",
        "TEST_TRAFFIC_SHIFT",
        "--hook",
        &format!("AFTER_LUNCH={LAMBDA}"),
        "--hook",
        "nonsense",
    ]);
    assert_eq!(
        bad,
        [
            "--hook 'nonsense' is not STAGE=LAMBDA_ARN (e.g. POST_TEST_TRAFFIC_SHIFT=arn:aws:lambda:REGION:ACCOUNT:function:NAME)".to_string(),
            format!("--hook AFTER_LUNCH (deploymentConfiguration.lifecycleHooks[0].lifecycleStages): not a lifecycle stage: use one of {}", STAGES.join(", ")),
            "--hook-role (deploymentConfiguration.lifecycleHooks[0].roleArn): missing: ECS invokes the Lambda function with this role".to_string(),
            "--pause-at TEST_TRAFFIC_SHIFT (deploymentConfiguration.lifecycleHooks[1].lifecycleStages): ECS cannot pause while traffic shifts: pause at POST_TEST_TRAFFIC_SHIFT or PRE_PRODUCTION_TRAFFIC_SHIFT instead (a Lambda --hook may run at TEST_TRAFFIC_SHIFT)".to_string(),
        ]
    );
    assert_eq!(
        problems(&["--pause-at", "PRE_SCALE_UP", "--hook-timeout", "0m"]),
        [
            "--hook-timeout (timeoutConfiguration.timeoutInMinutes): 0 is not 1 to 1440 minutes (24h)"
        ]
    );
    assert_eq!(
        problems(&["--hook-role", ROLE]),
        [
            "--hook-role is the role of --hook's Lambda functions: add --hook STAGE=LAMBDA_ARN, or drop it"
        ]
    );
    assert_eq!(
        problems(&["--hook-timeout", "10m"]),
        [
            "--hook-timeout and --hook-timeout-action apply to hooks: add --hook or --pause-at, or drop them"
        ]
    );
    assert_eq!(
        problems(&[
            "--hook",
            &format!("PRE_SCALE_UP={ROLE}"),
            "--hook-role",
            ROLE
        ]),
        [format!(
            "--hook (deploymentConfiguration.lifecycleHooks[0].hookTargetArn): '{ROLE}' is not an lambda ARN"
        )]
    );
}

#[test]
fn one_function_named_at_two_stages_is_one_hook() {
    let args = super::super::Args::try_parse_from([
        "service-run",
        "--hook",
        &format!("PRE_SCALE_UP={LAMBDA}"),
        "--hook",
        &format!("POST_PRODUCTION_TRAFFIC_SHIFT={LAMBDA}"),
        "--hook-role",
        ROLE,
        "--alarm",
        "web-5xx",
    ])
    .unwrap();
    let (r, problems) = rollout(&args.rollout);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        Value::Object(r.deployment),
        json!({
            "lifecycleHooks": [{"targetType": "AWS_LAMBDA", "hookTargetArn": LAMBDA, "roleArn": ROLE,
                                "lifecycleStages": ["PRE_SCALE_UP", "POST_PRODUCTION_TRAFFIC_SHIFT"]}],
            "alarms": {"alarmNames": ["web-5xx"], "enable": true, "rollback": true}
        })
    );
}

#[test]
fn a_service_file_gets_the_same_check_and_needs_a_load_balancer_to_shift_traffic() {
    let file = |v: Value| v.as_object().unwrap().clone();
    // No load balancer at all.
    let no_lb = file(
        json!({"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}}),
    );
    assert_eq!(
        check_file(&no_lb),
        [
            "strategy BLUE_GREEN shifts traffic between two target groups: give the service its load balancer (loadBalancers with a targetGroupArn) or serviceConnectConfiguration"
        ]
    );
    // A load balancer without its advanced configuration: each field named.
    let mut lb = no_lb.clone();
    lb.insert(
        "loadBalancers".into(),
        json!([{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-blue/1", "containerName": "app", "containerPort": 80,
                "advancedConfiguration": {"alternateTargetGroupArn": TG}}]),
    );
    assert_eq!(check_file(&lb).len(), 2, "{:?}", check_file(&lb));
    // The flags fill in what the file leaves out.
    let args = super::super::Args::try_parse_from([
        "service-run",
        "--production-listener-rule",
        RULE,
        "--load-balancer-role",
        ROLE,
    ])
    .unwrap();
    assert!(check(&args.rollout, Some(&lb)).is_empty());
    // A file's out-of-range value is refused like a flag's.
    let mut bad = lb.clone();
    bad["deploymentConfiguration"]["bakeTimeInMinutes"] = json!(2000);
    assert!(
        check(&args.rollout, Some(&bad))
            .contains(&"--bake-time (deploymentConfiguration.bakeTimeInMinutes): 2000 is not 0 to 1440 minutes (24h)".to_string())
    );
}

#[test]
fn the_flags_update_keeps_what_the_service_has_and_a_change_of_strategy_drops_the_old_ones() {
    let live = json!({"deploymentConfiguration": {"strategy": "CANARY", "bakeTimeInMinutes": 5,
        "canaryConfiguration": {"canaryPercent": 5.0},
        "alarms": {"alarmNames": ["a"], "enable": true, "rollback": true}}});
    let body = json!({"service": "web", "deploymentConfiguration": {"maximumPercent": 200}});
    let over = json!({"deploymentConfiguration": {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 10.0}}});
    let mut req = aws_smithy_runtime_api::client::orchestrator::HttpRequest::new(
        aws_smithy_types::body::SdkBody::from(body.to_string()),
    );
    merge_into_body(
        live.as_object().unwrap().clone(),
        over.as_object().unwrap().clone(),
    )(&mut req);
    let sent: Value = serde_json::from_slice(req.body().bytes().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({"service": "web", "deploymentConfiguration": {"maximumPercent": 200,
            "strategy": "LINEAR", "bakeTimeInMinutes": 5, "linearConfiguration": {"stepPercent": 10.0},
            "alarms": {"alarmNames": ["a"], "enable": true, "rollback": true}}})
    );
}

#[test]
fn a_service_without_a_load_balancer_cannot_shift_traffic_and_no_change_is_no_change() {
    let args = super::super::Args::try_parse_from(
        ["service-run", "--strategy", "blue-green"]
            .into_iter()
            .chain(lb_flags()),
    )
    .unwrap();
    let (r, _) = rollout(&args.rollout);
    let err = update_fields(&json!({"serviceName": "web"}), &r, "web").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string()
            .starts_with("service web has no load balancer with a target group"),
        "{err}"
    );
    // A service that already has the rollout: nothing to send.
    let live = json!({"deploymentConfiguration": {"strategy": "BLUE_GREEN", "maximumPercent": 200},
        "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-blue/1",
            "containerName": "app", "containerPort": 80,
            "advancedConfiguration": {"alternateTargetGroupArn": TG, "productionListenerRule": RULE, "roleArn": ROLE}}]});
    let (fields, changes) = update_fields(&live, &r, "web").unwrap();
    assert!(fields.is_empty() && changes.is_empty(), "{changes:?}");
    // From rolling: one change of each.
    let mut rolling = live.clone();
    rolling["deploymentConfiguration"]["strategy"] = json!("ROLLING");
    rolling["loadBalancers"][0]
        .as_object_mut()
        .unwrap()
        .remove("advancedConfiguration");
    let (fields, changes) = update_fields(&rolling, &r, "web").unwrap();
    assert_eq!(
        changes,
        [
            "rollout (deploymentConfiguration)",
            "load balancer advanced configuration"
        ]
    );
    assert_eq!(
        fields["loadBalancers"][0]["advancedConfiguration"]["roleArn"],
        json!(ROLE)
    );
}

#[test]
fn a_service_ecs_does_not_deploy_is_refused_with_the_way_out() {
    let live = json!({"deploymentController": {"type": "CODE_DEPLOY"},
        "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-blue/1", "containerName": "app", "containerPort": 8080}]});
    let err = refuse_controller(
        "prod",
        "web",
        &live,
        &["task definition web:1 -> web:2".into()],
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string()
            .contains("service web has deploymentController CODE_DEPLOY"),
        "{err}"
    );
    let hint = err.hint_text().unwrap();
    assert!(
        hint.contains("aws ecs update-service --cluster prod --service web --deployment-controller type=ECS --deployment-configuration '{\"strategy\":\"BLUE_GREEN\",\"bakeTimeInMinutes\":5}'"),
        "{hint}"
    );
    assert!(hint.contains("\"targetGroupArn\":\"arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web-blue/1\""), "{hint}");
    // Nothing to change, or ECS's own controller: no refusal.
    assert!(refuse_controller("prod", "web", &live, &[]).is_ok());
    assert!(refuse_controller("prod", "web", &json!({}), &["x".into()]).is_ok());
}

/// The rollout service-run's flags ask for.
fn rollout_of(extra: &[&str]) -> Rollout {
    let mut all = vec!["service-run", "--cluster", "c", "--service", "web"];
    all.extend_from_slice(extra);
    let args = super::super::Args::try_parse_from(all).unwrap();
    super::rollout(&args.rollout).0
}

#[test]
fn settings_without_a_strategy_are_checked_against_the_strategy_the_service_keeps() {
    let rollout = rollout_of;
    let rolling = serde_json::json!({"deploymentConfiguration": {"maximumPercent": 200}});
    let blue_green = serde_json::json!({"deploymentConfiguration": {"strategy": "BLUE_GREEN"}});
    let linear = serde_json::json!({"deploymentConfiguration": {"strategy": "LINEAR"}});
    // A bake time on a rolling service (no strategy in the answer is ECS's ROLLING) would be
    // dropped on the way.
    let err = check_over_live(&rolling, &rollout(&["--bake-time", "5m"]), "web").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        "service web keeps ECS's default strategy ROLLING: --bake-time (deploymentConfiguration.bakeTimeInMinutes) applies to blue-green, canary and linear, not to a rolling update"
    );
    // A service that names its strategy.
    let named = serde_json::json!({"deploymentConfiguration": {"strategy": "ROLLING"}});
    let err = check_over_live(&named, &rollout(&["--bake-time", "5m"]), "web").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("service web keeps its strategy ROLLING: --bake-time"),
        "{err}"
    );
    assert!(check_over_live(&blue_green, &rollout(&["--bake-time", "5m"]), "web").is_ok());
    let err = check_over_live(&linear, &rollout(&["--canary-percent", "10"]), "web").unwrap_err();
    assert!(
        err.to_string()
            .contains("canaryConfiguration (the canary flags) is for strategy CANARY, and the strategy is LINEAR"),
        "{err}"
    );
    // With the strategy named, the check of the flags themselves is the one that counts.
    assert!(
        check_over_live(
            &rolling,
            &rollout(&["--strategy", "blue-green", "--bake-time", "5m"]),
            "web"
        )
        .is_ok()
    );
    assert!(check_over_live(&rolling, &rollout(&["--alarm", "web-5xx"]), "web").is_ok());
}

#[test]
fn blue_green_needs_a_bake_time_as_sent_and_alarms_need_names() {
    let rollout = rollout_of;
    let rolling = serde_json::json!({"deploymentConfiguration": {"maximumPercent": 200}});
    let baked = serde_json::json!({"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 10}});
    // A rolling service moved to blue/green without a bake time: ECS refuses it half-way.
    let err =
        check_over_live(&rolling, &rollout(&["--strategy", "blue-green"]), "web").unwrap_err();
    assert_eq!(
        err.to_string(),
        "service web: --bake-time (deploymentConfiguration.bakeTimeInMinutes): missing: ECS needs it with the blue-green strategy (e.g. --bake-time 5m; 0m for none)"
    );
    // The service's own bake time is sent along (the live configuration is laid under).
    assert!(check_over_live(&baked, &rollout(&["--strategy", "blue-green"]), "web").is_ok());
    assert!(
        check_over_live(
            &rolling,
            &rollout(&["--strategy", "blue-green", "--bake-time", "0m"]),
            "web"
        )
        .is_ok()
    );
    assert!(missing_bake_time(&rollout(&["--strategy", "blue-green"]).deployment).is_some());
    assert!(missing_bake_time(&rollout(&["--strategy", "canary"]).deployment).is_none());

    let p = problems(&["--alarm", " "]);
    assert_eq!(
        p,
        [
            "--alarm (deploymentConfiguration.alarms.alarmNames): \" \" is not a CloudWatch alarm name (1 to 255 characters)"
        ]
    );
    let file = serde_json::json!({"serviceName": "web", "deploymentConfiguration": {"alarms": {"alarmNames": [], "enable": true, "rollback": true}}});
    let p = check_file(file.as_object().unwrap());
    assert!(
        p.iter()
            .any(|p| p.contains("alarms are enabled and none is named")),
        "{p:?}"
    );
}

#[test]
fn with_a_service_file_a_flag_of_another_strategy_than_its_own_is_refused_not_dropped() {
    let file = serde_json::json!({"serviceName": "web", "deploymentConfiguration": {"strategy": "ROLLING"}});
    let args = super::super::Args::try_parse_from([
        "service-run",
        "--cluster",
        "c",
        "--strategy",
        "rolling",
        "--bake-time",
        "5m",
    ])
    .unwrap();
    let p = check(&args.rollout, file.as_object());
    assert_eq!(
        p,
        [
            "--bake-time (deploymentConfiguration.bakeTimeInMinutes) applies to blue-green, canary and linear, not to a rolling update"
        ]
    );
}
