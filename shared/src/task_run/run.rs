//! One-off tasks (`--run-task`): run one task of the task definition with command, environment
//! and task-role overrides, wait until it stops, and fail (exit 3) when an essential container
//! exited non-zero. The container's exit code is in the message and in `EXIT_CODE`.

use aws_sdk_ecs::types::{ContainerOverride, KeyValuePair, LaunchType, TaskOverride};

use super::deploy;
use super::taskdef::TaskDef;
use super::watch::{describe_stopped, essential_exit, stopped_reason};
use super::{Args, Deps, cluster, network};
use crate::Report;
use crate::error::{AwsContext, Error, Result};

/// `--command`: a JSON array of strings, or words split on whitespace.
pub fn parse_command(s: &str) -> std::result::Result<Vec<String>, String> {
    let t = s.trim();
    let words: Vec<String> = if t.starts_with('[') {
        serde_json::from_str(t).map_err(|e| format!("'{s}' is not a JSON array of strings: {e}"))?
    } else {
        t.split_whitespace().map(str::to_string).collect()
    };
    if words.is_empty() {
        return Err("is empty: give the command to run".to_string());
    }
    Ok(words)
}

/// What a one-off task runs with.
#[derive(Clone, Debug, Default)]
pub struct TaskSpec {
    pub cluster: String,
    pub task_definition: TaskDef,
    pub container: Option<String>,
    pub command: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub task_role_arn: Option<String>,
    pub launch_type: Option<LaunchType>,
    pub strategy: Vec<aws_sdk_ecs::types::CapacityProviderStrategyItem>,
    pub network: Option<aws_sdk_ecs::types::NetworkConfiguration>,
    pub wait: bool,
    /// `--logs`: stream the task's container lines (CloudWatch Logs) to stderr while it runs.
    pub logs: bool,
}

/// The result of a finished task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub task_arn: String,
    pub exit_code: Option<i32>,
}

pub async fn run(deps: &Deps, args: &Args, td: &TaskDef) -> Result<Report> {
    let flags = deploy::network_flags(args);
    if !td.awsvpc && flags.any() {
        return Err(Error::input(format!(
            "--subnets/--security-groups/--assign-public-ip need an awsvpc task definition; {} uses another network mode",
            td.arn
        )));
    }
    if let Some(c) = &args.container
        && !td.essentials.contains(c)
    {
        tracing::debug!(
            "--container {c} is not an essential container of {}",
            td.arn
        );
    }
    // Every check that can refuse runs before the cluster is created.
    override_container(
        args.container.as_deref(),
        td,
        args.command.is_some() || !args.env.is_empty(),
    )?;
    let fargate = deploy::Want::from_args(args, td).fargate();
    if fargate && !td.awsvpc {
        return Err(Error::input(format!(
            "{} is not an awsvpc task definition, and Fargate runs only awsvpc tasks",
            td.arn
        ))
        .hint("register it with networkMode awsvpc, or pass --launch-type EC2"));
    }
    let network = if td.awsvpc {
        Some(network::resolve(deps, &flags, fargate).await?)
    } else {
        None
    };
    let cluster_arn = cluster::ensure(deps, &args.cluster, args.container_insights)
        .await?
        .arn;
    let spec = TaskSpec {
        cluster: args.cluster.clone(),
        task_definition: td.clone(),
        container: args.container.clone(),
        command: args
            .command
            .as_deref()
            .map(parse_command)
            .transpose()
            .map_err(Error::input)?,
        env: args.env.clone(),
        task_role_arn: args.task_role_arn.clone(),
        launch_type: args.launch_type.map(|l| l.sdk()),
        strategy: args
            .capacity_provider_strategy
            .iter()
            .filter_map(|s| deploy::parse_strategy_item(s).ok())
            .collect(),
        network,
        wait: !args.no_wait,
        logs: args.day2.logs,
    };
    let finished = run_task(deps, &spec).await.map_err(|e| {
        e.with_output(ecskit_contract::outputs::CLUSTER_ARN, cluster_arn.clone())
            .with_output(
                ecskit_contract::outputs::TASK_DEFINITION_ARN,
                td.arn.clone(),
            )
    })?;
    let mut report = deps
        .ctx
        .report()
        .output(ecskit_contract::outputs::CLUSTER_ARN, cluster_arn)
        .output(
            ecskit_contract::outputs::TASK_DEFINITION_ARN,
            td.arn.clone(),
        );
    if let Some(f) = finished {
        report = report.output(ecskit_contract::outputs::TASK_ARN, f.task_arn);
        if let Some(code) = f.exit_code {
            report = report.output(ecskit_contract::outputs::EXIT_CODE, code);
        }
    }
    Ok(report)
}

