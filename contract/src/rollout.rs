//! A service's rollout, written once for service-run (its flags and its service file) and for
//! the orchestrator's stack check (`[service.rollout]`), which must refuse a bad value before the
//! chain's first mutating call: `--strategy rolling|blue-green|canary|linear`, the bake times and
//! traffic steps, the load balancer's advanced configuration (the alternate target group, the
//! listener rules and the role ECS shifts traffic with), lifecycle hooks (a Lambda, or a pause
//! that `--continue` ends) and the CloudWatch alarms that roll back.
//!
//! The flags become one JSON fragment in the API's own form ([`Rollout`]): the keys of
//! `deploymentConfiguration` and of `loadBalancers[].advancedConfiguration`. A service file is
//! that form already, so the flags are laid over it and one check ([`check_document`]) serves
//! both. What needs the live service (sending it, comparing with it) is service-run's
//! (`ecskit::service_run::strategy`).
//!
//! Limits are the API reference's (DeploymentConfiguration, CanaryConfiguration,
//! LinearConfiguration, DeploymentLifecycleHook): bake times 0 to 1440 whole minutes, canary
//! percent 0.1 to 100 and linear step percent 3 to 100 in steps of 0.1, hook timeouts 1 to
//! 1440 minutes, PAUSE hooks not at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::parse_duration;

/// The rollout flags, flattened into service-run's flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RolloutArgs {
    /// How ECS replaces the tasks: rolling (ECS's default), blue-green, canary or linear. The
    /// last three shift traffic between two target groups and need --alternate-target-group,
    /// --production-listener-rule and --load-balancer-role. Not given: the service keeps its own.
    #[arg(long, value_enum, help_heading = "Rollout")]
    pub strategy: Option<Strategy>,
    /// How long the old revision stays ready to take the traffic back after the shift (whole
    /// minutes, up to 24h; blue-green, canary, linear).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", help_heading = "Rollout")]
    pub bake_time: Option<Duration>,
    /// Canary: the percent of production traffic shifted first (0.1 to 100, default 5).
    #[arg(long, value_name = "PERCENT", help_heading = "Rollout")]
    pub canary_percent: Option<f64>,
    /// Canary: how long to wait before shifting the rest (whole minutes, up to 24h; default 10m).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", help_heading = "Rollout")]
    pub canary_bake_time: Option<Duration>,
    /// Linear: the percent of production traffic shifted at each step (3 to 100, default 10).
    #[arg(long, value_name = "PERCENT", help_heading = "Rollout")]
    pub linear_step_percent: Option<f64>,
    /// Linear: how long to wait between two steps (whole minutes, up to 24h; default 6m).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", help_heading = "Rollout")]
    pub linear_step_bake_time: Option<Duration>,
    /// The target group the new revision's tasks register in before the shift (its ARN).
    #[arg(long, value_name = "ARN", help_heading = "Rollout")]
    pub alternate_target_group: Option<String>,
    /// The listener rule (ALB) or listener (NLB) that carries production traffic.
    #[arg(long, value_name = "ARN", help_heading = "Rollout")]
    pub production_listener_rule: Option<String>,
    /// The listener rule or listener that carries test traffic to the new revision first.
    #[arg(long, value_name = "ARN", help_heading = "Rollout")]
    pub test_listener_rule: Option<String>,
    /// The role ECS calls Elastic Load Balancing with to shift the traffic.
    #[arg(long, value_name = "ARN", help_heading = "Rollout")]
    pub load_balancer_role: Option<String>,
    /// Run a Lambda function at a lifecycle stage (repeatable): STAGE=LAMBDA_ARN, e.g.
    /// POST_TEST_TRAFFIC_SHIFT=arn:aws:lambda:us-east-1:123456789012:function:smoke-test.
    #[arg(
        long = "hook",
        value_name = "STAGE=LAMBDA_ARN",
        help_heading = "Rollout"
    )]
    pub hooks: Vec<String>,
    /// The role ECS invokes the hooks' Lambda functions with.
    #[arg(long, value_name = "ARN", help_heading = "Rollout")]
    pub hook_role: Option<String>,
    /// How long ECS waits for a hook (or a pause) before --hook-timeout-action (whole
    /// minutes, up to 24h; ECS's default 24h).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", help_heading = "Rollout")]
    pub hook_timeout: Option<Duration>,
    /// What ECS does when a hook or a pause times out (ECS's default: rollback).
    #[arg(long, value_enum, help_heading = "Rollout")]
    pub hook_timeout_action: Option<HookAction>,
    /// Pause the deployment at a lifecycle stage until `service-run --continue` (repeatable).
    #[arg(long = "pause-at", value_name = "STAGE", help_heading = "Rollout")]
    pub pause_at: Vec<String>,
    /// A CloudWatch alarm that fails the deployment and rolls it back when it fires
    /// (repeatable; --verify checks that it exists).
    #[arg(long = "alarm", value_name = "NAME", help_heading = "Rollout")]
    pub alarms: Vec<String>,
}

