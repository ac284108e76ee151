//! How ECS rolls a new revision out: `--strategy rolling|blue-green|canary|linear`, the bake
//! times and traffic steps, the load balancer's advanced configuration (the alternate target
//! group, the listener rules and the role ECS shifts traffic with), lifecycle hooks (a Lambda,
//! or a pause that `--continue` ends) and the CloudWatch alarms that roll back.
//!
//! The flags become one JSON fragment in the API's own form ([`Rollout`]): the keys of
//! `deploymentConfiguration` and of `loadBalancers[].advancedConfiguration`. A service file is
//! that form already, so the flags are laid over it and one check ([`check_document`]) serves
//! both; the flags' path sends the same fragment inside its typed request ([`merge_into_body`]),
//! so there is one rendering of a rollout, not a typed one and a JSON one.
//!
//! Limits are the API reference's (DeploymentConfiguration, CanaryConfiguration,
//! LinearConfiguration, DeploymentLifecycleHook): bake times 0 to 1440 whole minutes, canary
//! percent 0.1 to 100 and linear step percent 3 to 100 in steps of 0.1, hook timeouts 1 to
//! 1440 minutes, PAUSE hooks not at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::ecs::parse_duration;

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
const SHIFTING: &[&str] = &["TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"];

/// The longest bake time, hook timeout and step wait ECS takes: 24 hours.
const MAX_MINUTES: i64 = 1440;

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

/// The flags' request body, laid over the live service and under the rollout: `under` holds
/// the live service's objects (a field the typed request leaves out of `deploymentConfiguration`,
/// such as its alarms, hooks or strategy, keeps the service's value rather than ECS's default),
/// `over` the rollout's fields, in the same form a service file sends.
pub fn merge_into_body(
    under: Map<String, Value>,
    over: Map<String, Value>,
) -> impl Fn(&mut aws_smithy_runtime_api::client::orchestrator::HttpRequest) + Send + Sync + 'static
{
    use super::service_file::update_value;
    move |req| {
        if under.is_empty() && over.is_empty() {
            return;
        }
        let mut body: Value = req
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_else(|| Value::Object(Map::new()));
        if let Some(obj) = body.as_object_mut() {
            for (k, v) in &under {
                if let Some(sent) = obj.get(k) {
                    let merged = update_value(sent, Some(v));
                    obj.insert(k.clone(), merged);
                }
            }
            for (k, v) in &over {
                let merged = update_value(v, obj.get(k));
                obj.insert(k.clone(), merged);
            }
            if let Some(dc) = obj
                .get_mut("deploymentConfiguration")
                .and_then(Value::as_object_mut)
            {
                tidy(dc);
            }
        }
        crate::aws::json_body(&body)(req);
    }
}

/// What the rollout flags change on a live service (its DescribeServices object): the fields to
/// send (`deploymentConfiguration`, and `loadBalancers` with their advanced configuration) and
/// one line per difference. Exit 2 when a traffic-shifting strategy is asked of a service
/// without a load balancer: the flags give no load balancer, a service file does.
pub fn update_fields(
    live: &Value,
    rollout: &Rollout,
    name: &str,
) -> crate::Result<(Map<String, Value>, Vec<String>)> {
    let mut wanted = Map::new();
    if !rollout.deployment.is_empty() {
        wanted.insert(
            "deploymentConfiguration".into(),
            Value::Object(rollout.deployment.clone()),
        );
    }
    let shifts = matches!(
        rollout.deployment.get("strategy").and_then(Value::as_str),
        Some("BLUE_GREEN" | "CANARY" | "LINEAR")
    );
    if shifts || !rollout.advanced.is_empty() {
        let mut lbs = Map::new();
        if let Some(l) = live.get("loadBalancers") {
            lbs.insert("loadBalancers".into(), l.clone());
        }
        overlay(
            &mut lbs,
            &Rollout {
                advanced: rollout.advanced.clone(),
                ..Default::default()
            },
        );
        if advanced_of(&lbs).is_empty() {
            return Err(crate::Error::input(format!(
                "service {name} has no load balancer with a target group: {} shift traffic between two target groups",
                if shifts { "blue-green, canary and linear" } else { "--alternate-target-group and the listener rules" }
            ))
            .hint("give the service its load balancer in a --service-file (loadBalancers, with advancedConfiguration), or keep --strategy rolling"));
        }
        wanted.extend(lbs);
    }
    let plan = super::service_file::plan(&Value::Object(wanted), live);
    let changes = plan
        .update
        .keys()
        .map(|k| match k.as_str() {
            "deploymentConfiguration" => "rollout (deploymentConfiguration)".to_string(),
            "loadBalancers" => "load balancer advanced configuration".to_string(),
            other => other.to_string(),
        })
        .collect();
    Ok((plan.update, changes))
}

