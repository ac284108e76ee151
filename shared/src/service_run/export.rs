//! `--export`: a live service, set up by hand, written out so that ecskit can take it over
//! (`cargo xtask init` runs this and writes the files). Nothing is changed.
//!
//! What it reads: the service (DescribeServices, every field as JSON), its task definition
//! (DescribeTaskDefinition with tags, as JSON: read-only fields dropped, unknown fields kept),
//! and the task role's policies (inline and attached customer-managed), for the one S3 bucket
//! and prefix they name. What it could not carry over is listed, with why.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Args, Deps, service_file};
use crate::Report;
use crate::error::{AwsContext, Error, Result};
use crate::taskdef_register::document;

pub async fn export(deps: &Deps, args: &Args) -> Result<Report> {
    let cluster = &args.cluster;
    let name = args.service.clone().unwrap_or_default();
    let Some((_, live)) = service_file::describe_both(&deps.ecs, cluster, &name).await? else {
        return Err(Error::input(format!(
            "service {name} does not exist in cluster {cluster} (or is INACTIVE)"
        ))
        .hint("check --cluster, --service and --region"));
    };
    let (service, mut not_carried) = service_file::from_described(&live);
    let td_arn = live
        .get("taskDefinition")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let task_definition = task_definition(deps, &td_arn).await?;
    let role_name = |key: &str| {
        task_definition
            .get(key)
            .and_then(Value::as_str)
            .and_then(|arn| arn.rsplit('/').next())
            .map(str::to_string)
    };
    let task_role = role_name("taskRoleArn");
    let execution_role = role_name("executionRoleArn");
    let mut report = deps
        .ctx
        .report()
        .output(
            ecskit_contract::outputs::SERVICE_ARN,
            live.get("serviceArn").cloned().unwrap_or(Value::Null),
        )
        .output(
            ecskit_contract::outputs::TASK_DEFINITION_ARN,
            td_arn.clone(),
        );
    let mut config = Value::Null;
    match &task_role {
        Some(role) => match s3_locations(deps, role).await {
            Ok(found) => {
                let buckets: BTreeSet<&str> = found.iter().map(|(b, _)| b.as_str()).collect();
                if buckets.len() == 1 {
                    let prefixes: BTreeSet<&str> = found.iter().map(|(_, p)| p.as_str()).collect();
                    let prefix = (prefixes.len() == 1)
                        .then(|| prefixes.into_iter().next())
                        .flatten();
                    if prefix.is_none() {
                        not_carried.push(format!(
                            "the config prefix: the task role {role}'s policies name {} prefixes of its bucket, not one",
                            found.len()
                        ));
                    }
                    config = json!({"bucket": buckets.into_iter().next(), "prefix": prefix});
                } else {
                    not_carried.push(format!(
                        "the config bucket: the task role {role}'s policies name {} S3 buckets, not exactly one",
                        buckets.len()
                    ));
                }
            }
            Err(e) => not_carried.push(format!(
                "the config bucket: the task role {role}'s policies could not be read ({e})"
            )),
        },
        None => not_carried.push(
            "the task role: the task definition has none, so there is no config bucket to read from it"
                .into(),
        ),
    }
    report = report
        .detail("service", service)
        .detail("task_definition", task_definition)
        .detail("task_role_name", json!(task_role))
        .detail("execution_role_name", json!(execution_role))
        .detail("config", config)
        .detail("region", json!(deps.ctx.region()))
        .detail("not_carried", json!(not_carried));
    Ok(report)
}

/// The task definition in the register form: read-only fields dropped, unknown fields kept,
/// ecskit's own tag dropped (a deploy adds it).
async fn task_definition(deps: &Deps, arn: &str) -> Result<Value> {
    let raw = crate::aws::RawAnswer::default();
    deps.ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .context(format!("describing task definition {arn}"))?;
    let (mut doc, _) = document::unwrap_and_strip(raw.json())
        .map_err(|e| Error::aws(format!("describing task definition {arn}"), e))?;
    if let Some(Value::Array(tags)) = doc.get_mut("tags") {
        tags.retain(|t| t.get("key").and_then(Value::as_str) != Some(super::MANAGED_BY.0));
        if tags.is_empty() {
            doc.as_object_mut().map(|o| o.remove("tags"));
        }
    }
    Ok(doc)
}

/// The `(bucket, prefix)` of every S3 object resource (`arn:aws:s3:::B/P/*`) in the role's
/// inline and attached customer-managed policies.
async fn s3_locations(deps: &Deps, role: &str) -> Result<Vec<(String, String)>> {
    let iam = deps.ctx.iam();
    let mut docs = Vec::new();
    let inline = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .context(format!("listing the inline policies of role {role}"))?;
    for policy in inline.policy_names() {
        let out = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
            .context(format!("reading inline policy {policy} of role {role}"))?;
        docs.push(out.policy_document().to_string());
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .context(format!("listing the managed policies of role {role}"))?;
    for p in attached.attached_policies() {
        let Some(arn) = p.policy_arn().filter(|a| !a.contains(":iam::aws:policy/")) else {
            continue;
        };
        let policy = iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .context(format!("reading policy {arn}"))?;
        let Some(version) = policy.policy().and_then(|p| p.default_version_id()) else {
            continue;
        };
        let v = iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .context(format!("reading policy {arn}"))?;
        if let Some(doc) = v.policy_version().and_then(|v| v.document()) {
            docs.push(doc.to_string());
        }
    }
    let mut found = BTreeSet::new();
    for text in docs {
        let doc =
            crate::iam::policy::decode(&text).map_err(|e| Error::aws("reading a policy", e))?;
        found.extend(object_locations(&doc));
    }
    Ok(found.into_iter().collect())
}

/// The `(bucket, prefix)` pairs of a policy's S3 object resources.
fn object_locations(policy: &Value) -> Vec<(String, String)> {
    let statements = match policy.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    let mut found = Vec::new();
    for st in statements {
        let resources = match st.get("Resource") {
            Some(Value::Array(list)) => list.clone(),
            Some(one) => vec![one.clone()],
            None => Vec::new(),
        };
        for r in resources.iter().filter_map(Value::as_str) {
            let Some(path) = r.split(":s3:::").nth(1) else {
                continue;
            };
            if let Some((bucket, key)) = path.split_once('/') {
                let prefix = key.trim_end_matches('*').trim_matches('/');
                if !bucket.contains('*') && !prefix.is_empty() && !prefix.contains('*') {
                    found.push((bucket.to_string(), prefix.to_string()));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_resources_give_the_bucket_and_prefix() {
        let policy = json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::cfg/app/prod/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": ["arn:aws:s3:::cfg"]},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*/x/*"},
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}
        ]});
        assert_eq!(
            object_locations(&policy),
            [("cfg".to_string(), "app/prod".to_string())]
        );
    }
}
