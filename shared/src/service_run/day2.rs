//! The two day-2 commands of service-run: `--logs` (the service's containers' own lines, merged
//! in time order, followed with `--follow`) and `--rollback` (back to the last version that
//! worked, followed like any deployment).

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use aws_sdk_ecs::types::DesiredStatus;

use super::logs::{self, Source};
use super::rollback;
use super::{Args, Deps};
use crate::error::AwsContext;
use crate::{Error, Report, Result};

/// CloudWatch Logs allows FilterLogEvents at a few requests per second per account and region:
/// one poll every two seconds stays far below it, even with several followers at once.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// The flags of the day-2 commands.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Logs and rollback")]
pub struct Day2Args {
    /// Print the service's container logs (CloudWatch Logs, awslogs driver), merged in time
    /// order, each line prefixed with the task's short id and the container name.
    #[arg(long, conflicts_with_all = ["delete", "watch", "rollback"])]
    pub logs: bool,
    /// With --logs: keep reading new lines until Ctrl-C.
    #[arg(long, requires = "logs")]
    pub follow: bool,
    /// With --logs: start this long ago (90s, 10m, 1h).
    #[arg(long, requires = "logs", default_value = "10m", value_parser = super::parse_duration)]
    pub since: Duration,
    /// Lines of the failing container's log shown when a deployment fails (0: none).
    #[arg(long, default_value_t = 20)]
    pub log_lines: u32,
    /// Deploy the task definition of the last deployment that completed before the current one
    /// (or, when ECS has no such history, the previous ACTIVE revision), then follow it.
    /// --task-definition (and ECSKIT_TASK_DEFINITION_ARN) is ignored.
    #[arg(long, requires = "service", conflicts_with_all = ["delete", "watch"])]
    pub rollback: bool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The service's current task definition and its tasks (running, and stopped ones ECS still
/// lists), for `--logs`.
async fn service_tasks(deps: &Deps, args: &Args) -> Result<(String, Vec<String>)> {
    let service = args.service.clone().unwrap_or_default();
    let svc = super::describe_service(deps, &args.cluster, &service)
        .await?
        .ok_or_else(|| {
            Error::input(format!(
                "no service {service} in cluster {}: there are no logs to show",
                args.cluster
            ))
        })?;
    let td = svc.task_definition().unwrap_or_default().to_string();
    let mut tasks = Vec::new();
    for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
        let out = deps
            .ecs
            .list_tasks()
            .cluster(&args.cluster)
            .service_name(&service)
            .desired_status(status)
            .send()
            .await
            .context(format!("listing the tasks of service {service}"))?;
        tasks.extend(out.task_arns().iter().cloned());
    }
    Ok((td, tasks))
}

/// `--logs [--follow]`: the lines go to stdout (they are what was asked for); progress and
/// explanations go to stderr.
pub async fn show_logs(deps: &Deps, args: &Args) -> Result<Report> {
    let d2 = &args.day2;
    let (td_arn, mut tasks) = service_tasks(deps, args).await?;
    let td = super::taskdef::describe(deps, &td_arn).await?;
    let mut since = now_ms() - d2.since.as_millis() as i64;
    let mut seen = HashSet::new();
    let mut printed = 0usize;
    let mut stdout = std::io::stdout();
    loop {
        let (sources, missing): (Vec<Source>, Vec<String>) =
            logs::sources(&td, &tasks, args.container.as_deref());
        if printed == 0 && seen.is_empty() {
            for name in &missing {
                tracing::warn!(
                    "container {name} has no awslogs configuration with a stream prefix: its lines cannot be read"
                );
            }
        }
        let lines = logs::unseen(
            logs::read_since(&deps.ctx, &sources, since).await?,
            &mut seen,
        );
        for line in &lines {
            // A closed stdout (`| head`) ends the command quietly.
            if writeln!(stdout, "{}", line.render()).is_err() {
                return Ok(deps.ctx.report().detail("lines", printed));
            }
            since = since.max(line.timestamp);
        }
        printed += lines.len();
        if !d2.follow {
            break;
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = deps.clock.sleep(FOLLOW_INTERVAL) => {}
        }
        // Tasks started since the last poll (a deployment, a replaced task) are followed too.
        if let Ok((_, now)) = service_tasks(deps, args).await {
            tasks = now;
        }
    }
    Ok(deps.ctx.report().detail("lines", printed))
}

/// `--rollback`: chooses the revision, says which and why, and deploys it like any other.
pub async fn rollback(deps: &Deps, args: &Args) -> Result<Report> {
    let service = args.service.clone().unwrap_or_default();
    let svc = super::describe_service(deps, &args.cluster, &service)
        .await?
        .ok_or_else(|| {
            Error::input(format!(
                "no service {service} in cluster {}: there is nothing to roll back",
                args.cluster
            ))
        })?;
    let current = svc.task_definition().unwrap_or_default().to_string();
    let choice = rollback::choose(&deps.ctx, &args.cluster, &service, &current).await?;
    deps.progress.println(format!(
        "rolling back to {}: {}",
        choice.task_definition, choice.why
    ));
    let td = super::taskdef::resolve_task_definition(deps, &choice.task_definition).await?;
    let report = super::deploy::deploy(deps, args, &td).await?;
    Ok(report
        .detail("rollback_from", current)
        .detail("rollback_reason", choice.why))
}
