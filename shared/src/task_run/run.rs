//! One-off tasks on ECS: run `--count` tasks of the task definition with command, environment
//! and task-role overrides, wait until they stop, and fail (exit 3) when an essential container
//! exited non-zero. The container's exit code is in the message, in `EXIT_CODE` and in
//! `EXIT_CODE_<CONTAINER>`.

use aws_sdk_ecs::types::{ContainerOverride, KeyValuePair, LaunchType, Tag, TaskOverride};
use ecskit_contract::outputs as o;

use super::{Args, Deps, parse_command};
use crate::Report;
use crate::ecs::stopped::{describe_stopped, essential_exit, stopped_reason};
use crate::ecs::taskdef::TaskDef;
use crate::ecs::{cluster, logs, network, placement, retry};
use crate::error::{AwsContext, Error, Result};

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
    /// `--count`: tasks started by one RunTask.
    pub count: i32,
    /// `--started-by` (default `ecskit`).
    pub started_by: Option<String>,
    /// `--tag`: the user's tags; managed-by=ecskit is added to them.
    pub tags: Vec<(String, String)>,
    /// `--logs`: stream the task's container lines (CloudWatch Logs) to stderr while it runs.
    pub logs: bool,
}

/// The result of a finished task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub task_arn: String,
    /// The first essential container's exit code (`None` with --no-wait).
    pub exit_code: Option<i32>,
    /// Every essential container's exit code, by name.
    pub codes: Vec<(String, i32)>,
}

pub async fn run(deps: &Deps, args: &Args, td: &TaskDef) -> Result<Report> {
    let flags = args.network_flags();
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
    let (launch_type, strategy) = placement_of(args);
    let fargate = placement::fargate(launch_type.as_ref(), &strategy);
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
    let cluster_arn = cluster::ensure(deps, &args.cluster, false).await?.arn;
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
        launch_type,
        strategy,
        network,
        wait: !args.no_wait,
        count: args.count,
        started_by: args.started_by.clone(),
        tags: args.tags.clone(),
        logs: args.logs,
    };
    let finished = run_task(deps, &spec).await.map_err(|e| {
        e.with_output(o::CLUSTER_ARN, cluster_arn.clone())
            .with_output(o::TASK_DEFINITION_ARN, td.arn.clone())
    })?;
    let report = deps
        .ctx
        .report()
        .output(o::CLUSTER_ARN, cluster_arn)
        .output(o::TASK_DEFINITION_ARN, td.arn.clone());
    Ok(with_results(report, &finished))
}

/// The finished tasks' outputs: `TASK_ARN` (the ARNs separated by spaces with --count), and the
/// first task's `EXIT_CODE` and `EXIT_CODE_<CONTAINER>` (they all succeeded, or this is not
/// reached).
fn with_results(mut report: Report, finished: &[Finished]) -> Report {
    if finished.is_empty() {
        return report;
    }
    let arns: Vec<&str> = finished.iter().map(|f| f.task_arn.as_str()).collect();
    report = report.output(o::TASK_ARN, arns.join(" "));
    if let Some(code) = finished[0].exit_code {
        report = report.output(o::EXIT_CODE, code);
    }
    for (name, code) in &finished[0].codes {
        report = report.output(&o::exit_code_of(name), *code);
    }
    report
}

/// The launch type and capacity provider strategy the flags ask for (checked by `validate`).
pub(super) fn placement_of(
    args: &Args,
) -> (
    Option<LaunchType>,
    Vec<aws_sdk_ecs::types::CapacityProviderStrategyItem>,
) {
    let strategy = args
        .capacity_provider_strategy
        .iter()
        .filter_map(|s| placement::parse_strategy_item(s).ok())
        .collect();
    (args.launch_type.map(|l| l.sdk()), strategy)
}

/// Whether the flags run the task on Fargate (which takes only awsvpc task definitions).
pub(super) fn fargate(args: &Args) -> bool {
    let (launch_type, strategy) = placement_of(args);
    placement::fargate(launch_type.as_ref(), &strategy)
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
    // A dry run's stand-in for a revision not registered yet has no containers to name.
    if overriding && container.is_none() && !td.pending {
        return Err(Error::input(format!(
            "--command/--env need a container, and {} names none",
            td.arn
        ))
        .hint("pass --container NAME"));
    }
    Ok(container)
}

