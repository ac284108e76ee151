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

mod check;
use check::READ_ONLY;
pub use check::{ami_id, check, normalize, security_group_id, subnet_id};

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

/// Fields that are the request's identity, not a setting to compare: `cluster` (which cluster
/// the request goes to) and `tags` (compared on their own, applied with TagResource).
const MANAGED: &[&str] = &["cluster", "tags"];

/// The service tag that remembers the document service-run last applied (a digest, as
/// `kubectl apply` keeps its last-applied configuration): what DescribeServices never returns
/// (a field newer than the SDK, a write-only one, one an emulator drops) is judged by it.
pub const LAST_APPLIED: &str = "ecskit:last-applied";

/// The digest of the settings of a document (its identity and tags left out), independent of
/// the order of its keys.
pub fn digest(doc: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut settings = doc.clone();
    if let Some(m) = settings.as_object_mut() {
        for key in MANAGED {
            m.remove(*key);
        }
    }
    super::retry::client_token(&[&sorted(&settings).to_string()])
}

/// The task definition as its family and revision, so an ARN and `family:N` compare equal.
fn task_definition_key(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    Some(s.rsplit('/').next().unwrap_or(s).to_string())
}

/// Whether the file's value of `key` means the same as the service's. `remembered`: the
/// service carries this document's digest, so what the answer leaves out was applied.
fn same(key: &str, wanted: &Value, live: Option<&Value>, remembered: bool) -> bool {
    let Some(live) = live else {
        // Absent from the description: the same when it was applied as it is now, or when the
        // file asks for nothing.
        return remembered
            || matches!(wanted, Value::Null)
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
    contains(wanted, live, remembered)
}

/// Whether everything the file says is in the live value (fields the file leaves out keep the
/// service's value, which may hold defaults ECS filled in; with `remembered`, fields the answer
/// leaves out were applied as the file says).
fn contains(wanted: &Value, live: &Value, remembered: bool) -> bool {
    match (wanted, live) {
        (Value::Object(w), Value::Object(l)) => w.iter().all(|(k, v)| match l.get(k) {
            Some(lv) => contains(v, lv, remembered),
            None => remembered,
        }),
        (Value::Array(w), Value::Array(l)) => {
            w.len() == l.len()
                && w.iter()
                    .all(|wi| l.iter().any(|li| contains(wi, li, remembered)))
        }
        // 10 and 10.0 are the same percent: a file's integer against ECS's float is no change.
        (Value::Number(w), Value::Number(l)) => match (w.as_i64(), l.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => w == l || w.as_f64() == l.as_f64(),
        },
        (w, l) => w == l,
    }
}

/// A tag list's `key -> value`.
fn tag_pairs(tags: Option<&Value>) -> Vec<(String, String)> {
    tags.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let key = t.get("key")?.as_str()?.to_string();
            let value = t.get("value").and_then(Value::as_str).unwrap_or_default();
            Some((key, value.to_string()))
        })
        .collect()
}

/// What deploying the file onto a live service takes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The fields of an UpdateService body that differ (empty: nothing to update).
    pub update: Map<String, Value>,
    /// Fields that differ but only a new service can change, as `field: live -> wanted`.
    pub needs_recreate: Vec<String>,
    /// The file's tags the service lacks or holds with another value (TagResource; tags the
    /// file does not name are left alone: others may have put them there).
    pub tags: Vec<(String, String)>,
    /// The digest to remember on the service ([`LAST_APPLIED`]), when anything is applied.
    pub remember: Option<String>,
}

