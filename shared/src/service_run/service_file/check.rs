//! The service file's check before any call: every field this tool knows gets the check its
//! flag gets (names, ids, ARNs, the EC2 and DAEMON rules), and a template that was not rendered
//! is refused naming the field. Unknown fields pass (a newer API may know them). Every problem
//! starts with the field's JSON path.
//!
//! [`normalize`] runs first: what the service files people write hold that is clear in meaning
//! but not taken by the API as written (DescribeServices' state fields, an empty `launchType`
//! beside a strategy, `null`, generate-cli-skeleton's empty strings) is dropped, and each drop
//! is told.

use serde_json::{Map, Value};

use crate::taskdef_register::document::{index, join};

/// Fields DescribeServices reports that are state, not settings.
pub(super) const READ_ONLY: &[&str] = &[
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

/// Drops what the file says that means "not set" or "this is state", and says what it dropped.
/// Decisions (docs/service-run.md): DescribeServices' state fields (ecspresso's files carry
/// them) are dropped; `null` anywhere is "not set" (as Go's SDK reads it); an empty string in
/// `launchType`, `role` or `platformVersion` is "not set" (generate-cli-skeleton's leftovers,
/// ecspresso's `"launchType": ""` beside a strategy); `clientToken` is dropped because
/// service-run makes its own per request (a retried create is then the same request, and a
/// token is never reported back to compare with).
pub fn normalize(doc: &mut Map<String, Value>) -> Vec<String> {
    let mut notes = Vec::new();
    let state: Vec<String> = doc
        .keys()
        .filter(|k| READ_ONLY.contains(&k.as_str()))
        .cloned()
        .collect();
    if !state.is_empty() {
        for k in &state {
            doc.remove(k);
        }
        notes.push(format!(
            "{}: left out: DescribeServices reports them as state, CreateService does not take them",
            state.join(", ")
        ));
    }
    let mut nulls = Vec::new();
    drop_nulls(doc, "", &mut nulls);
    if !nulls.is_empty() {
        notes.push(format!("{}: null, left out (not set)", nulls.join(", ")));
    }
    for key in ["launchType", "role", "platformVersion"] {
        if doc.get(key).and_then(Value::as_str) == Some("") {
            doc.remove(key);
            notes.push(format!("{key}: empty, left out (not set)"));
        }
    }
    if doc.remove("clientToken").is_some() {
        notes.push(
            "clientToken: left out: service-run sends its own, derived from the request".into(),
        );
    }
    notes
}

fn drop_nulls(map: &mut Map<String, Value>, path: &str, out: &mut Vec<String>) {
    map.retain(|k, v| {
        if v.is_null() {
            out.push(join(path, k));
        }
        !v.is_null()
    });
    for (k, v) in map.iter_mut() {
        match v {
            Value::Object(inner) => drop_nulls(inner, &join(path, k), out),
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if let Value::Object(inner) = item {
                        drop_nulls(inner, &index(&join(path, k), i), out);
                    }
                }
            }
            _ => {}
        }
    }
}

// Shared with capacity-create's flags and the stack file's `[capacity]`: written once, in the
// contract crate.
pub use ecskit_contract::validate::{ami_id, security_group_id, subnet_id};

/// Whether a field holds an ARN: its name says so, or its value starts like one.
fn arn_field(key: &str, value: &str) -> bool {
    key.ends_with("Arn") || key.ends_with("ListenerRule") || value.starts_with("arn:")
}

/// Every string that is an ARN has an ARN's shape: no space, a 12-digit account (a bare
/// `ACCOUNT_ID` left in by a sed-style template is refused here, by the check taskdef-register
/// uses for its role ARNs).
fn arns(v: &Value, key: &str, path: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) if arn_field(key, s) => {
            let shape = if s.trim() != s || s.contains(char::is_whitespace) {
                Err(format!("'{s}' has a space in it"))
            } else {
                crate::validate::arn(s, None, None)
            };
            if let Err(e) = shape {
                out.push(format!("{path}: {e}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                arns(item, key, &index(path, i), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                arns(item, k, &join(path, k), out);
            }
        }
        _ => {}
    }
}

