//! How ECS rolls a new revision out, where it meets the live service: the rollout's request
//! body laid over the service's own settings ([`merge_into_body`]), what the rollout changes on
//! a live service ([`update_fields`], [`check_over_live`]), and the refusal of services ECS does
//! not deploy itself ([`refuse_controller`]). The flags, their API form and their check are the
//! contract's ([`ecskit_contract::rollout`]), shared with the orchestrator's stack check.

use serde_json::{Map, Value, json};

pub use ecskit_contract::rollout::*;

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
    if rollout.deployment.is_empty() {
        return Ok(());
    }
    let (kept, whose) = match live
        .pointer("/deploymentConfiguration/strategy")
        .and_then(Value::as_str)
    {
        Some(s) => (s, "its strategy"),
        None => ("ROLLING", "ECS's default strategy"),
    };
    let mut problems = Vec::new();
    let mut hint = None;
    if !rollout.deployment.contains_key("strategy") {
        let mut dc = rollout.deployment.clone();
        dc.insert("strategy".into(), json!(kept));
        let found = check_document(&dc, None);
        if !found.is_empty() {
            hint = Some(
                "name the strategy the settings are for (--strategy blue-green|canary|linear, or deploymentConfiguration.strategy in the service file), or drop them",
            );
        }
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("service {name} keeps {whose} {kept}: {p}")),
        );
    }
    // As it will be sent: the rollout's fields over the service's own configuration.
    let mut sent = live
        .get("deploymentConfiguration")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in &rollout.deployment {
        sent.insert(k.clone(), v.clone());
    }
    tidy(&mut sent);
    if let Some(p) = missing_bake_time(&sent) {
        problems.push(format!("service {name}: {p}"));
        hint.get_or_insert(
            "add --bake-time (deploymentConfiguration.bakeTimeInMinutes), e.g. 5m; 0m for none",
        );
    }
    match hint {
        None => Ok(()),
        Some(h) => Err(crate::Error::inputs(problems).hint(h)),
    }
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

#[cfg(test)]
mod tests;
