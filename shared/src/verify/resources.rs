//! That what a task definition names exists and fits: the roles and their trust, the images
//! and their CPU architecture, the secrets, the env files and the log groups.
//!
//! Its size: about 450 lines of code, one section per kind of resource, then unit tests.

use serde_json::Value;

use super::Check;
use super::subject::TaskSubject;
use crate::aws::Ctx;
use crate::error::{AwsContext, sdk_code};

// --- roles ----------------------------------------------------------------------------------

/// The role name of a role ARN (`arn:aws:iam::1:role/path/name` → `name`).
pub fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// What is wrong with a trust policy for an ECS task role: ECS must be allowed to assume it,
/// and confused-deputy conditions, where present, must name this account.
pub fn trust_problems(doc: &Value, account: &str) -> Vec<String> {
    use crate::iam::policy::{assume_statements, strings};
    let Some(statements) = assume_statements(doc) else {
        return vec!["the trust policy has no Statement".into()];
    };
    let mut trusted = Vec::new();
    let mut problems = Vec::new();
    for st in statements {
        let services = strings(st.pointer("/Principal/Service"));
        if !services.iter().any(|s| s == "ecs-tasks.amazonaws.com") {
            trusted.extend(services);
            continue;
        }
        trusted.push("ecs-tasks.amazonaws.com".into());
        // Confused-deputy conditions: aws:SourceAccount must be this account, and an
        // aws:SourceArn must be an ARN in it.
        if let Some(Value::Object(ops)) = st.get("Condition") {
            for (_, keys) in ops {
                let Value::Object(keys) = keys else { continue };
                for (key, values) in keys {
                    let values = strings(Some(values));
                    match key.to_ascii_lowercase().as_str() {
                        "aws:sourceaccount" if !values.iter().any(|v| v == account) => {
                            problems.push(format!(
                                "its aws:SourceAccount condition names {} instead of this account {account}: ECS could not assume it",
                                values.join(", ")
                            ))
                        }
                        "aws:sourcearn"
                            if !values.iter().any(|v| v.split(':').nth(4) == Some(account)) =>
                        {
                            problems.push(format!(
                                "its aws:SourceArn condition names {} , not an ARN of this account {account}: ECS could not assume it",
                                values.join(", ")
                            ))
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    if !trusted.iter().any(|s| s == "ecs-tasks.amazonaws.com") {
        let who = if trusted.is_empty() {
            "no service".to_string()
        } else {
            trusted.join(", ")
        };
        problems.insert(
            0,
            format!(
                "its trust policy lets {who} assume it, not ecs-tasks.amazonaws.com: ECS cannot use it for a task"
            ),
        );
    }
    problems
}

/// The task role and execution role exist and trust ECS tasks.
pub async fn roles(ctx: &Ctx, task: &TaskSubject, account: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let iam = ctx.iam();
    for arn in [&task.task_role_arn, &task.execution_role_arn]
        .into_iter()
        .flatten()
    {
        let answer = iam.get_role().role_name(role_name(arn)).send().await;
        let role = match answer {
            Ok(out) => out.role,
            Err(e) if sdk_code(&e) == Some("NoSuchEntity") => {
                checks.push(Check::failure("role", arn, "does not exist"));
                continue;
            }
            Err(e) => {
                checks.push(Check::warning(
                    "role",
                    arn,
                    format!("could not be read: {}", crate::error::flatten(&e)),
                ));
                continue;
            }
        };
        let doc = role
            .as_ref()
            .and_then(|r| r.assume_role_policy_document())
            .map(crate::iam::policy::decode);
        match doc {
            Some(Ok(doc)) => {
                let problems = trust_problems(&doc, account);
                if problems.is_empty() {
                    checks.push(Check::ok(
                        "role",
                        arn,
                        "exists and trusts ecs-tasks.amazonaws.com",
                    ));
                }
                for p in problems {
                    checks.push(Check::failure("role", arn, p));
                }
            }
            _ => checks.push(Check::failure("role", arn, "has no readable trust policy")),
        }
    }
    checks
}

// --- images ---------------------------------------------------------------------------------

/// `HOST/REPO[:TAG|@DIGEST]` split into its registry host and the rest; `None` for an image of
/// Docker Hub (no host part).
pub fn registry_of(image: &str) -> Option<(&str, &str)> {
    let (host, rest) = image.split_once('/')?;
    (host.contains('.') || host.contains(':') || host == "localhost").then_some((host, rest))
}

/// ECS's CPU architecture in an image platform's words.
pub fn oci_arch(cpu: &str) -> &'static str {
    match cpu {
        "ARM64" => "arm64",
        _ => "amd64",
    }
}

/// Each ECR image exists in its registry, built for the task's CPU architecture. The checks,
/// and the first registry failure that left an image unchecked (DNS, a timeout, a 5xx, a rate
/// limit): that is not bad input, and [`super::verify`] turns it into exit 1 unless a check
/// failed anyway.
pub async fn images(ctx: &Ctx, task: &TaskSubject) -> (Vec<Check>, Option<crate::Error>) {
    use crate::docker::{Credentials, Engine, RemoteImage};
    let mut checks = Vec::new();
    let ecr_images: Vec<(&str, &str)> = task
        .containers
        .iter()
        .filter_map(|c| {
            let (host, _) = registry_of(&c.image)?;
            crate::ecr::is_ecr(host).then_some((c.image.as_str(), host))
        })
        .collect();
    for c in &task.containers {
        if ecr_images.iter().any(|(i, _)| *i == c.image) {
            continue;
        }
        match registry_of(&c.image) {
            Some((host, _)) if crate::ecr::looks_like_ecr(host) => checks.push(Check::warning(
                "image",
                &c.image,
                format!("{host} looks like ECR but is not one of ECR's hosts (ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]): no ECR credentials are sent to it, and its registry is not checked"),
            )),
            _ => checks.push(Check::ok(
                "image",
                &c.image,
                "not an ECR image: its registry is not checked",
            )),
        }
    }
    if ecr_images.is_empty() {
        return (checks, None);
    }
    // The registry answers through the engine, with the ECR token (as image-push pushes).
    let engine = match Engine::connect().await {
        Ok(e) => e,
        Err(e) => {
            for (image, _) in &ecr_images {
                checks.push(Check::warning("image", *image, format!("not checked: {e}")));
            }
            return (checks, None);
        }
    };
    #[allow(deprecated)]
    let token = ctx
        .ecr()
        .get_authorization_token()
        .send()
        .await
        .context("getting an ECR authorization token");
    // A refusal means the caller may not read images (not checked: a warning); throttling or
    // an outage is a failure of the check (exit 1 unless another check failed), not a warning.
    let token = match token {
        Ok(t) => Ok(t),
        Err(e) if e.is_aws(&["AccessDeniedException", "AccessDenied"]) => Err(None),
        Err(e) => Err(Some(e)),
    };
    let Some((user, password)) = token.as_ref().ok().and_then(|t| {
        let data = t.authorization_data().first()?.clone();
        crate::image_push::reference::decode_token(data.authorization_token()?).ok()
    }) else {
        let failed = token.err().flatten();
        for (image, _) in &ecr_images {
            checks.push(Check::warning(
                "image",
                *image,
                match &failed {
                    Some(e) => format!("not checked: {e}"),
                    None => "not checked: no ECR authorization token (the caller needs ecr:GetAuthorizationToken)".into(),
                },
            ));
        }
        return (checks, failed);
    };
    let want = oci_arch(&task.cpu_architecture);
    let mut outage = None;
    for (image, host) in ecr_images {
        let creds = Credentials {
            username: user.clone(),
            password: password.clone(),
            server: host.to_string(),
        };
        match engine.remote_image(image, &creds).await {
            Ok(RemoteImage::Missing(why)) => checks.push(Check::failure(
                "image",
                image,
                format!("does not exist in the registry (no such tag or digest): {why}"),
            )),
            // The caller's credentials are not the ones ECS pulls with: the execution role may
            // pull from another account's repository that the CI principal may not read. Not
            // checked, then, rather than failed (the simulator asks the execution role's pull).
            Ok(RemoteImage::Refused(why)) => checks.push(Check::warning(
                "image",
                image,
                format!("not checked: the registry refused the caller's ECR credentials ({why}); ECS pulls with the execution role, whose ecr:BatchGetImage is checked below"),
            )),
            Ok(RemoteImage::Found(found)) => {
                let archs: Vec<String> = found
                    .platforms
                    .iter()
                    .filter_map(|p| p.architecture.clone())
                    .collect();
                if archs.is_empty() || archs.iter().any(|a| a == want) {
                    checks.push(Check::ok("image", image, format!("exists ({want})")))
                } else {
                    checks.push(Check::failure(
                        "image",
                        image,
                        format!(
                            "is built for {} only, but the task definition's runtimePlatform wants {} ({want})",
                            archs.join(", "),
                            task.cpu_architecture
                        ),
                    ))
                }
            }
            Err(e) => {
                checks.push(Check::warning("image", image, format!("not checked: {e}")));
                outage.get_or_insert(e);
            }
        }
    }
    (checks, outage)
}

// --- secrets and env files -------------------------------------------------------------------

/// A secret's `valueFrom`, as ECS reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// An SSM parameter (ARN or name).
    Parameter(String),
    /// A Secrets Manager secret (the secret's ARN), with the JSON key when one is named.
    Secret {
        arn: String,
        json_key: Option<String>,
    },
}

/// Parses `valueFrom`: `arn:aws:ssm:...:parameter/NAME`, a parameter name, or
/// `arn:aws:secretsmanager:...:secret:NAME-abc123[:json-key:version-stage:version-id]`.
pub fn secret_ref(value_from: &str) -> SecretRef {
    let parts: Vec<&str> = value_from.split(':').collect();
    if parts.len() >= 7 && parts[2] == "secretsmanager" {
        let arn = parts[..7].join(":");
        let json_key = parts
            .get(7)
            .filter(|k| !k.is_empty())
            .map(|k| k.to_string());
        return SecretRef::Secret { arn, json_key };
    }
    SecretRef::Parameter(value_from.to_string())
}

/// Each secret exists (and, for the `:json-key::` form, holds that key). Values are read only
/// to look for the key, and never printed.
pub async fn secrets(ctx: &Ctx, task: &TaskSubject) -> Vec<Check> {
    let mut checks = Vec::new();
    for c in &task.containers {
        for (name, value_from) in &c.secrets {
            let label = format!("{} ({}/{name})", value_from, c.name);
            checks.push(match secret_ref(value_from) {
                SecretRef::Parameter(p) => {
                    let answer = ctx
                        .ssm()
                        .get_parameter()
                        .name(&p)
                        .with_decryption(false)
                        .send()
                        .await;
                    match answer {
                        Ok(_) => Check::ok("secret", label, "the SSM parameter exists"),
                        Err(e) if sdk_code(&e) == Some("ParameterNotFound") => {
                            Check::failure("secret", label, "no such SSM parameter")
                        }
                        Err(e) => Check::warning(
                            "secret",
                            label,
                            format!("could not be read: {}", crate::error::flatten(&e)),
                        ),
                    }
                }
                SecretRef::Secret { arn, json_key } => {
                    let answer = ctx
                        .secrets_manager()
                        .get_secret_value()
                        .secret_id(&arn)
                        .send()
                        .await;
                    match answer {
                        Ok(out) => match json_key {
                            None => Check::ok("secret", label, "the secret exists"),
                            Some(key) => {
                                let holds = out
                                    .secret_string()
                                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
                                    .is_some_and(|v| v.get(&key).is_some());
                                if holds {
                                    Check::ok(
                                        "secret",
                                        label,
                                        format!("the secret holds the key {key}"),
                                    )
                                } else {
                                    Check::failure(
                                        "secret",
                                        label,
                                        format!("the secret exists but holds no JSON key {key}"),
                                    )
                                }
                            }
                        },
                        Err(e) if sdk_code(&e) == Some("ResourceNotFoundException") => {
                            Check::failure("secret", label, "no such Secrets Manager secret")
                        }
                        Err(e) => Check::warning(
                            "secret",
                            label,
                            format!("could not be read: {}", crate::error::flatten(&e)),
                        ),
                    }
                }
            });
        }
    }
    checks
}

/// `arn:aws:s3:::BUCKET/KEY` as (bucket, key).
pub fn s3_object(arn: &str) -> Option<(&str, &str)> {
    arn.strip_prefix("arn:")?
        .splitn(5, ':')
        .nth(4)?
        .split_once('/')
}

/// Each `environmentFiles` object exists.
pub async fn env_files(ctx: &Ctx, task: &TaskSubject) -> Vec<Check> {
    let mut checks = Vec::new();
    for c in &task.containers {
        for arn in &c.env_files {
            let Some((bucket, key)) = s3_object(arn) else {
                checks.push(Check::failure(
                    "env file",
                    arn,
                    "is not an S3 object ARN (arn:aws:s3:::BUCKET/KEY)",
                ));
                continue;
            };
            let answer = ctx.s3().head_object().bucket(bucket).key(key).send().await;
            checks.push(match answer {
                Ok(_) => Check::ok("env file", arn, "exists"),
                Err(e)
                    if matches!(
                        sdk_code(&e),
                        Some("NotFound" | "NoSuchKey" | "NoSuchBucket")
                    ) || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
                {
                    Check::failure("env file", arn, "no such S3 object")
                }
                Err(e) => Check::warning(
                    "env file",
                    arn,
                    format!("could not be read: {}", crate::error::flatten(&e)),
                ),
            });
        }
    }
    checks
}

// --- log groups -------------------------------------------------------------------------------

/// Each awslogs group exists, or ECS is told to create it.
pub async fn log_groups(ctx: &Ctx, task: &TaskSubject) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for c in &task.containers {
        let Some(logs) = &c.awslogs else { continue };
        if !seen.insert(logs.group.clone()) {
            continue;
        }
        let answer = ctx
            .logs()
            .describe_log_groups()
            .log_group_name_prefix(&logs.group)
            .send()
            .await;
        checks.push(match answer {
            Ok(out)
                if out
                    .log_groups()
                    .iter()
                    .any(|g| g.log_group_name() == Some(logs.group.as_str())) =>
            {
                Check::ok("log group", &logs.group, "exists")
            }
            Ok(_) if logs.create_group => Check::ok(
                "log group",
                &logs.group,
                "does not exist yet; ECS creates it (awslogs-create-group is \"true\")",
            ),
            Ok(_) => Check::failure(
                "log group",
                &logs.group,
                "does not exist and awslogs-create-group is not \"true\": the task would fail to start; create the group or set the option",
            ),
            Err(e) => Check::warning(
                "log group",
                &logs.group,
                format!("could not be read: {}", crate::error::flatten(&e)),
            ),
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trust(principal: &str, condition: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": principal},
            "Action": "sts:AssumeRole", "Condition": condition}]})
    }

    #[test]
    fn ecs_tasks_must_be_trusted_and_conditions_name_this_account() {
        let acct = "123456789012";
        assert!(trust_problems(&trust("ecs-tasks.amazonaws.com", json!({})), acct).is_empty());
        let ok = json!({"StringEquals": {"aws:SourceAccount": acct},
                        "ArnLike": {"aws:SourceArn": format!("arn:aws:ecs:us-west-2:{acct}:*")}});
        assert!(trust_problems(&trust("ecs-tasks.amazonaws.com", ok), acct).is_empty());
        let ec2 = trust_problems(&trust("ec2.amazonaws.com", json!({})), acct);
        assert_eq!(ec2.len(), 1);
        assert!(
            ec2[0].contains("lets ec2.amazonaws.com assume it, not ecs-tasks"),
            "{ec2:?}"
        );
        let other = json!({"StringEquals": {"aws:SourceAccount": "999999999999"}});
        let p = trust_problems(&trust("ecs-tasks.amazonaws.com", other), acct);
        assert!(
            p[0].contains("names 999999999999 instead of this account"),
            "{p:?}"
        );
    }

    #[test]
    fn images_are_split_by_registry() {
        assert_eq!(
            registry_of("123456789012.dkr.ecr.us-west-2.amazonaws.com/web:v1"),
            Some(("123456789012.dkr.ecr.us-west-2.amazonaws.com", "web:v1"))
        );
        assert_eq!(registry_of("nginx:latest"), None);
        assert_eq!(registry_of("library/nginx"), None);
        assert_eq!(oci_arch("ARM64"), "arm64");
        assert_eq!(oci_arch("X86_64"), "amd64");
    }

    #[test]
    fn secret_references_in_every_form() {
        assert_eq!(
            secret_ref("arn:aws:ssm:us-west-2:123456789012:parameter/web/token"),
            SecretRef::Parameter("arn:aws:ssm:us-west-2:123456789012:parameter/web/token".into())
        );
        assert_eq!(
            secret_ref("arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf:password::"),
            SecretRef::Secret {
                arn: "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf".into(),
                json_key: Some("password".into())
            }
        );
        assert_eq!(
            secret_ref("arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf"),
            SecretRef::Secret {
                arn: "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf".into(),
                json_key: None
            }
        );
        assert_eq!(
            s3_object("arn:aws:s3:::cfg/web/app.env"),
            Some(("cfg", "web/app.env"))
        );
        assert_eq!(s3_object("s3://cfg/x"), None);
    }
}