/// Compares the file with the service as DescribeServices reports it (its raw JSON object, so
/// fields the SDK does not know are compared too).
pub fn plan(doc: &Value, live: &Value) -> Plan {
    let mut plan = Plan::default();
    let Some(obj) = doc.as_object() else {
        return plan;
    };
    let live_tags = tag_pairs(live.get("tags"));
    let applied = digest(doc);
    let remembered = live_tags
        .iter()
        .any(|(k, v)| k == LAST_APPLIED && *v == applied);
    for (key, wanted) in obj {
        if MANAGED.contains(&key.as_str()) {
            continue;
        }
        // DescribeServices reports CreateService's `role` as `roleArn`.
        let live_value = match key.as_str() {
            "role" => live.get("roleArn"),
            _ => live.get(key),
        };
        if same(key, wanted, live_value, remembered) {
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
    plan.tags = tag_pairs(obj.get("tags"))
        .into_iter()
        .filter(|pair| !live_tags.contains(pair))
        .collect();
    if !plan.update.is_empty() || !plan.tags.is_empty() {
        plan.remember = Some(applied);
    }
    plan
}

/// The value to send for `key` in an UpdateService: UpdateService replaces an object such as
/// `networkConfiguration` whole, so the file's object is laid over the service's, and what the
/// file leaves out keeps the service's value instead of being reset to ECS's default.
pub fn update_value(wanted: &Value, live: Option<&Value>) -> Value {
    match (wanted, live) {
        (Value::Object(w), Some(Value::Object(l))) => {
            let mut out = l.clone();
            for (k, v) in w {
                let merged = update_value(v, l.get(k));
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (w, _) => w.clone(),
    }
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
            "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web/abc", "containerName": "app", "containerPort": 8080}],
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
            "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/web/abc", "containerName": "app", "containerPort": 8080}],
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
    fn a_whole_number_and_the_same_float_are_no_change() {
        let mut f = file();
        f["deploymentConfiguration"] = json!({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10, "canaryBakeTimeInMinutes": 5}});
        let mut l = live();
        l["deploymentConfiguration"] = json!({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5}});
        assert_eq!(plan(&f, &l), Plan::default());
        f["deploymentConfiguration"]["canaryConfiguration"]["canaryPercent"] = json!(10.5);
        assert!(plan(&f, &l).update.contains_key("deploymentConfiguration"));
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
                         "loadBalancers": [{"containerName": "app"}], "cluster": "x y"});
        let problems = check(&bad);
        assert_eq!(
            problems,
            [
                "serviceName: 'a b' must be 1 to 255 letters, digits, '-' and '_'",
                "cluster: 'x y' must be 1 to 255 letters, digits, '-' and '_'",
                "desiredCount: -1 is not a count from 0 to 10000",
                "launchType: \"LAMBDA\" is not one of FARGATE, EC2, EXTERNAL, MANAGED_INSTANCES",
                "loadBalancers[0].containerPort: missing",
                "loadBalancers[0]: give targetGroupArn (or loadBalancerName for a Classic Load Balancer)",
            ]
        );
        assert!(check(&file()).is_empty());
    }

    #[test]
    fn what_the_answer_leaves_out_is_judged_by_the_remembered_digest() {
        let mut f = file();
        f["writeOnly"] = json!("x");
        f["tags"] = json!([{"key": "team", "value": "a"}]);
        // Not remembered: the field the answer lacks is sent.
        let p = plan(&f, &live());
        assert_eq!(Value::Object(p.update), json!({"writeOnly": "x"}));
        assert_eq!(p.remember, Some(digest(&f)));
        // Remembered (the digest of this very document is on the service): nothing to do.
        let mut applied = live();
        applied["tags"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": LAST_APPLIED, "value": digest(&f)}));
        assert_eq!(plan(&f, &applied), Plan::default());
        // A changed document is not remembered, even where the answer shows nothing.
        f["writeOnly"] = json!("y");
        assert_eq!(
            Value::Object(plan(&f, &applied).update),
            json!({"writeOnly": "y"})
        );
        // The digest is of the settings: key order and tags do not count.
        let reordered: Value =
            serde_json::from_str(r#"{"writeOnly": "y", "serviceName": "web"}"#).unwrap();
        let ordered = json!({"serviceName": "web", "writeOnly": "y", "tags": [{"key": "a"}]});
        assert_eq!(digest(&reordered), digest(&ordered));
    }

    #[test]
    fn the_files_tags_the_service_lacks_are_applied() {
        let mut f = file();
        f["tags"] = json!([{"key": "team", "value": "a"}, {"key": "env", "value": "prod"}]);
        let p = plan(&f, &live());
        assert!(p.update.is_empty());
        assert_eq!(p.tags, [("env".to_string(), "prod".to_string())]);
        assert!(p.remember.is_some());
    }

    #[test]
    fn an_update_keeps_what_the_file_leaves_out_of_an_object() {
        let live = json!({"awsvpcConfiguration": {"subnets": ["subnet-0a"], "securityGroups": ["sg-0a"], "assignPublicIp": "ENABLED"}});
        let wanted = json!({"awsvpcConfiguration": {"subnets": ["subnet-0b"]}});
        assert_eq!(
            update_value(&wanted, Some(&live)),
            json!({"awsvpcConfiguration": {"subnets": ["subnet-0b"], "securityGroups": ["sg-0a"], "assignPublicIp": "ENABLED"}})
        );
        assert_eq!(update_value(&json!(3), Some(&json!(2))), json!(3));
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
