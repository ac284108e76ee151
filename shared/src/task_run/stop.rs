//! `--stop TASK --reason TEXT`: stop a task task-run started. A task without the managed-by=ecskit
//! tag (someone else's), or one of a service (ECS's `service:` group, even when the service is
//! ecskit's and its tasks carry the tag), is refused, exit 2, and left running: task-run stops
//! only the one-off tasks it made. A task that has stopped already is `changed: false`.

use aws_sdk_ecs::types::TaskField;
use ecskit_contract::outputs as o;

use super::Deps;
use crate::Report;
use crate::ecs::cluster;
use crate::error::{AwsContext, Error, Result};

/// ECS's stopped reason when `--reason` gives none.
pub const DEFAULT_REASON: &str = "stopped by task-run --stop";

pub async fn stop(
    deps: &Deps,
    cluster_name: &str,
    task: &str,
    reason: Option<&str>,
) -> Result<Report> {
    let out = deps
        .ecs
        .describe_tasks()
        .cluster(cluster_name)
        .tasks(task)
        .include(TaskField::Tags)
        .send()
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) if crate::error::sdk_is(&e, &["ClusterNotFoundException"]) => {
            return Err(Error::input(format!(
                "--stop {task}: cluster {cluster_name} does not exist"
            )));
        }
        Err(e) => return Err(e).context(format!("describing task {task}")),
    };
    let Some(found) = out.tasks().first() else {
        return Err(Error::input(format!(
            "--stop {task}: no such task in cluster {cluster_name}"
        ))
        .hint("ECS lists a stopped task for about an hour; pass the ARN or id task-run printed"));
    };
    let arn = found.task_arn().unwrap_or(task).to_string();
    if !cluster::is_managed(found.tags()) {
        return Err(Error::input(format!(
            "task {arn} is not tagged {}={}: task-run stops only the tasks it started",
            crate::aws::MANAGED_BY.0,
            crate::aws::MANAGED_BY.1
        ))
        .hint("stop it with the tool that started it (a service's tasks: scale the service)"));
    }
    // A service's tasks carry the service's tags, managed-by=ecskit included (service-run
    // propagates them): the tag alone would let --stop take down a service's task. ECS marks
    // them with the service's group and deployment: refused, whatever the tags say.
    if let Some(owner) = found
        .group()
        .filter(|g| g.starts_with("service:"))
        .or(found.started_by().filter(|s| s.starts_with("ecs-svc/")))
    {
        return Err(Error::input(format!(
            "task {arn} belongs to a service ({owner}): task-run stops only the one-off tasks it started"
        ))
        .hint("a service's tasks are the service's: scale it, or let ECS replace the task (service-run)"));
    }
    let report = deps.ctx.report().output(o::TASK_ARN, arn.clone());
    if found.last_status() == Some("STOPPED") || found.desired_status() == Some("STOPPED") {
        deps.progress
            .println(format!("task {arn} is stopped or stopping already"));
        return Ok(report.changed(false));
    }
    let reason = reason.unwrap_or(DEFAULT_REASON);
    if deps.ctx.apply(format!("stop task {arn} ({reason})")) {
        deps.ecs
            .stop_task()
            .cluster(cluster_name)
            .task(&arn)
            .reason(reason)
            .send()
            .await
            .context(format!("stopping task {arn}"))?;
    }
    Ok(deps.ctx.report().output(o::TASK_ARN, arn))
}