/// `--strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    Rolling,
    BlueGreen,
    Canary,
    Linear,
}

impl Strategy {
    /// The API's name.
    pub fn api(self) -> &'static str {
        match self {
            Strategy::Rolling => "ROLLING",
            Strategy::BlueGreen => "BLUE_GREEN",
            Strategy::Canary => "CANARY",
            Strategy::Linear => "LINEAR",
        }
    }
}

/// `--hook-timeout-action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HookAction {
    Continue,
    Rollback,
}

/// The lifecycle stages a hook may run at (DeploymentLifecycleHook.lifecycleStages).
pub const STAGES: &[&str] = &[
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
];

/// The stages where traffic is moving: a Lambda hook may run there, a pause may not.
pub const SHIFTING: &[&str] = &["TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"];

/// The longest bake time, hook timeout and step wait ECS takes: 24 hours.
pub const MAX_MINUTES: i64 = 1440;

/// The flags in the API's form: the keys they set in `deploymentConfiguration` and in each
/// load balancer's `advancedConfiguration`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rollout {
    pub deployment: Map<String, Value>,
    pub advanced: Map<String, Value>,
}

impl Rollout {
    pub fn is_empty(&self) -> bool {
        self.deployment.is_empty() && self.advanced.is_empty()
    }
}

/// A stage as the user may write it (`post-test-traffic-shift`) in the API's form.
fn stage_name(s: &str) -> String {
    s.trim().to_ascii_uppercase().replace('-', "_")
}

/// Whole minutes, for the API's `...InMinutes` fields; a problem naming the flag otherwise.
fn minutes(flag: &str, d: Duration, problems: &mut Vec<String>) -> Option<i64> {
    if !d.as_secs().is_multiple_of(60) || d.subsec_nanos() != 0 {
        problems.push(format!(
            "{flag} {}s is not whole minutes: ECS counts it in minutes (use 5m, 1h)",
            d.as_secs()
        ));
        return None;
    }
    Some((d.as_secs() / 60) as i64)
}