/// One of `allowed`, or a problem naming the field.
fn one_of(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    allowed: &[&str],
    out: &mut Vec<String>,
) {
    if let Some(v) = obj.get(key)
        && !v.as_str().is_some_and(|s| allowed.contains(&s))
    {
        out.push(format!(
            "{}: {v} is not one of {}",
            join(path, key),
            allowed.join(", ")
        ));
    }
}

/// All the problems of a (normalized) service document; empty when it may be sent.
pub fn check(doc: &Value) -> Vec<String> {
    let Some(obj) = doc.as_object() else {
        return vec!["the service file must hold one JSON object (the CreateService form)".into()];
    };
    // A template is refused for its placeholders alone: the rest follows from them.
    let placeholders = crate::taskdef_register::substitute::unrendered(doc);
    if !placeholders.is_empty() {
        return placeholders;
    }
    let mut problems = Vec::new();
    // ecskit's own tags are ecskit's to write: a file that sets the last-applied digest could
    // make a deploy take a field DescribeServices never returns as already applied.
    for (i, tag) in obj
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(key @ super::LAST_APPLIED) = tag.get("key").and_then(Value::as_str) {
            problems.push(format!(
                "tags[{i}].key: {key} is ecskit's own tag, which it writes itself: remove it from the file"
            ));
        }
    }
    for key in ["serviceName", "cluster"] {
        match obj.get(key) {
            Some(Value::String(n)) if key == "cluster" && n.starts_with("arn:") => {
                if let Err(e) = crate::validate::arn(n, Some("ecs"), Some("cluster/")) {
                    problems.push(format!("{key}: {e}"));
                }
            }
            Some(Value::String(n)) => {
                if let Err(e) = ecskit_contract::validate::ecs_name(n, 255) {
                    problems.push(format!("{key}: {e}"));
                }
            }
            Some(_) => problems.push(format!("{key}: must be a string")),
            None => {}
        }
    }
    match obj.get("taskDefinition") {
        Some(Value::String(td)) => {
            if let Err(e) = super::super::taskdef::check_task_definition_ref(td) {
                problems.push(format!("taskDefinition: {e}"));
            }
        }
        Some(_) => problems.push("taskDefinition: must be a string".into()),
        None => {}
    }
    if let Some(v) = obj.get("desiredCount")
        && v.as_u64().is_none_or(|n| n > 10_000)
    {
        problems.push(format!("desiredCount: {v} is not a count from 0 to 10000"));
    }
    one_of(
        obj,
        "schedulingStrategy",
        "",
        &["REPLICA", "DAEMON"],
        &mut problems,
    );
    let daemon = obj.get("schedulingStrategy").and_then(Value::as_str) == Some("DAEMON");
    if daemon && obj.contains_key("desiredCount") {
        problems.push(
            "desiredCount: a DAEMON service runs one task on each instance: leave desiredCount out"
                .into(),
        );
    }
    one_of(
        obj,
        "launchType",
        "",
        &["FARGATE", "EC2", "EXTERNAL", "MANAGED_INSTANCES"],
        &mut problems,
    );
    if obj.contains_key("launchType") && obj.contains_key("capacityProviderStrategy") {
        problems.push(
            "launchType and capacityProviderStrategy: ECS takes one or the other, not both".into(),
        );
    }
    let doc_map = obj.clone();
    let fargate = super::super::from_file::fargate(&doc_map);
    if daemon && fargate {
        problems.push(
            "schedulingStrategy: DAEMON services run on EC2 only, and this one would run on Fargate (no launchType, so the cluster's default FARGATE strategy): add \"launchType\": \"EC2\""
                .into(),
        );
    }
    if let Some(list) = obj.get("capacityProviderStrategy") {
        match list.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = index("capacityProviderStrategy", i);
                    if !item.get("capacityProvider").is_some_and(Value::is_string) {
                        problems.push(format!("{p}.capacityProvider: missing"));
                    }
                    for (key, max) in [("weight", 1000), ("base", 100_000)] {
                        if let Some(v) = item.get(key)
                            && v.as_u64().is_none_or(|n| n > max)
                        {
                            problems.push(format!("{p}.{key}: {v} is not from 0 to {max}"));
                        }
                    }
                }
            }
            None => problems.push("capacityProviderStrategy: must be a list".into()),
        }
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
    network(obj, &mut problems);
    if let Some(Value::Object(dc)) = obj.get("deploymentController") {
        one_of(
            dc,
            "type",
            "deploymentController",
            &["ECS", "CODE_DEPLOY", "EXTERNAL"],
            &mut problems,
        );
    }
    if let Some(Value::Object(alarms)) = obj
        .get("deploymentConfiguration")
        .and_then(|d| d.get("alarms"))
    {
        let path = "deploymentConfiguration.alarms";
        for key in alarms.keys() {
            if key != "alarmNames" && key.eq_ignore_ascii_case("alarmNames") {
                problems.push(format!(
                    "{path}.{key}: ECS spells it alarmNames (the API's keys are case-sensitive)"
                ));
            }
        }
        if !alarms.get("alarmNames").is_some_and(Value::is_array) {
            problems.push(format!(
                "{path}.alarmNames: missing: ECS requires the list (write [] when alarms are off)"
            ));
        }
    }
    if let Some(tags) = obj.get("tags") {
        let ok = tags.as_array().is_some_and(|l| {
            l.iter().all(|t| {
                t.get("key").is_some_and(Value::is_string)
                    && t.get("value").is_none_or(Value::is_string)
            })
        });
        if !ok {
            problems.push("tags: must be a list of {\"key\": ..., \"value\": ...}".into());
        }
    }
    arns(doc, "", "", &mut problems);
    problems
}