/// The container `--command`/`--env` apply to: the one named, else the first essential one.
/// Overriding with neither is bad input.
fn override_container(
    named: Option<&str>,
    td: &TaskDef,
    overriding: bool,
) -> Result<Option<String>> {
    let container = named
        .map(str::to_string)
        .or_else(|| td.essentials.first().cloned());
    if overriding && container.is_none() {
        return Err(Error::input(format!(
            "--command/--env need a container, and {} names none",
            td.arn
        ))
        .hint("pass --container NAME"));
    }
    Ok(container)
}

/// Starts the task (retrying while ECS cannot assume a role yet) and, when asked, waits until
/// it stops. `None` in a dry run.
pub async fn run_task(deps: &Deps, spec: &TaskSpec) -> Result<Option<Finished>> {
    let td = &spec.task_definition;
    let overriding = spec.command.is_some() || !spec.env.is_empty();
    let container = override_container(spec.container.as_deref(), td, overriding)?;
    let mut overrides = TaskOverride::builder().set_task_role_arn(spec.task_role_arn.clone());
    if let (true, Some(name)) = (overriding, &container) {
        overrides = overrides.container_overrides(
            ContainerOverride::builder()
                .name(name)
                .set_command(spec.command.clone())
                .set_environment(Some(
                    spec.env
                        .iter()
                        .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                        .collect(),
                ))
                .build(),
        );
    }
    let overrides = overrides.build();
    let mut what = format!("run one task of {} in cluster {}", td.arn, spec.cluster);
    if let Some(c) = &spec.command {
        what.push_str(&format!(" with command {c:?}"));
    }
    if let Some(r) = &spec.task_role_arn {
        what.push_str(&format!(" as task role {r}"));
    }
    if !deps.ctx.apply(what) {
        return Ok(None);
    }
    // One token for every retry of this run: a retried RunTask never starts a second task.
    let token = uuid::Uuid::new_v4().to_string();
    let out = super::retry::with_iam_retry(deps, &format!("running a task of {}", td.arn), || {
        let mut req = deps
            .ecs
            .run_task()
            .cluster(&spec.cluster)
            .task_definition(&td.arn)
            .count(1)
            .client_token(&token)
            .started_by("ecskit")
            .overrides(overrides.clone())
            .tags(cluster::tag())
            .set_network_configuration(spec.network.clone());
        if spec.strategy.is_empty() {
            req = req.launch_type(spec.launch_type.clone().unwrap_or(LaunchType::Fargate));
        } else {
            req = req.set_capacity_provider_strategy(Some(spec.strategy.clone()));
        }
        req.send()
    })
    .await?;
    let task_arn = match out.tasks().first().and_then(|t| t.task_arn()) {
        Some(a) => a.to_string(),
        None => {
            let why = out
                .failures()
                .iter()
                .map(|f| {
                    format!(
                        "{}{}",
                        f.reason().unwrap_or("unknown"),
                        f.detail().map(|d| format!(" ({d})")).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::aws(
                format!("running a task of {}", td.arn),
                format!("ECS started no task: {why}"),
            ));
        }
    };
    deps.progress.println(format!("started task {task_arn}"));
    if !spec.wait {
        return Ok(Some(Finished {
            task_arn,
            exit_code: None,
        }));
    }
    wait_stopped(deps, spec, &task_arn).await.map(Some)
}

/// `--run-task --logs`: the task's container lines, each printed once on stderr as it polls
/// (stdout keeps the step's results), `[short-id container] line`.
struct LogStream {
    sources: Vec<super::logs::Source>,
    since: i64,
    seen: std::collections::HashSet<String>,
}

impl LogStream {
    fn new(deps: &Deps, spec: &TaskSpec, task_arn: &str) -> LogStream {
        let (sources, missing) = if spec.logs {
            super::logs::sources_of(
                &spec.task_definition.logs,
                &[task_arn.to_string()],
                spec.container.as_deref(),
            )
        } else {
            Default::default()
        };
        for name in missing {
            deps.progress.println(format!(
                "container {name} has no awslogs configuration with a stream prefix: its lines cannot be shown"
            ));
        }
        LogStream {
            sources,
            since: 0,
            seen: Default::default(),
        }
    }

    async fn print_new(&mut self, deps: &Deps) {
        if self.sources.is_empty() {
            return;
        }
        match super::logs::read_since(&deps.ctx, &self.sources, self.since).await {
            Ok(lines) => {
                for line in super::logs::unseen(lines, &mut self.seen) {
                    self.since = self.since.max(line.timestamp);
                    deps.progress.println(line.render());
                }
            }
            Err(e) => {
                // Reading logs is a help, not the task: say why once and stop trying.
                deps.progress
                    .println(format!("the task's log lines cannot be read: {e}"));
                self.sources.clear();
            }
        }
    }
}

/// Polls the task until it is STOPPED; an essential container with a non-zero (or no) exit
/// code is a failed run (exit 3).
pub async fn wait_stopped(deps: &Deps, spec: &TaskSpec, task_arn: &str) -> Result<Finished> {
    let start = deps.clock.elapsed();
    let mut stream = LogStream::new(deps, spec, task_arn);
    let mut last_status = String::new();
    let mut last_change = start;
    let spinner = deps
        .progress
        .spinner(format!("waiting for task {task_arn}"));
    loop {
        let out = deps
            .ecs
            .describe_tasks()
            .cluster(&spec.cluster)
            .tasks(task_arn)
            .send()
            .await
            .context(format!("describing task {task_arn}"))?;
        let task = out.tasks().first().ok_or_else(|| {
            Error::aws(
                format!("describing task {task_arn}"),
                "the task is not listed",
            )
        })?;
        let status = task.last_status().unwrap_or("UNKNOWN").to_string();
        // The lines so far, before the stopped report (the last ones included).
        stream.print_new(deps).await;
        let now = deps.clock.elapsed();
        if status != last_status {
            spinner.set_message(format!("task {task_arn}: {status}"));
            last_status = status.clone();
            last_change = now;
        }
        if status == "STOPPED" {
            spinner.finish(format!("task {task_arn} stopped"));
            for line in describe_stopped(task) {
                deps.progress.println(line);
            }
            let essentials = &spec.task_definition.essentials;
            if let Some((name, code)) = essential_exit(task, essentials) {
                let failures = super::logs::failure_entries(
                    &deps.ctx,
                    &deps.progress,
                    task,
                    &spec.task_definition.logs,
                    deps.log_lines,
                )
                .await;
                let code_text = code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "none (it did not run)".into());
                let mut err = Error::deployment(format!(
                    "task {task_arn} failed: essential container {name} exited with code {code_text}; stopped reason: {}",
                    stopped_reason(task)
                ))
                .hint("the step exits 3 for a task that ran but failed; the container's exit code is in this message")
                .with_details(serde_json::json!({ "failures": failures }))
                .with_output(ecskit_contract::outputs::TASK_ARN, task_arn)
                .with_output(ecskit_contract::outputs::EXIT_CODE, code.unwrap_or(-1));
                for c in task.containers() {
                    if let (Some(n), Some(code)) = (c.name(), c.exit_code())
                        && (essentials.is_empty() || essentials.iter().any(|e| e == n))
                    {
                        err = err.with_output(&ecskit_contract::outputs::exit_code_of(n), code);
                    }
                }
                return Err(err);
            }
            let exit_code = task
                .containers()
                .iter()
                .find(|c| {
                    essentials.is_empty() || essentials.iter().any(|e| Some(e.as_str()) == c.name())
                })
                .and_then(|c| c.exit_code());
            return Ok(Finished {
                task_arn: task_arn.to_string(),
                exit_code,
            });
        }
        if now - start >= deps.timing.timeout {
            return Err(Error::deployment(format!(
                "task {task_arn} did not stop within {}s (last status {status})",
                deps.timing.timeout.as_secs()
            ))
            .hint("raise --timeout; the task keeps running"));
        }
        if now - last_change >= deps.timing.no_progress {
            return Err(Error::deployment(format!(
                "task {task_arn} stayed {status} for {}s",
                deps.timing.no_progress.as_secs()
            ))
            .hint("raise --no-progress-timeout; the task keeps running"));
        }
        deps.clock.sleep(deps.timing.poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(
            parse_command("bin/migrate --up").unwrap(),
            ["bin/migrate", "--up"]
        );
        assert_eq!(
            parse_command(r#"["sh","-c","echo hi"]"#).unwrap(),
            ["sh", "-c", "echo hi"]
        );
        assert!(parse_command("  ").is_err());
        assert!(parse_command("[1,2]").is_err());
    }
}
