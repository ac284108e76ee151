//! The task definition a run deploys: its reference checked (pure) and looked up in ECS, with
//! what the service, the watcher and the failure report need from it.

use aws_sdk_ecs::types::NetworkMode;

use super::Deps;
use super::retry::error_message;
use crate::error::{AwsContext, Error, Result};

/// A resolved task definition: what the service and the watcher need from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskDef {
    pub arn: String,
    pub family: String,
    pub revision: i32,
    pub awsvpc: bool,
    /// Names of the essential containers (ECS's default: essential unless said otherwise).
    pub essentials: Vec<String>,
    /// Where each container logs (awslogs), for the failure report.
    pub logs: std::collections::BTreeMap<String, Option<super::logs::AwsLogs>>,
    /// A dry run's stand-in for the revision taskdef-register's dry run said it would register:
    /// not in ECS yet, so what is known of it is its name only.
    pub pending: bool,
}

/// `arn:aws:ecs:...:task-definition/family:N`, `family` or `family:N`.
pub fn check_task_definition_ref(td: &str) -> std::result::Result<(), String> {
    let family_ok = |f: &str| {
        !f.is_empty()
            && f.len() <= 255
            && f.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if td.starts_with("arn:") {
        crate::validate::arn(td, Some("ecs"), Some("task-definition/"))?;
        let rest = td.rsplit('/').next().unwrap_or_default();
        return match rest.split_once(':') {
            Some((f, r)) if family_ok(f) && r.parse::<u32>().is_ok() => Ok(()),
            _ => Err(format!(
                "'{td}' does not end in task-definition/FAMILY:REVISION"
            )),
        };
    }
    let (family, revision) = match td.split_once(':') {
        Some((f, r)) => (f, Some(r)),
        None => (td, None),
    };
    if !family_ok(family) {
        return Err(format!(
            "'{td}' is not a task definition: use an ARN, `family` (letters, digits, '-', '_') or `family:revision`"
        ));
    }
    if let Some(r) = revision
        && r.parse::<u32>().map(|n| n == 0).unwrap_or(true)
    {
        return Err(format!(
            "'{td}' has '{r}' where a revision number (1, 2, ...) belongs"
        ));
    }
    Ok(())
}

/// Reads the task definition; an unknown or INACTIVE one is bad input (exit 2, nothing
/// changed).
pub async fn describe(deps: &Deps, td: &str) -> Result<aws_sdk_ecs::types::TaskDefinition> {
    let out = deps
        .ecs
        .describe_task_definition()
        .task_definition(td)
        .send()
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) if crate::error::sdk_is(&e, &["ClientException"]) => {
            return Err(Error::input(format!(
                "--task-definition '{td}' does not exist in this account and region ({})",
                error_message(&e)
            ))
            .hint("register it first (taskdef-register), or check the family, the revision and --region"));
        }
        Err(e) => return Err(e).context(format!("describing task definition {td}")),
    };
    let def = out.task_definition.ok_or_else(|| {
        Error::aws(
            format!("describing task definition {td}"),
            "no task definition in the answer",
        )
    })?;
    if def.status().map(|s| s.as_str()) == Some("INACTIVE") {
        return Err(Error::input(format!(
            "--task-definition '{td}' is INACTIVE (deregistered)"
        ))
        .hint("register a new revision or name an ACTIVE one"));
    }
    Ok(def)
}

/// Looks the task definition up; an unknown one is bad input (exit 2, nothing changed).
pub async fn resolve_task_definition(deps: &Deps, td: &str) -> Result<TaskDef> {
    let def = describe(deps, td).await?;
    let essentials = def
        .container_definitions()
        .iter()
        .filter(|c| c.essential().unwrap_or(true))
        .filter_map(|c| c.name().map(str::to_string))
        .collect();
    Ok(TaskDef {
        arn: def.task_definition_arn().unwrap_or(td).to_string(),
        family: def.family().unwrap_or_default().to_string(),
        revision: def.revision(),
        awsvpc: def.network_mode() == Some(&NetworkMode::Awsvpc),
        essentials,
        logs: super::logs::destinations(&def),
        pending: false,
    })
}

/// The task definition a run deploys. In a dry run, one that is not registered yet but is the
/// next revision of its family (`FAMILY:1` of a new family, `FAMILY:N+1` after `N`) is what a
/// dry run of taskdef-register before this one printed: the plan goes on with a stand-in
/// (announced on stderr) instead of failing the whole chain's dry run. Any other unknown
/// revision is still bad input, a typo caught as in a real run.
pub async fn resolve_planned(deps: &Deps, td: &str, awsvpc_guess: bool) -> Result<TaskDef> {
    let err = match resolve_task_definition(deps, td).await {
        Err(e) if deps.ctx.dry_run && e.exit_code() == ecskit_contract::exit::INPUT => e,
        other => return other,
    };
    let (family, Some(revision)) = family_revision(td) else {
        return Err(err);
    };
    let latest = match describe(deps, family).await {
        Ok(def) => def.revision(),
        Err(e) if e.exit_code() == ecskit_contract::exit::INPUT => 0,
        Err(e) => return Err(e),
    };
    if revision != latest + 1 {
        return Err(err);
    }
    deps.progress.println(format!(
        "task definition {family}:{revision} is not registered yet (the revision taskdef-register's dry run would register): the plan assumes {}",
        if awsvpc_guess { "networkMode awsvpc" } else { "its network mode is not awsvpc" }
    ));
    Ok(TaskDef {
        arn: td.to_string(),
        family: family.to_string(),
        revision,
        awsvpc: awsvpc_guess,
        pending: true,
        ..TaskDef::default()
    })
}

/// `family:N` of a task-definition ARN (or of `family:N` itself).
pub fn family_revision(td: &str) -> (&str, Option<i32>) {
    let tail = td.rsplit('/').next().unwrap_or(td);
    match tail.rsplit_once(':') {
        Some((family, rev)) => (family, rev.parse().ok()),
        None => (tail, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definition_refs() {
        for good in [
            "web",
            "web:3",
            "arn:aws:ecs:us-west-2:123456789012:task-definition/web:3",
        ] {
            assert_eq!(check_task_definition_ref(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "web:0",
            "web:x",
            "w b",
            "arn:aws:ecs:us-west-2:123456789012:service/web",
        ] {
            assert!(check_task_definition_ref(bad).is_err(), "{bad}");
        }
    }
}
