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
    let (task_definition, plaintext) = for_register(task_definition(deps, &td_arn).await?);
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
        .detail("not_carried", json!(not_carried))
        .detail("plaintext_secrets", json!(plaintext));
    Ok(report)
}

/// An environment variable whose name looks like a credential and whose live value is
/// plaintext: written as `${variable}`, filled in from the environment at deploy time.
#[derive(serde::Serialize, Debug, PartialEq)]
pub struct Plaintext {
    pub container: String,
    pub name: String,
    pub variable: String,
}

/// The live task definition as taskdef-register reads it back to the same document: every
/// literal `${` escaped (`$${`), so a deploy does not fill it from the deploying shell; and
/// each credential-looking plaintext environment value replaced by a `${VARIABLE}`
/// placeholder, so the value is neither printed nor written into a file meant to be
/// committed. The variable is the environment name when that is a shell name and every
/// container gives it one value, else `CONTAINER_NAME` in upper snake case.
pub fn for_register(mut doc: Value) -> (Value, Vec<Plaintext>) {
    escape_substitutions(&mut doc);
    let mut found: Vec<(usize, usize, String, String, String)> = Vec::new();
    let containers = doc
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (ci, c) in containers.iter().enumerate() {
        let container = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let env = c.get("environment").and_then(Value::as_array);
        for (ei, var) in env.into_iter().flatten().enumerate() {
            if let (Some(name), Some(value)) = (
                var.get("name").and_then(Value::as_str),
                var.get("value").and_then(Value::as_str),
            ) && !value.is_empty()
                && secret_like(name, value)
            {
                found.push((ci, ei, container.into(), name.into(), value.into()));
            }
        }
    }
    let shell_name = |n: &str| {
        n.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut out = Vec::new();
    for (ci, ei, container, name, value) in &found {
        let one_value = found.iter().filter(|f| &f.3 == name).all(|f| &f.4 == value);
        let variable = if shell_name(name)
            && one_value
            && !crate::taskdef_register::substitute::is_process_credential(name)
        {
            name.clone()
        } else {
            format!(
                "{}_{}",
                ecskit_contract::outputs::upper_snake(container),
                ecskit_contract::outputs::upper_snake(name)
            )
        };
        doc["containerDefinitions"][*ci]["environment"][*ei]["value"] =
            Value::String(format!("${{{variable}}}"));
        out.push(Plaintext {
            container: container.clone(),
            name: name.clone(),
            variable,
        });
    }
    (doc, out)
}

/// A value that may be a secret, kept out of what export prints and init writes: a name
/// taskdef-register calls credential-looking, or with KEY, PASS, PWD, CREDENTIAL, AUTH, DSN or
/// PRIVATE in it, or a URL with a password (`postgres://user:pw@host`). Wider than
/// taskdef-register's refusal on purpose: printing a value is worse than a placeholder too many.
fn secret_like(name: &str, value: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let url_password = value.split_once("://").is_some_and(|(_, rest)| {
        rest.split(['/', '?', '#'])
            .next()
            .and_then(|authority| authority.rsplit_once('@'))
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    });
    crate::taskdef_register::validate::looks_like_credential(name)
        || ["KEY", "PASS", "PWD", "CREDENTIAL", "AUTH", "DSN", "PRIVATE"]
            .iter()
            .any(|w| upper.contains(w))
        || url_password
}

/// Every `${` of every string as `$${`, taskdef-register's literal form.
fn escape_substitutions(v: &mut Value) {
    match v {
        Value::String(s) if s.contains("${") => *s = s.replace("${", "$${"),
        Value::Array(items) => items.iter_mut().for_each(escape_substitutions),
        Value::Object(map) => map.values_mut().for_each(escape_substitutions),
        _ => {}
    }
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

    /// What init writes reads back, through taskdef-register's substitution with the
    /// variables set to the live values, as exactly the live document; and holds no value.
    #[test]
    fn the_register_form_holds_no_secret_and_substitutes_back_to_the_live_document() {
        let live = json!({"family": "app", "containerDefinitions": [
            {"name": "app", "command": ["sh", "-c", "echo ${HOME} $${X} $"],
             "environment": [
                {"name": "DB_PASSWORD", "value": "hunter2"},
                {"name": "API_TOKEN", "value": "tok-app"},
                {"name": "MODE", "value": "prod"},
                {"name": "DATABASE_URL", "value": "postgres://app:pw-9@db:5432/app"},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "aws-key-live"},
                {"name": "EMPTY_SECRET", "value": ""}]},
            {"name": "log-router", "environment": [
                {"name": "DB_PASSWORD", "value": "hunter2"},
                {"name": "API_TOKEN", "value": "tok-router"}]}
        ]});
        let (doc, plaintext) = for_register(live.clone());
        let text = doc.to_string();
        for secret in ["hunter2", "tok-app", "tok-router", "pw-9", "aws-key-live"] {
            assert!(!text.contains(secret), "{secret} is in {text}");
        }
        let vars: Vec<(&str, &str, &str)> = plaintext
            .iter()
            .map(|p| (p.container.as_str(), p.name.as_str(), p.variable.as_str()))
            .collect();
        assert_eq!(
            vars,
            [
                ("app", "DB_PASSWORD", "DB_PASSWORD"),
                ("app", "API_TOKEN", "APP_API_TOKEN"),
                ("app", "DATABASE_URL", "DATABASE_URL"),
                // Never the deploying process's own credential's name.
                ("app", "AWS_SECRET_ACCESS_KEY", "APP_AWS_SECRET_ACCESS_KEY"),
                ("log-router", "DB_PASSWORD", "DB_PASSWORD"),
                ("log-router", "API_TOKEN", "LOG_ROUTER_API_TOKEN"),
            ]
        );
        let env = |name: &str| {
            match name {
                "DB_PASSWORD" => Some("hunter2"),
                "APP_API_TOKEN" => Some("tok-app"),
                "LOG_ROUTER_API_TOKEN" => Some("tok-router"),
                "DATABASE_URL" => Some("postgres://app:pw-9@db:5432/app"),
                "APP_AWS_SECRET_ACCESS_KEY" => Some("aws-key-live"),
                // The deploying shell's own: a literal `${HOME}` must not take it.
                "HOME" => Some("/root"),
                _ => None,
            }
            .map(str::to_string)
        };
        let mut back = doc;
        let problems = crate::taskdef_register::substitute::substitute(&mut back, &env);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(back, live);
    }
}
