//! verify: the checks that catch, before any mutating call, what would otherwise fail a deploy
//! minutes later: a role ECS cannot assume, an image tag that does not exist or is built for
//! the wrong CPU, a secret or env file that is not there, a log group nobody creates, subnets
//! of two VPCs.
//!
//! Every check gives one line: ok, warning or failure, with the resource it looked at. A
//! failure is bad input (exit 2) and nothing has been changed. The checks read only (Get,
//! Describe, Head, Simulate), so `taskdef-register --verify`, `service-run --verify` and
//! `cargo xtask verify` may run them before every deploy; they are few and cheap.
//!
//! - [`subject`]: what is checked, read from a task definition (the JSON to register, or one
//!   ECS has) and the service's network settings;
//! - [`resources`]: roles and their trust, images and their architecture, secrets, env files,
//!   log groups;
//! - [`network`]: subnets, security groups, and a route to pull the image;
//! - [`permissions`]: what the roles may do, through `iam:SimulatePrincipalPolicy`;
//! - [`memo`]: the answers the steps of one deploy share, so that what several services
//!   share is checked once.

pub mod memo;
pub mod network;
pub mod permissions;
pub mod resources;
pub mod subject;

use serde_json::{Value, json};

use crate::aws::Ctx;
use crate::{Error, Report, Result};

pub use subject::{Network, TaskSubject};

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warning,
    Failure,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Failure => "failure",
        }
    }
}

/// One check's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub level: Level,
    /// What kind of thing: role, image, secret, env file, log group, network, permission.
    pub kind: &'static str,
    /// The resource looked at (an ARN, a URI, an id).
    pub resource: String,
    pub message: String,
}

impl Check {
    pub fn ok(kind: &'static str, resource: impl Into<String>, message: impl Into<String>) -> Self {
        Check::new(Level::Ok, kind, resource, message)
    }
    pub fn warning(
        kind: &'static str,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Check::new(Level::Warning, kind, resource, message)
    }
    pub fn failure(
        kind: &'static str,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Check::new(Level::Failure, kind, resource, message)
    }
    fn new(
        level: Level,
        kind: &'static str,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Check {
            level,
            kind,
            resource: resource.into(),
            message: message.into(),
        }
    }

    /// `failure  role arn:...:role/app-task: trusted by ec2.amazonaws.com, not ecs-tasks...`
    pub fn line(&self) -> String {
        format!(
            "{:<8} {} {}: {}",
            self.level.word(),
            self.kind,
            self.resource,
            self.message
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "level": self.level.word(),
            "kind": self.kind,
            "resource": self.resource,
            "message": self.message,
        })
    }
}

/// All checks of one run, in the order they were made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checks(pub Vec<Check>);

impl Checks {
    pub fn failures(&self) -> Vec<&Check> {
        self.0
            .iter()
            .filter(|c| c.level == Level::Failure)
            .collect()
    }

    /// Prints every line on stderr, then turns failures into exit 2: nothing has been changed.
    pub fn conclude(&self) -> Result<()> {
        self.log();
        let failures = self.failures();
        if failures.is_empty() {
            return Ok(());
        }
        Err(Error::inputs(
            failures
                .iter()
                .map(|c| format!("verify: {} {}: {}", c.kind, c.resource, c.message))
                .collect(),
        )
        .hint("fix what the failed checks name, or pass --no-verify to deploy anyway")
        .with_details(serde_json::json!({"checks": self.to_json()})))
    }

    /// Every line on stderr.
    fn log(&self) {
        for c in &self.0 {
            match c.level {
                Level::Failure => tracing::error!("{}", c.line()),
                Level::Warning => tracing::warn!("{}", c.line()),
                Level::Ok => tracing::info!("{}", c.line()),
            }
        }
    }

    /// The checks in a report: `checks` in json, one line each in text.
    pub fn add_to(&self, report: Report) -> Report {
        report.detail("checks", self.to_json())
    }

    fn to_json(&self) -> Value {
        Value::Array(self.0.iter().map(Check::to_json).collect())
    }
}

/// Every check of one task definition and, when given, the service's network. Each group of
/// checks is keyed by what it looks at (and the account and region), so that the steps of one
/// deploy ask a group once between them (see [`memo`]).
pub async fn verify(ctx: &Ctx, task: &TaskSubject, network: Option<&Network>) -> Result<Checks> {
    let account = ctx.account_id().await?;
    let memo = memo::Memo::from_env();
    let key = |group: &str, what: Value| json!({"group": group, "account": account, "region": ctx.region(), "what": what});
    let roles = [&task.task_role_arn, &task.execution_role_arn];
    let images: Vec<&str> = task.containers.iter().map(|c| c.image.as_str()).collect();
    let secrets: Vec<&str> = task
        .containers
        .iter()
        .flat_map(|c| c.secrets.iter().map(|(_, from)| from.as_str()))
        .collect();
    let env_files: Vec<&Vec<String>> = task.containers.iter().map(|c| &c.env_files).collect();
    let log_groups: Vec<String> = task
        .containers
        .iter()
        .map(|c| format!("{:?}", c.awslogs))
        .collect();
    let alone = |checks: Vec<Check>| (checks, None);

    let mut checks = Vec::new();
    let (found, _) = memo
        .checks(key("role", json!(roles)), || async {
            alone(resources::roles(ctx, task, &account).await)
        })
        .await;
    checks.extend(found);
    let arch = &task.cpu_architecture;
    let (found, registry_failure) = memo
        .checks(key("image", json!([images, arch])), || {
            resources::images(ctx, task)
        })
        .await;
    checks.extend(found);
    let (found, _) = memo
        .checks(key("secret", json!(secrets)), || async {
            alone(resources::secrets(ctx, task).await)
        })
        .await;
    checks.extend(found);
    let (found, _) = memo
        .checks(key("env file", json!(env_files)), || async {
            alone(resources::env_files(ctx, task).await)
        })
        .await;
    checks.extend(found);
    let (found, _) = memo
        .checks(key("log group", json!(log_groups)), || async {
            alone(resources::log_groups(ctx, task).await)
        })
        .await;
    checks.extend(found);
    let (found, unanswered) = permissions::check(ctx, task, &memo, &key).await;
    checks.extend(found);
    if let Some(net) = network {
        let (found, _) = memo
            .checks(key("network", json!(format!("{net:?}"))), || async {
                alone(network::check(ctx, net).await)
            })
            .await;
        checks.extend(found);
    }
    let checks = Checks(checks);
    // A registry or a simulator question that did not answer is exit 1 (run again later),
    // unless a check failed: that is bad input whatever they say, and stays exit 2.
    match registry_failure.or(unanswered) {
        Some(e) if checks.failures().is_empty() => {
            checks.log();
            Err(e)
        }
        _ => Ok(checks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_exit_2_naming_the_resource() {
        let checks = Checks(vec![
            Check::ok(
                "role",
                "arn:aws:iam::1:role/a",
                "trusts ecs-tasks.amazonaws.com",
            ),
            Check::failure("image", "repo:v9", "no such tag in the registry"),
        ]);
        let err = checks.conclude().unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "verify: image repo:v9: no such tag in the registry"
        );
        assert_eq!(
            checks.0[1].line(),
            "failure  image repo:v9: no such tag in the registry"
        );
        assert!(Checks(vec![checks.0[0].clone()]).conclude().is_ok());
    }
}