/// The flags as the API's fields, and what is wrong with the flags themselves (a --hook that is
/// not STAGE=ARN, a duration that is not whole minutes). Ranges are checked on the result by
/// [`check_document`], the same check a service file gets.
pub fn rollout(args: &RolloutArgs) -> (Rollout, Vec<String>) {
    let mut problems = Vec::new();
    let mut out = Rollout::default();
    let dc = &mut out.deployment;
    if let Some(s) = args.strategy {
        dc.insert("strategy".into(), json!(s.api()));
    }
    if let Some(d) = args.bake_time
        && let Some(m) = minutes("--bake-time", d, &mut problems)
    {
        dc.insert("bakeTimeInMinutes".into(), json!(m));
    }
    // Canary and linear have the same shape: a percent and a wait.
    for (key, pct_key, pct, wait_key, wait_flag, wait) in [
        (
            "canaryConfiguration",
            "canaryPercent",
            args.canary_percent,
            "canaryBakeTimeInMinutes",
            "--canary-bake-time",
            args.canary_bake_time,
        ),
        (
            "linearConfiguration",
            "stepPercent",
            args.linear_step_percent,
            "stepBakeTimeInMinutes",
            "--linear-step-bake-time",
            args.linear_step_bake_time,
        ),
    ] {
        let mut conf = Map::new();
        if let Some(p) = pct {
            conf.insert(pct_key.into(), json!(p));
        }
        if let Some(d) = wait
            && let Some(m) = minutes(wait_flag, d, &mut problems)
        {
            conf.insert(wait_key.into(), json!(m));
        }
        if !conf.is_empty() {
            dc.insert(key.into(), Value::Object(conf));
        }
    }
    let mut timeout = Map::new();
    if let Some(d) = args.hook_timeout
        && let Some(m) = minutes("--hook-timeout", d, &mut problems)
    {
        timeout.insert("timeoutInMinutes".into(), json!(m));
    }
    if let Some(a) = args.hook_timeout_action {
        let action = match a {
            HookAction::Continue => "CONTINUE",
            HookAction::Rollback => "ROLLBACK",
        };
        timeout.insert("action".into(), json!(action));
    }
    // One Lambda hook per function, with every stage it was named for, in the order given.
    let mut lambdas: Vec<(String, Vec<String>)> = Vec::new();
    for h in &args.hooks {
        let Some((stage, arn)) = h
            .split_once('=')
            .filter(|(s, a)| !s.is_empty() && !a.is_empty())
        else {
            problems.push(format!(
                "--hook '{h}' is not STAGE=LAMBDA_ARN (e.g. POST_TEST_TRAFFIC_SHIFT=arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
            ));
            continue;
        };
        let stage = stage_name(stage);
        match lambdas.iter_mut().find(|(a, _)| a == arn) {
            Some((_, stages)) => stages.push(stage),
            None => lambdas.push((arn.to_string(), vec![stage])),
        }
    }
    let mut hooks: Vec<Value> = Vec::new();
    for (arn, stages) in lambdas {
        let mut hook =
            json!({"targetType": "AWS_LAMBDA", "hookTargetArn": arn, "lifecycleStages": stages});
        if let Some(role) = &args.hook_role {
            hook["roleArn"] = json!(role);
        }
        hooks.push(hook);
    }
    if !args.pause_at.is_empty() {
        let stages: Vec<String> = args.pause_at.iter().map(|s| stage_name(s)).collect();
        hooks.push(json!({"targetType": "PAUSE", "lifecycleStages": stages}));
    }
    if !timeout.is_empty() {
        for hook in &mut hooks {
            hook["timeoutConfiguration"] = Value::Object(timeout.clone());
        }
    }
    if !hooks.is_empty() {
        dc.insert("lifecycleHooks".into(), Value::Array(hooks));
    }
    if args.hooks.is_empty() && args.hook_role.is_some() {
        problems.push("--hook-role is the role of --hook's Lambda functions: add --hook STAGE=LAMBDA_ARN, or drop it".into());
    }
    if (args.hook_timeout.is_some() || args.hook_timeout_action.is_some())
        && args.hooks.is_empty()
        && args.pause_at.is_empty()
    {
        problems.push(
            "--hook-timeout and --hook-timeout-action apply to hooks: add --hook or --pause-at, or drop them"
                .into(),
        );
    }
    if !args.alarms.is_empty() {
        dc.insert(
            "alarms".into(),
            json!({"alarmNames": args.alarms, "enable": true, "rollback": true}),
        );
    }
    for (value, key) in [
        (&args.alternate_target_group, "alternateTargetGroupArn"),
        (&args.production_listener_rule, "productionListenerRule"),
        (&args.test_listener_rule, "testListenerRule"),
        (&args.load_balancer_role, "roleArn"),
    ] {
        if let Some(v) = value {
            out.advanced.insert(key.into(), json!(v));
        }
    }
    (out, problems)
}