/// Exit 2 when the rollout's settings do not fit the strategy the live service keeps: settings
/// sent without `--strategy` (or the file's `deploymentConfiguration.strategy`) take the
/// service's own, so a bake time asked of a rolling service would be dropped on the way (and
/// the run would report a change every time), a canary setting on a linear one refused by ECS
/// half-way through the deploy.
pub fn check_over_live(live: &Value, rollout: &Rollout, name: &str) -> crate::Result<()> {
    if rollout.deployment.is_empty() || rollout.deployment.contains_key("strategy") {
        return Ok(());
    }
    let kept = live
        .pointer("/deploymentConfiguration/strategy")
        .and_then(Value::as_str)
        .unwrap_or("ROLLING");
    let mut dc = rollout.deployment.clone();
    dc.insert("strategy".into(), json!(kept));
    let problems = check_document(&dc, None);
    if problems.is_empty() {
        return Ok(());
    }
    Err(crate::Error::inputs(
        problems
            .into_iter()
            .map(|p| format!("service {name} keeps its strategy {kept}: {p}"))
            .collect(),
    )
    .hint("name the strategy the settings are for (--strategy blue-green|canary|linear, or deploymentConfiguration.strategy in the service file), or drop them"))
}

/// Exit 2 for a service ECS does not deploy itself (deploymentController CODE_DEPLOY or
/// EXTERNAL) that a run would update: UpdateService cannot roll out its task definition, so the
/// call would fail or leave it half-changed. `changes` says what would have been sent. The hint
/// is the one UpdateService (allowed since July 2025) that moves it to ECS's own blue/green,
/// with the service's own load balancer filled in.
pub fn refuse_controller(
    cluster: &str,
    name: &str,
    live: &Value,
    changes: &[String],
) -> crate::Result<()> {
    let controller = live
        .get("deploymentController")
        .and_then(|d| d.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("ECS");
    if controller == "ECS" || changes.is_empty() {
        return Ok(());
    }
    let lb = live
        .get("loadBalancers")
        .and_then(Value::as_array)
        .and_then(|l| l.first());
    let text = |k: &str, default: &str| {
        lb.and_then(|l| l.get(k))
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_else(|| default.to_string())
    };
    let load_balancers = json!([{
        "targetGroupArn": text("targetGroupArn", "PRODUCTION_TARGET_GROUP_ARN"),
        "containerName": text("containerName", "CONTAINER"),
        "containerPort": lb.and_then(|l| l.get("containerPort")).cloned().unwrap_or(json!(80)),
        "advancedConfiguration": {
            "alternateTargetGroupArn": "ALTERNATE_TARGET_GROUP_ARN",
            "productionListenerRule": "PRODUCTION_LISTENER_RULE_ARN",
            "roleArn": "LOAD_BALANCER_ROLE_ARN"
        }
    }]);
    let made_by = if controller == "CODE_DEPLOY" {
        "CodeDeploy (a deployment with an AppSpec)"
    } else {
        "the external controller's task sets"
    };
    Err(crate::Error::input(format!(
        "service {name} has deploymentController {controller}: its deployments are made by {made_by}, not by UpdateService, so service-run changes nothing on it (it would have changed: {})",
        changes.join("; ")
    ))
    .hint(format!(
        "move it to ECS's own blue/green once (with CODE_DEPLOY, turn the deployment group's automatic deployments off first), then deploy with service-run --strategy blue-green (or put \"deploymentController\": {{\"type\": \"ECS\"}} and the same deploymentConfiguration and loadBalancers in a --service-file):\n  aws ecs update-service --cluster {cluster} --service {name} --deployment-controller type=ECS --deployment-configuration '{}' --load-balancers '{}'",
        json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}),
        load_balancers
    )))
}

mod check;
pub use check::{check, check_document, check_file};

#[cfg(test)]
mod tests;