/// `networkConfiguration.awsvpcConfiguration`: ids of the right shape, and no public IP for
/// EC2 tasks (as `--assign-public-ip` with `--launch-type EC2` is refused).
fn network(obj: &Map<String, Value>, problems: &mut Vec<String>) {
    let Some(vpc) = obj
        .get("networkConfiguration")
        .and_then(|n| n.get("awsvpcConfiguration"))
        .and_then(Value::as_object)
    else {
        return;
    };
    let path = "networkConfiguration.awsvpcConfiguration";
    for (key, shape) in [
        ("subnets", subnet_id as fn(&str) -> Result<(), String>),
        ("securityGroups", security_group_id),
    ] {
        let Some(list) = vpc.get(key) else { continue };
        let Some(items) = list.as_array() else {
            problems.push(format!("{path}.{key}: must be a list"));
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let shaped = item
                .as_str()
                .ok_or_else(|| format!("{item} is not a string"))
                .and_then(shape);
            if let Err(e) = shaped {
                problems.push(format!("{}: {e}", index(&join(path, key), i)));
            }
        }
    }
    one_of(
        vpc,
        "assignPublicIp",
        path,
        &["ENABLED", "DISABLED"],
        problems,
    );
    if obj.get("launchType").and_then(Value::as_str) == Some("EC2")
        && vpc.get("assignPublicIp").and_then(Value::as_str) == Some("ENABLED")
    {
        problems.push(format!(
            "{path}.assignPublicIp: ENABLED with launchType EC2: ECS gives EC2 tasks in awsvpc mode no public IP; write DISABLED or leave it out"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_last_applied_tag_is_ecskits_own() {
        let doc = serde_json::json!({"serviceName": "web", "tags": [
            {"key": "team", "value": "a"},
            {"key": super::super::LAST_APPLIED, "value": "0000"}
        ]});
        let problems = check(&doc);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("tags[1].key: ecskit:last-applied is ecskit's own tag"));
    }

    #[test]
    fn ids_have_their_shape() {
        assert_eq!(subnet_id("subnet-0123abcd"), Ok(()));
        assert_eq!(subnet_id("subnet-071571108f134ca42"), Ok(()));
        assert_eq!(
            subnet_id("subnet-65abf80c "),
            Err("'subnet-65abf80c ' has a space at its start or end".into())
        );
        assert!(subnet_id("subnet-1").is_err());
        assert!(subnet_id("").is_err());
        assert!(security_group_id("sg-orchestrator-service").is_err());
        assert_eq!(security_group_id("sg-06e5734a58bf6fec5"), Ok(()));
    }

    #[test]
    fn the_rules_of_the_flags_hold_for_the_files_fields() {
        let doc = json!({"launchType": "EC2", "schedulingStrategy": "DAEMON", "desiredCount": 1,
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0123abcd"],
                "securityGroups": ["sg-0123abcd"], "assignPublicIp": "ENABLED"}},
            "deploymentController": {"type": "BLUE"},
            "deploymentConfiguration": {"alarms": {"alarmnames": [], "enable": false}},
            "role": "arn:aws:iam::AWS_ACCOUNT_ID:role/x"});
        assert_eq!(
            check(&doc),
            [
                "desiredCount: a DAEMON service runs one task on each instance: leave desiredCount out",
                "networkConfiguration.awsvpcConfiguration.assignPublicIp: ENABLED with launchType EC2: ECS gives EC2 tasks in awsvpc mode no public IP; write DISABLED or leave it out",
                "deploymentController.type: \"BLUE\" is not one of ECS, CODE_DEPLOY, EXTERNAL",
                "deploymentConfiguration.alarms.alarmnames: ECS spells it alarmNames (the API's keys are case-sensitive)",
                "deploymentConfiguration.alarms.alarmNames: missing: ECS requires the list (write [] when alarms are off)",
                "role: 'arn:aws:iam::AWS_ACCOUNT_ID:role/x' has 'AWS_ACCOUNT_ID' where a 12-digit account id belongs",
            ]
        );
        let daemon_on_fargate = json!({"schedulingStrategy": "DAEMON"});
        assert_eq!(check(&daemon_on_fargate).len(), 1);
    }

    #[test]
    fn a_template_is_refused_for_its_placeholders() {
        let doc = json!({"networkConfiguration": {"awsvpcConfiguration": {
            "subnets": ["<SUBNET_ID_1>"]}}, "desiredCount": -1});
        assert_eq!(
            check(&doc),
            [
                "networkConfiguration.awsvpcConfiguration.subnets[0]: '<SUBNET_ID_1>' holds the placeholder <SUBNET_ID_1>: render the template (or put in the real value) first"
            ]
        );
    }

    #[test]
    fn what_means_not_set_is_left_out_and_told() {
        let mut doc =
            json!({"launchType": "", "capacityProviderStrategy": [{"capacityProvider": "FARGATE"}],
            "pendingCount": 0, "platformFamily": "Linux", "clientToken": "t", "role": "",
            "networkConfiguration": {"awsvpcConfiguration": {"securityGroups": null}}})
            .as_object()
            .unwrap()
            .clone();
        let notes = normalize(&mut doc);
        assert_eq!(
            notes,
            [
                "pendingCount, platformFamily: left out: DescribeServices reports them as state, CreateService does not take them",
                "networkConfiguration.awsvpcConfiguration.securityGroups: null, left out (not set)",
                "launchType: empty, left out (not set)",
                "role: empty, left out (not set)",
                "clientToken: left out: service-run sends its own, derived from the request",
            ]
        );
        assert_eq!(
            Value::Object(doc),
            json!({"capacityProviderStrategy": [{"capacityProvider": "FARGATE"}],
                   "networkConfiguration": {"awsvpcConfiguration": {}}})
        );
    }
}