/// Starts the tasks (retrying while ECS cannot assume a role yet) and, when asked, waits until
/// they stop. Empty in a dry run.
pub async fn run_task(deps: &Deps, spec: &TaskSpec) -> Result<Vec<Finished>> {
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
    // A spec built without a count (`TaskSpec::default()`) runs one task.
    let count = spec.count.max(1);
    let mut what = match count {
        1 => format!("run one task of {} in cluster {}", td.arn, spec.cluster),
        n => format!("run {n} tasks of {} in cluster {}", td.arn, spec.cluster),
    };
    // The command's words may hold a secret (a URL with a password): the plan says there is an
    // override, never its words.
    if let Some(c) = &spec.command {
        what.push_str(&format!(" with a command override ({} words)", c.len()));
    }
    if let Some(r) = &spec.task_role_arn {
        what.push_str(&format!(" as task role {r}"));
    }
    if !deps.ctx.apply(what) {
        return Ok(Vec::new());
    }
    // managed-by=ecskit marks what --stop may stop: the user's tags cannot replace it
    // (`validate` refuses the key; it is dropped here too, for a spec built elsewhere).
    let tags: Vec<Tag> = spec
        .tags
        .iter()
        .filter(|(k, _)| k != crate::aws::MANAGED_BY.0)
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .chain([cluster::tag()])
        .collect();
    // One token for every retry of this run: a retried RunTask never starts a second task.
    let token = uuid::Uuid::new_v4().to_string();
    let out = retry::with_iam_retry(deps, &format!("running a task of {}", td.arn), || {
        let mut req = deps
            .ecs
            .run_task()
            .cluster(&spec.cluster)
            .task_definition(&td.arn)
            .count(count)
            .client_token(&token)
            .started_by(spec.started_by.as_deref().unwrap_or("ecskit"))
            .overrides(overrides.clone())
            .set_tags(Some(tags.clone()))
            .set_network_configuration(spec.network.clone());
        if spec.strategy.is_empty() {
            req = req.launch_type(spec.launch_type.clone().unwrap_or(LaunchType::Fargate));
        } else {
            req = req.set_capacity_provider_strategy(Some(spec.strategy.clone()));
        }
        req.send()
    })
    .await?;
    let task_arns: Vec<String> = out
        .tasks()
        .iter()
        .filter_map(|t| t.task_arn())
        .map(str::to_string)
        .collect();
    // Fewer tasks than asked is a failure (ECS names why in `failures`); the ones that did
    // start are named so they can be stopped.
    if task_arns.len() < count as usize {
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
        let started = if task_arns.is_empty() {
            "ECS started no task".to_string()
        } else {
            format!(
                "ECS started {} of {} tasks ({})",
                task_arns.len(),
                spec.count,
                task_arns.join(", ")
            )
        };
        return Err(Error::aws(
            format!("running a task of {}", td.arn),
            format!("{started}: {why}"),
        ));
    }
    for arn in &task_arns {
        deps.progress.println(format!("started task {arn}"));
    }
    if !spec.wait {
        return Ok(task_arns
            .into_iter()
            .map(|task_arn| Finished {
                task_arn,
                exit_code: None,
                codes: Vec::new(),
            })
            .collect());
    }
    // Every task is waited for (one limit for all); the first failure is the error, and a
    // later task's cannot replace it.
    let start = deps.clock.elapsed();
    let mut finished = Vec::new();
    let mut first_err = None;
    for arn in &task_arns {
        match wait_stopped(deps, spec, arn, start).await {
            Ok(f) => finished.push(f),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(finished),
    }
}

/// `--logs`: the task's container lines, each printed once on stderr as it polls
/// (stdout keeps the step's results), `[short-id container] line`.
struct LogStream {
    sources: Vec<logs::Source>,
    since: i64,
    seen: std::collections::HashSet<String>,
}

impl LogStream {
    fn new(deps: &Deps, spec: &TaskSpec, task_arn: &str) -> LogStream {
        let (sources, missing) = if spec.logs {
            logs::sources_of(
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
        match logs::read_since(&deps.ctx, &self.sources, self.since).await {
            Ok(lines) => {
                for line in logs::unseen(lines, &mut self.seen) {
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
pub async fn wait_stopped(
    deps: &Deps,
    spec: &TaskSpec,
    task_arn: &str,
    start: std::time::Duration,
) -> Result<Finished> {
    let mut stream = LogStream::new(deps, spec, task_arn);
    let mut last_status = String::new();
    let mut last_change = deps.clock.elapsed();
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
                let failures = logs::failure_entries(
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
                .with_output(o::TASK_ARN, task_arn)
                .with_output(o::EXIT_CODE, code.unwrap_or(-1));
                for (n, code) in essential_codes(task, essentials) {
                    err = err.with_output(&o::exit_code_of(&n), code);
                }
                return Err(err);
            }
            let codes = essential_codes(task, essentials);
            return Ok(Finished {
                task_arn: task_arn.to_string(),
                exit_code: codes.first().map(|(_, c)| *c),
                codes,
            });
        }
        if now - start >= deps.timing.timeout {
            return Err(Error::deployment(format!(
                "task {task_arn} did not stop within {}s (last status {status})",
                deps.timing.timeout.as_secs()
            ))
            .hint("raise --timeout; the task keeps running (task-run --stop TASK stops it)")
            .with_output(o::TASK_ARN, task_arn));
        }
        if now - last_change >= deps.timing.no_progress {
            return Err(Error::deployment(format!(
                "task {task_arn} stayed {status} for {}s",
                deps.timing.no_progress.as_secs()
            ))
            .hint("raise --no-progress-timeout; the task keeps running (task-run --stop TASK stops it)")
            .with_output(o::TASK_ARN, task_arn));
        }
        deps.clock.sleep(deps.timing.poll).await;
    }
}

/// The essential containers' exit codes (every container's without a list of essential ones).
fn essential_codes(task: &aws_sdk_ecs::types::Task, essentials: &[String]) -> Vec<(String, i32)> {
    task.containers()
        .iter()
        .filter_map(|c| Some((c.name()?, c.exit_code()?)))
        .filter(|(n, _)| essentials.is_empty() || essentials.iter().any(|e| e == n))
        .map(|(n, code)| (n.to_string(), code))
        .collect()
}
