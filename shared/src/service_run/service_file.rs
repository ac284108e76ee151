//! `--service-file`: a service definition in CreateService's own JSON form, passed through as
//! written, the way taskdef-register passes a task definition.
//!
//! Flags cover the settings most services need; everything else ECS knows (load balancers,
//! service registries, Service Connect, placement, alarms, fields added after this tool was
//! written) comes through the file untouched. This module is the pure part: it checks the
//! fields it knows, names the fields UpdateService cannot change, turns the document into the
//! body of an UpdateService for what differs, and writes a live service back out in the
//! CreateService form (for `cargo xtask init`). Comparison is by meaning: a task definition
//! named by ARN or by `family:revision` is the same; a field the file leaves out keeps the
//! service's value.

use serde_json::{Map, Value};

/// Fields UpdateService takes (besides `cluster` and `service`).
const UPDATABLE: &[&str] = &[
    "availabilityZoneRebalancing",
    "capacityProviderStrategy",
    "deploymentConfiguration",
    "deploymentController",
    "desiredCount",
    "enableECSManagedTags",
    "enableExecuteCommand",
    "healthCheckGracePeriodSeconds",
    "loadBalancers",
    "networkConfiguration",
    "placementConstraints",
    "placementStrategy",
    "platformVersion",
    "propagateTags",
    "serviceConnectConfiguration",
    "serviceRegistries",
    "taskDefinition",
    "volumeConfigurations",
    "vpcLatticeConfigurations",
];

/// Fields only CreateService takes: changing one means creating the service anew.
const CREATE_ONLY: &[&str] = &["launchType", "schedulingStrategy", "role", "serviceName"];

/// Fields that are the tool's business, not the file's: the request's identity and retry token.
const MANAGED: &[&str] = &["cluster", "clientToken", "tags"];

/// Fields DescribeServices reports that are state, not settings: dropped when writing a live
/// service out as a file.
const READ_ONLY: &[&str] = &[
    "serviceArn",
    "clusterArn",
    "status",
    "runningCount",
    "pendingCount",
    "deployments",
    "events",
    "createdAt",
    "createdBy",
    "roleArn",
    "taskSets",
    "currentServiceDeployment",
    "currentServiceRevisions",
    "resourceManagementType",
    "platformFamily",
];

/// Checks the fields this tool knows; unknown fields are passed through (a newer API may know
/// them). Every problem names its field.
pub fn check(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(obj) = doc.as_object() else {
        return vec!["the service file must hold one JSON object (the CreateService form)".into()];
    };
    match obj.get("serviceName") {
        Some(Value::String(n)) => {
            if let Err(e) = ecskit_contract::validate::ecs_name(n, 255) {
                problems.push(format!("serviceName: {e}"));
            }
        }
        Some(_) => problems.push("serviceName: must be a string".into()),
        None => {}
    }
    if let Some(v) = obj.get("desiredCount")
        && v.as_u64().is_none_or(|n| n > 10_000)
    {
        problems.push(format!("desiredCount: {v} is not a count from 0 to 10000"));
    }
    if let Some(v) = obj.get("launchType")
        && !matches!(
            v.as_str(),
            Some("FARGATE" | "EC2" | "EXTERNAL" | "MANAGED_INSTANCES")
        )
    {
        problems.push(format!(
            "launchType: {v} is not FARGATE, EC2, EXTERNAL or MANAGED_INSTANCES"
        ));
    }
    if obj.contains_key("launchType") && obj.contains_key("capacityProviderStrategy") {
        problems.push(
            "launchType and capacityProviderStrategy: ECS takes one or the other, not both".into(),
        );
    }
    if let Some(list) = obj.get("loadBalancers") {
        match list.as_array() {
            Some(items) => {
                for (i, lb) in items.iter().enumerate() {
                    for key in ["containerName", "containerPort"] {
                        if lb.get(key).is_none() {
                            problems.push(format!("loadBalancers[{i}].{key}: missing"));
                        }
                    }
                    if lb.get("targetGroupArn").is_none() && lb.get("loadBalancerName").is_none() {
                        problems.push(format!(
                            "loadBalancers[{i}]: give targetGroupArn (or loadBalancerName for a Classic Load Balancer)"
                        ));
                    }
                }
            }
            None => problems.push("loadBalancers: must be a list".into()),
        }
    }
    for key in MANAGED {
        if *key != "tags" && obj.contains_key(*key) {
            problems.push(format!(
                "{key}: leave it out of the service file; service-run sets it (--cluster, its own client token)"
            ));
        }
    }
    problems
}

/// The task definition as its family and revision, so an ARN and `family:N` compare equal.
fn task_definition_key(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    Some(s.rsplit('/').next().unwrap_or(s).to_string())
}

