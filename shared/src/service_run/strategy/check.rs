//! The rollout's check, one for the flags and for a service file: every range and every
//! setting a strategy needs, each problem naming the flag and the file's field.

use serde_json::{Map, Value};

use super::{MAX_MINUTES, RolloutArgs, SHIFTING, STAGES, advanced_of, overlay, rollout};

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
            let mut doc = doc.clone();
            overlay(&mut doc, &rollout);
            problems.extend(check_file(&doc));
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