/// The `advancedConfiguration` of each load balancer with a target group in a CreateService or
/// UpdateService document.
pub fn advanced_of(doc: &Map<String, Value>) -> Vec<Map<String, Value>> {
    doc.get("loadBalancers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|lb| lb.get("targetGroupArn").is_some())
        .map(|lb| {
            lb.get("advancedConfiguration")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// Lays the rollout over a CreateService or UpdateService document: its keys into
/// `deploymentConfiguration`, the advanced configuration into each load balancer that has a
/// target group. A change of strategy drops the other strategies' settings, which ECS refuses
/// beside it.
pub fn overlay(doc: &mut Map<String, Value>, rollout: &Rollout) {
    if !rollout.deployment.is_empty() {
        let dc = doc
            .entry("deploymentConfiguration")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(dc) = dc.as_object_mut() {
            for (k, v) in &rollout.deployment {
                dc.insert(k.clone(), v.clone());
            }
            tidy(dc);
        }
    }
    if !rollout.advanced.is_empty()
        && let Some(lbs) = doc.get_mut("loadBalancers").and_then(Value::as_array_mut)
    {
        for lb in lbs
            .iter_mut()
            .filter(|lb| lb.get("targetGroupArn").is_some())
        {
            let Some(lb) = lb.as_object_mut() else {
                continue;
            };
            let adv = lb
                .entry("advancedConfiguration")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(adv) = adv.as_object_mut() {
                for (k, v) in &rollout.advanced {
                    adv.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// Drops the settings of strategies other than the one named (ECS refuses a request holding
/// another strategy's settings, as it would after a file moves CANARY to LINEAR over the live
/// service's canaryConfiguration).
pub fn tidy(dc: &mut Map<String, Value>) {
    let Some(s) = dc
        .get("strategy")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return;
    };
    if s != "CANARY" {
        dc.remove("canaryConfiguration");
    }
    if s != "LINEAR" {
        dc.remove("linearConfiguration");
    }
    if s == "ROLLING" {
        dc.remove("bakeTimeInMinutes");
    }
}

// The check: one for the flags and for a service file, every range and every setting a
// strategy needs, each problem naming the flag and the file's field.

/// The flag and the file's field that set each checked value, for messages that serve both.
fn named(field: &str) -> &'static str {
    match field {
        "strategy" => "--strategy (deploymentConfiguration.strategy)",
        "bakeTimeInMinutes" => "--bake-time (deploymentConfiguration.bakeTimeInMinutes)",
        "canaryPercent" => "--canary-percent (canaryConfiguration.canaryPercent)",
        "canaryBakeTimeInMinutes" => {
            "--canary-bake-time (canaryConfiguration.canaryBakeTimeInMinutes)"
        }
        "stepPercent" => "--linear-step-percent (linearConfiguration.stepPercent)",
        "stepBakeTimeInMinutes" => {
            "--linear-step-bake-time (linearConfiguration.stepBakeTimeInMinutes)"
        }
        "alternateTargetGroupArn" => {
            "--alternate-target-group (advancedConfiguration.alternateTargetGroupArn)"
        }
        "productionListenerRule" => {
            "--production-listener-rule (advancedConfiguration.productionListenerRule)"
        }
        "testListenerRule" => "--test-listener-rule (advancedConfiguration.testListenerRule)",
        "roleArn" => "--load-balancer-role (advancedConfiguration.roleArn)",
        "timeoutInMinutes" => "--hook-timeout (timeoutConfiguration.timeoutInMinutes)",
        "action" => "--hook-timeout-action (timeoutConfiguration.action)",
        _ => "a rollout setting",
    }
}

/// Minutes from 0 (1 for a timeout) to 24 hours.
fn check_minutes(field: &str, v: &Value, least: i64, problems: &mut Vec<String>) {
    match v.as_i64() {
        Some(m) if (least..=MAX_MINUTES).contains(&m) => {}
        _ => problems.push(format!(
            "{}: {v} is not {least} to {MAX_MINUTES} minutes (24h)",
            named(field)
        )),
    }
}

/// A percent in [least, 100] in steps of 0.1, as the API takes it.
fn check_percent(field: &str, v: &Value, least: f64, problems: &mut Vec<String>) {
    let ok = v.as_f64().is_some_and(|p| {
        let tenths = p * 10.0;
        (least..=100.0).contains(&p) && (tenths - tenths.round()).abs() < 1e-6
    });
    if !ok {
        problems.push(format!(
            "{}: {v} is not a percent from {least} to 100 in steps of 0.1",
            named(field)
        ));
    }
}

/// Checks a service's rollout as it will be sent: `deployment` is its `deploymentConfiguration`,
/// `advanced` the `advancedConfiguration` of each load balancer that has a target group (one
/// entry for the flags' path, where the service's own load balancer is only known later;
/// `None`: no load balancer to check, which [`check_file`] reports itself). Every message names
/// the flag and the file's field.
pub fn check_document(
    deployment: &Map<String, Value>,
    advanced: Option<&[Map<String, Value>]>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let strategy = deployment.get("strategy").and_then(Value::as_str);
    if let Some(v) = deployment.get("strategy")
        && !matches!(
            v.as_str(),
            Some("ROLLING" | "BLUE_GREEN" | "CANARY" | "LINEAR")
        )
    {
        problems.push(format!(
            "{}: {v} is not one of ROLLING, BLUE_GREEN, CANARY, LINEAR",
            named("strategy")
        ));
    }
    let shifts_traffic = matches!(strategy, Some("BLUE_GREEN" | "CANARY" | "LINEAR"));
    if let Some(v) = deployment.get("bakeTimeInMinutes") {
        check_minutes("bakeTimeInMinutes", v, 0, &mut problems);
        if strategy == Some("ROLLING") {
            problems.push(format!(
                "{} applies to blue-green, canary and linear, not to a rolling update",
                named("bakeTimeInMinutes")
            ));
        }
    }
    for (key, kind, pct, least, wait) in [
        (
            "canaryConfiguration",
            "CANARY",
            "canaryPercent",
            0.1,
            "canaryBakeTimeInMinutes",
        ),
        (
            "linearConfiguration",
            "LINEAR",
            "stepPercent",
            3.0,
            "stepBakeTimeInMinutes",
        ),
    ] {
        let Some(conf) = deployment.get(key) else {
            continue;
        };
        if strategy.is_some_and(|s| s != kind) {
            problems.push(format!(
                "deploymentConfiguration.{key} (the {} flags) is for strategy {kind}, and the strategy is {}",
                kind.to_ascii_lowercase(),
                strategy.unwrap_or_default()
            ));
        }
        if let Some(v) = conf.get(pct) {
            check_percent(pct, v, least, &mut problems);
        }
        if let Some(v) = conf.get(wait) {
            check_minutes(wait, v, 0, &mut problems);
        }
    }
    if let Some(hooks) = deployment.get("lifecycleHooks").and_then(Value::as_array) {
        for (i, hook) in hooks.iter().enumerate() {
            check_hook(i, hook, &mut problems);
        }
    }
    if let Some(alarms) = deployment.get("alarms") {
        check_alarms(alarms, &mut problems);
    }
    let advanced = advanced.unwrap_or_default();
    if shifts_traffic && !advanced.is_empty() {
        let s = strategy.unwrap_or_default();
        for key in [
            "alternateTargetGroupArn",
            "productionListenerRule",
            "roleArn",
        ] {
            if advanced.iter().any(|a| !a.contains_key(key)) {
                problems.push(format!(
                    "strategy {s} shifts traffic between two target groups and needs {}",
                    named(key)
                ));
            }
        }
    }
    for adv in advanced {
        for (key, service, prefix) in [
            (
                "alternateTargetGroupArn",
                "elasticloadbalancing",
                Some("targetgroup/"),
            ),
            ("productionListenerRule", "elasticloadbalancing", None),
            ("testListenerRule", "elasticloadbalancing", None),
            ("roleArn", "iam", Some("role/")),
        ] {
            if let Some(v) = adv.get(key) {
                let shape = v
                    .as_str()
                    .ok_or_else(|| format!("{v} is not an ARN"))
                    .and_then(|s| crate::validate::arn(s, Some(service), prefix));
                if let Err(e) = shape {
                    problems.push(format!("{}: {e}", named(key)));
                }
            }
        }
    }
    problems
}

/// `--alarm` (deploymentConfiguration.alarms): CloudWatch alarm names, 1 to 255 characters;
/// alarms turned on name at least one.
fn check_alarms(alarms: &Value, problems: &mut Vec<String>) {
    let names = alarms.get("alarmNames").and_then(Value::as_array);
    for name in names.into_iter().flatten() {
        match name.as_str() {
            Some(n) if !n.trim().is_empty() && n.chars().count() <= 255 => {}
            _ => problems.push(format!(
                "--alarm (deploymentConfiguration.alarms.alarmNames): {name} is not a CloudWatch alarm name (1 to 255 characters)"
            )),
        }
    }
    let on = alarms.get("enable").and_then(Value::as_bool) == Some(true);
    if on && names.is_none_or(Vec::is_empty) {
        problems.push(
            "--alarm (deploymentConfiguration.alarms.alarmNames): alarms are enabled and none is named: name one, or set enable to false"
                .into(),
        );
    }
}

/// ECS needs a bake time with the blue/green strategy (DeploymentConfiguration.bakeTimeInMinutes:
/// "You must provide this parameter when you use the BLUE_GREEN deployment strategy"). Checked on
/// the configuration as it will be sent: a new service's, or the rollout laid over a live one's,
/// which may carry the bake time already.
pub fn missing_bake_time(sent: &Map<String, Value>) -> Option<String> {
    (sent.get("strategy").and_then(Value::as_str) == Some("BLUE_GREEN")
        && !sent.contains_key("bakeTimeInMinutes"))
    .then(|| {
        format!(
            "{}: missing: ECS needs it with the blue-green strategy (e.g. --bake-time 5m; 0m for none)",
            named("bakeTimeInMinutes")
        )
    })
}

fn check_hook(i: usize, hook: &Value, problems: &mut Vec<String>) {
    let at = format!("deploymentConfiguration.lifecycleHooks[{i}]");
    let pause = hook.get("targetType").and_then(Value::as_str) == Some("PAUSE");
    let flag = if pause { "--pause-at" } else { "--hook" };
    let stages: Vec<&str> = hook
        .get("lifecycleStages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if stages.is_empty() {
        problems.push(format!("{at}.lifecycleStages: missing: name the stages"));
    }
    for stage in stages {
        if !STAGES.contains(&stage) {
            problems.push(format!(
                "{flag} {stage} ({at}.lifecycleStages): not a lifecycle stage: use one of {}",
                STAGES.join(", ")
            ));
        } else if pause && SHIFTING.contains(&stage) {
            problems.push(format!(
                "{flag} {stage} ({at}.lifecycleStages): ECS cannot pause while traffic shifts: pause at POST_TEST_TRAFFIC_SHIFT or PRE_PRODUCTION_TRAFFIC_SHIFT instead (a Lambda --hook may run at {stage})"
            ));
        }
    }
    if !pause {
        match hook.get("hookTargetArn").and_then(Value::as_str) {
            Some(arn) => {
                if let Err(e) = crate::validate::arn(arn, Some("lambda"), Some("function:")) {
                    problems.push(format!("--hook ({at}.hookTargetArn): {e}"));
                }
            }
            None => problems.push(format!(
                "--hook ({at}.hookTargetArn): missing: a Lambda hook names its function"
            )),
        }
        match hook.get("roleArn").and_then(Value::as_str) {
            Some(role) => {
                if let Err(e) = crate::validate::role_arn(role) {
                    problems.push(format!("--hook-role ({at}.roleArn): {e}"));
                }
            }
            None => problems.push(format!(
                "--hook-role ({at}.roleArn): missing: ECS invokes the Lambda function with this role"
            )),
        }
    }
    if let Some(t) = hook.get("timeoutConfiguration") {
        if let Some(v) = t.get("timeoutInMinutes") {
            check_minutes("timeoutInMinutes", v, 1, problems);
        }
        if let Some(v) = t.get("action")
            && !matches!(v.as_str(), Some("CONTINUE" | "ROLLBACK"))
        {
            problems.push(format!(
                "{}: {v} is not CONTINUE or ROLLBACK",
                named("action")
            ));
        }
    }
}

/// The flags' check before any call: the flags themselves, then the rollout they ask for, laid
/// over the service file when there is one (the same check a file alone gets). Without a file,
/// the three load balancer flags are needed with a traffic-shifting strategy: the flags' path
/// has no load balancer of its own to find them in.
pub fn check(args: &RolloutArgs, file: Option<&Map<String, Value>>) -> Vec<String> {
    let (rollout, mut problems) = rollout(args);
    match file {
        Some(doc) => {
            // The flags on their own first, with the strategy they name or else the file's:
            // laid over the file, a setting of another strategy is tidied away, and would be
            // dropped without a word.
            let mut flags = rollout.deployment.clone();
            if !flags.contains_key("strategy")
                && let Some(s) = doc
                    .get("deploymentConfiguration")
                    .and_then(|d| d.get("strategy"))
            {
                flags.insert("strategy".into(), s.clone());
            }
            problems.extend(check_document(&flags, None));
            let mut doc = doc.clone();
            overlay(&mut doc, &rollout);
            for p in check_file(&doc) {
                if !problems.contains(&p) {
                    problems.push(p);
                }
            }
        }
        None => problems.extend(check_document(
            &rollout.deployment,
            Some(std::slice::from_ref(&rollout.advanced)),
        )),
    }
    problems
}

/// A service file's rollout (after the flags are laid over it): a traffic-shifting strategy
/// needs a load balancer with a target group, or Service Connect, to shift traffic on.
pub fn check_file(doc: &Map<String, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    let dc = doc
        .get("deploymentConfiguration")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let advanced = advanced_of(doc);
    if advanced.is_empty() {
        if let Some(s) = dc.get("strategy").and_then(Value::as_str)
            && matches!(s, "BLUE_GREEN" | "CANARY" | "LINEAR")
            && !doc.contains_key("serviceConnectConfiguration")
        {
            problems.push(format!(
                "strategy {s} shifts traffic between two target groups: give the service its load balancer (loadBalancers with a targetGroupArn) or serviceConnectConfiguration"
            ));
        }
        problems.extend(check_document(&dc, None));
    } else {
        problems.extend(check_document(&dc, Some(&advanced)));
    }
    problems
}