/// Whether the file's value of `key` means the same as the service's.
fn same(key: &str, wanted: &Value, live: Option<&Value>) -> bool {
    let Some(live) = live else {
        // Absent from the description: the same only when the file asks for nothing.
        return matches!(wanted, Value::Null)
            || wanted.as_array().is_some_and(Vec::is_empty)
            || wanted.as_object().is_some_and(Map::is_empty);
    };
    if key == "taskDefinition" {
        return task_definition_key(wanted) == task_definition_key(live);
    }
    if key == "role"
        && let (Some(w), Some(l)) = (wanted.as_str(), live.as_str())
    {
        // A role by name or by ARN is the same role.
        return w == l || l.ends_with(&format!("/{w}"));
    }
    contains(wanted, live)
}

/// Whether everything the file says is in the live value (fields the file leaves out keep the
/// service's value, which may hold defaults ECS filled in).
fn contains(wanted: &Value, live: &Value) -> bool {
    match (wanted, live) {
        (Value::Object(w), Value::Object(l)) => w
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| contains(v, lv))),
        (Value::Array(w), Value::Array(l)) => {
            w.len() == l.len() && w.iter().all(|wi| l.iter().any(|li| contains(wi, li)))
        }
        (w, l) => w == l,
    }
}

/// What deploying the file onto a live service takes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The fields of an UpdateService body that differ (empty: nothing to update).
    pub update: Map<String, Value>,
    /// Fields that differ but only a new service can change, as `field: live -> wanted`.
    pub needs_recreate: Vec<String>,
}

/// Compares the file with the service as DescribeServices reports it (its JSON object).
pub fn plan(doc: &Value, live: &Value) -> Plan {
    let mut plan = Plan::default();
    let Some(obj) = doc.as_object() else {
        return plan;
    };
    for (key, wanted) in obj {
        if MANAGED.contains(&key.as_str()) {
            continue;
        }
        // DescribeServices reports CreateService's `role` as `roleArn`.
        let live_value = match key.as_str() {
            "role" => live.get("roleArn"),
            _ => live.get(key),
        };
        if same(key, wanted, live_value) {
            continue;
        }
        if CREATE_ONLY.contains(&key.as_str()) {
            plan.needs_recreate.push(format!(
                "{key}: {} -> {wanted}",
                live_value
                    .map(Value::to_string)
                    .unwrap_or_else(|| "unset".into())
            ));
        } else {
            // Known updatable fields, and unknown ones: a newer UpdateService may take them,
            // and ECS says so plainly if it does not.
            plan.update.insert(key.clone(), wanted.clone());
        }
    }
    plan
}

/// Whether a field is one UpdateService is known to take.
pub fn is_updatable(key: &str) -> bool {
    UPDATABLE.contains(&key)
}

/// A live service (DescribeServices' JSON object) written out in the CreateService form: state
/// dropped, settings kept, unknown fields kept. Returns the document and the fields it could
/// not carry over, with why.
pub fn from_described(live: &Value) -> (Value, Vec<String>) {
    let mut out = Map::new();
    let mut dropped = Vec::new();
    let Some(obj) = live.as_object() else {
        return (Value::Object(out), dropped);
    };
    for (key, value) in obj {
        if READ_ONLY.contains(&key.as_str()) {
            // CreateService's `role` only matters for Classic Load Balancers; the service-linked
            // role (`/aws-service-role/`) that ECS reports otherwise may not be named.
            if key == "roleArn"
                && value
                    .as_str()
                    .is_some_and(|r| !r.contains(":role/aws-service-role/"))
            {
                out.insert("role".into(), value.clone());
            }
            continue;
        }
        if key == "clusterArn" || key == "cluster" {
            continue;
        }
        if key == "tags" {
            // Tags are kept except ecskit's own: service-run adds managed-by itself.
            if let Some(list) = value.as_array() {
                let kept: Vec<Value> = list
                    .iter()
                    .filter(|t| {
                        t.get("key").and_then(Value::as_str) != Some(ecskit_contract::MANAGED_BY.0)
                    })
                    .cloned()
                    .collect();
                if !kept.is_empty() {
                    out.insert("tags".into(), Value::Array(kept));
                }
            }
            continue;
        }
        out.insert(key.clone(), value.clone());
    }
    if obj
        .get("deploymentController")
        .and_then(|d| d.get("type"))
        .and_then(Value::as_str)
        == Some("EXTERNAL")
    {
        dropped.push(
            "deploymentController EXTERNAL: task sets are managed outside ECS services; service-run deploys only ECS-controlled services".into(),
        );
    }
    (Value::Object(out), dropped)
}

/// The live service as DescribeServices sends it (every field, tags included), or `None` when
/// there is no such active service.
pub async fn describe_live(
    ctx: &crate::aws::Ctx,
    cluster: &str,
    service: &str,
) -> crate::Result<Option<Value>> {
    Ok(describe_both(&ctx.ecs(), cluster, service)
        .await?
        .map(|(_, raw)| raw))
}

/// One DescribeServices call read two ways: the typed service (for watching the deployment)
/// and its JSON object with every field ECS sent (for comparing with a file). `None` when the
/// service or its cluster does not exist, or the service is INACTIVE.
pub async fn describe_both(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> crate::Result<Option<(aws_sdk_ecs::types::Service, Value)>> {
    use crate::error::AwsContext;
    let raw = crate::aws::RawAnswer::default();
    let out = match ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) if crate::error::sdk_is(&e, &["ClusterNotFoundException"]) => return Ok(None),
        Err(e) => {
            return Err(e).context(format!("describing service {service} in cluster {cluster}"));
        }
    };
    let Some(typed) = out
        .services
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.status.as_deref() != Some("INACTIVE"))
    else {
        return Ok(None);
    };
    let json = raw
        .json()
        .get("services")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter()
                .find(|s| s.get("serviceArn").and_then(Value::as_str) == typed.service_arn())
        })
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Some((typed, json)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file() -> Value {
        json!({
            "serviceName": "web",
            "taskDefinition": "web:3",
            "desiredCount": 2,
            "launchType": "FARGATE",
            "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/web/abc", "containerName": "app", "containerPort": 8080}],
            "healthCheckGracePeriodSeconds": 30,
            "futureSetting": {"enabled": true}
        })
    }

    fn live() -> Value {
        json!({
            "serviceArn": "arn:aws:ecs:us-west-2:1:service/demo/web",
            "serviceName": "web",
            "clusterArn": "arn:aws:ecs:us-west-2:1:cluster/demo",
            "taskDefinition": "arn:aws:ecs:us-west-2:1:task-definition/web:3",
            "desiredCount": 2,
            "runningCount": 2,
            "launchType": "FARGATE",
            "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}],
            "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/web/abc", "containerName": "app", "containerPort": 8080}],
            "healthCheckGracePeriodSeconds": 30,
            "futureSetting": {"enabled": true, "defaulted": 5},
            "deployments": [],
            "events": [],
            "tags": [{"key": "managed-by", "value": "ecskit"}, {"key": "team", "value": "a"}]
        })
    }

    #[test]
    fn the_same_service_needs_nothing() {
        assert_eq!(plan(&file(), &live()), Plan::default());
    }

    #[test]
    fn one_changed_field_is_one_update_and_create_only_fields_are_drift() {
        let mut f = file();
        f["healthCheckGracePeriodSeconds"] = json!(60);
        f["launchType"] = json!("EC2");
        let p = plan(&f, &live());
        assert_eq!(
            p.update,
            json!({"healthCheckGracePeriodSeconds": 60})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(p.needs_recreate, ["launchType: \"FARGATE\" -> \"EC2\""]);
    }

    #[test]
    fn unknown_fields_pass_through_into_the_update() {
        let mut f = file();
        f["futureSetting"] = json!({"enabled": false});
        let p = plan(&f, &live());
        assert_eq!(
            p.update.get("futureSetting"),
            Some(&json!({"enabled": false}))
        );
    }

    #[test]
    fn known_fields_are_checked_naming_the_field() {
        let bad = json!({"serviceName": "a b", "desiredCount": -1, "launchType": "LAMBDA",
                         "loadBalancers": [{"containerName": "app"}], "cluster": "x"});
        let problems = check(&bad);
        assert_eq!(
            problems,
            [
                "serviceName: 'a b' must be 1 to 255 letters, digits, '-' and '_'",
                "desiredCount: -1 is not a count from 0 to 10000",
                "launchType: \"LAMBDA\" is not FARGATE, EC2, EXTERNAL or MANAGED_INSTANCES",
                "loadBalancers[0].containerPort: missing",
                "loadBalancers[0]: give targetGroupArn (or loadBalancerName for a Classic Load Balancer)",
                "cluster: leave it out of the service file; service-run sets it (--cluster, its own client token)",
            ]
        );
        assert!(check(&file()).is_empty());
    }

    #[test]
    fn a_live_service_is_written_out_in_the_create_form() {
        let (doc, dropped) = from_described(&live());
        assert!(dropped.is_empty());
        assert_eq!(doc.get("serviceArn"), None);
        assert_eq!(doc.get("runningCount"), None);
        assert_eq!(doc["tags"], json!([{"key": "team", "value": "a"}]));
        assert_eq!(
            doc["futureSetting"],
            json!({"enabled": true, "defaulted": 5})
        );
        // Written out and read back, it is the same service.
        assert_eq!(plan(&doc, &live()), Plan::default());
        // ECS's service-linked role is not carried as `role` (CreateService refuses it for a
        // service without a Classic Load Balancer); a role of the user's is, and compares
        // equal to the `roleArn` it came from.
        let mut linked = live();
        linked["roleArn"] =
            json!("arn:aws:iam::1:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS");
        linked["platformFamily"] = json!("Linux");
        let (doc, _) = from_described(&linked);
        assert_eq!((doc.get("role"), doc.get("platformFamily")), (None, None));
        let mut clb = live();
        clb["roleArn"] = json!("arn:aws:iam::1:role/ecsServiceRole");
        let (doc, _) = from_described(&clb);
        assert_eq!(doc["role"], json!("arn:aws:iam::1:role/ecsServiceRole"));
        assert_eq!(plan(&doc, &clb), Plan::default());
        let mut by_name = doc.clone();
        by_name["role"] = json!("ecsServiceRole");
        assert_eq!(plan(&by_name, &clb), Plan::default());
        assert!(is_updatable("loadBalancers") && !is_updatable("launchType"));
    }
}
