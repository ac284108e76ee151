//! service-run: create or update the ECS service, run one-off tasks, and watch a deployment
//! until it is stable or has failed.
//!
//! The step is split by concern: [`cluster`] (create-if-missing, delete when empty),
//! [`network`] (awsvpc settings and the default-VPC fallback), [`deploy`] (the service's desired
//! state, the diff against what exists, create/update/delete, the IAM-propagation retry),
//! [`watch`] (following one deployment by id) and [`task`] (one-off tasks). [`run`] parses
//! nothing itself: it validates the flags, builds a [`Deps`] from the AWS flags and dispatches.
//! Tests build their own [`Deps`] (recorded responses, a virtual clock) and call the pieces.

pub mod cluster;
pub mod day2;
pub mod deploy;
pub mod logs;
pub mod network;
pub mod rollback;
pub mod service_file;
pub mod task;
pub mod watch;

use std::time::Duration;

use crate::Report;
use crate::aws::Ctx;
use crate::cli::{Common, StepArgs, key_value};
use crate::error::{AwsContext, Error, Result};
use crate::progress::Progress;

pub use crate::aws::MANAGED_BY;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaunchTypeArg {
    #[value(name = "FARGATE", alias = "fargate")]
    Fargate,
    #[value(name = "EC2", alias = "ec2")]
    Ec2,
}

impl LaunchTypeArg {
    pub fn sdk(self) -> aws_sdk_ecs::types::LaunchType {
        match self {
            LaunchTypeArg::Fargate => aws_sdk_ecs::types::LaunchType::Fargate,
            LaunchTypeArg::Ec2 => aws_sdk_ecs::types::LaunchType::Ec2,
        }
    }
}

#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "service-run",
    next_help_heading = "service-run",
    version,
    about = "Create or update an ECS service (or run a one-off task) and watch it until it is stable or has failed.",
    after_help = "Examples:\n  \
service-run --cluster app --service web --task-definition web:7\n  \
service-run --cluster app --service web --task-definition web --desired-count 2 --capacity-provider-strategy FARGATE_SPOT:3,FARGATE:1:1\n  \
service-run --cluster app --service web --watch\n  \
service-run --cluster app --task-definition migrate --run-task --command 'bin/migrate --up' --env MODE=once\n  \
service-run --cluster app --service web --delete --delete-cluster\n\n\
Reads: ECSKIT_CLUSTER, ECSKIT_SERVICE, ECSKIT_TASK_DEFINITION_ARN\n\
Prints: ECSKIT_CLUSTER_ARN, ECSKIT_SERVICE_ARN, ECSKIT_DEPLOYMENT_ID, ECSKIT_ROLLOUT_STATE, \
ECSKIT_RUNNING_COUNT, ECSKIT_DESIRED_COUNT, ECSKIT_TASK_ARN (--run-task), ECSKIT_EXIT_CODE (--run-task), ECSKIT_CHANGED\n\n\
Exit codes: 0 success, 1 AWS failure, 2 bad input (nothing changed), 3 the deployment or task ran but failed"
)]
pub struct Args {
    /// The ECS cluster (created with FARGATE and FARGATE_SPOT capacity providers when missing).
    #[arg(long, env = "ECSKIT_CLUSTER")]
    pub cluster: String,
    /// The service name. Not needed with --run-task.
    #[arg(long, env = "ECSKIT_SERVICE")]
    pub service: Option<String>,
    /// The task definition: an ARN, `family` (latest ACTIVE revision) or `family:revision`.
    #[arg(long, env = "ECSKIT_TASK_DEFINITION_ARN")]
    pub task_definition: Option<String>,

    /// Tasks to keep running (default 1 on create; an update keeps the current count unless given).
    #[arg(long, help_heading = "Service")]
    pub desired_count: Option<i32>,
    /// Launch type (default FARGATE when no capacity provider strategy is given).
    #[arg(
        long,
        value_enum,
        conflicts_with = "capacity_provider_strategy",
        help_heading = "Service"
    )]
    pub launch_type: Option<LaunchTypeArg>,
    /// Capacity provider strategy instead of a launch type: PROVIDER:WEIGHT[:BASE],... (e.g. FARGATE_SPOT:3,FARGATE:1:1).
    #[arg(long, value_delimiter = ',', help_heading = "Service")]
    pub capacity_provider_strategy: Vec<String>,
    /// Turn Container Insights on for a cluster this step creates.
    #[arg(long, help_heading = "Service")]
    pub container_insights: bool,

    /// awsvpc subnets (default: the default VPC's default subnets).
    #[arg(long, value_delimiter = ',', help_heading = "Network")]
    pub subnets: Vec<String>,
    /// awsvpc security groups (default: the default VPC's `default` group).
    #[arg(long, value_delimiter = ',', help_heading = "Network")]
    pub security_groups: Vec<String>,
    /// Give tasks a public IP (`--assign-public-ip` or `--assign-public-ip=false`; default: on
    /// with the default VPC, off with your own subnets).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = "Network")]
    pub assign_public_ip: Option<bool>,

    /// Turn the deployment circuit breaker (with rollback) off. It is on by default.
    #[arg(long, help_heading = "Deployment")]
    pub no_circuit_breaker: bool,
    /// Lower limit of running tasks during a deployment, in percent of the desired count.
    #[arg(long, help_heading = "Deployment")]
    pub min_healthy_percent: Option<i32>,
    /// Upper limit of running and pending tasks during a deployment, in percent.
    #[arg(long, help_heading = "Deployment")]
    pub max_percent: Option<i32>,
    /// Allow `aws ecs execute-command` into the tasks (`--enable-execute-command[=false]`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = "Deployment")]
    pub enable_execute_command: Option<bool>,

    /// Check before deploying that what the task definition names exists and fits (roles,
    /// images, secrets, env files, log groups, permissions) and that the subnets and security
    /// groups exist in one VPC; a failed check is exit 2 with nothing changed.
    #[arg(long, env = "ECSKIT_VERIFY", help_heading = "Deployment")]
    pub verify: bool,

    /// Do not wait for the deployment (or task) to finish.
    #[arg(long, help_heading = "Watching")]
    pub no_wait: bool,
    /// Only attach to the existing service and report until it is stable; change nothing.
    #[arg(long, conflicts_with_all = ["no_wait", "run_task", "delete", "delete_cluster"], help_heading = "Watching")]
    pub watch: bool,
    /// Give up waiting after this long (90s, 15m, 1h).
    #[arg(long, default_value = "30m", value_parser = parse_duration, help_heading = "Watching")]
    pub timeout: Duration,
    /// Give up when nothing has changed for this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration, help_heading = "Watching")]
    pub no_progress_timeout: Duration,
    /// Time between two polls.
    #[arg(long, default_value = "6s", value_parser = parse_duration, hide = true)]
    pub poll_interval: Duration,

    /// Run one task of the task definition and wait until it stops, instead of a service.
    #[arg(long, conflicts_with_all = ["delete", "delete_cluster"], help_heading = "One-off task")]
    pub run_task: bool,
    /// Command override: a JSON array (`'["sh","-c","echo hi"]'`) or words split on spaces.
    #[arg(long, requires = "run_task", help_heading = "One-off task")]
    pub command: Option<String>,
    /// Environment override KEY=VALUE (repeatable).
    #[arg(long = "env", value_parser = key_value, requires = "run_task", help_heading = "One-off task")]
    pub env: Vec<(String, String)>,
    /// The container the overrides apply to (default: the first essential container); with
    /// --logs, the one container whose lines are shown.
    #[arg(long, help_heading = "One-off task")]
    pub container: Option<String>,
    /// Task role for this one task only.
    #[arg(long, requires = "run_task", help_heading = "One-off task")]
    pub task_role_arn: Option<String>,

    /// Scale the service to zero, delete it and wait until it is inactive (only if tagged managed-by=ecskit).
    #[arg(long, help_heading = "Delete")]
    pub delete: bool,
    /// Also delete the cluster when it is empty and tagged managed-by=ecskit.
    #[arg(long, help_heading = "Delete")]
    pub delete_cluster: bool,
    // The shared flags come last, under their own headings (Output, AWS): flattened first,
    // their headings would swallow the step's own flags.
    #[command(flatten)]
    pub day2: day2::Day2Args,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

impl StepArgs for Args {
    fn common(&self) -> &Common {
        &self.common
    }
}

/// `90`, `90s`, `15m`, `1h`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration: use 90s, 15m or 1h"))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("'{s}' is not a duration: use 90s, 15m or 1h")),
    };
    // Checked: a huge value is bad input (exit 2), not an overflow.
    n.checked_mul(per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{s}' is too long a duration: use at most a few days, like 72h"))
}

pub use crate::clock::Clock;

/// What the step runs with. [`run`] builds it from the flags; tests build it around recorded
/// clients and a virtual clock.
#[derive(Clone)]
pub struct Deps {
    pub ctx: Ctx,
    pub ecs: aws_sdk_ecs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub clock: Clock,
    pub progress: Progress,
    pub timing: Timing,
    /// Lines of a failing container's log in the failure report (`--log-lines`).
    pub log_lines: u32,
}

/// The waiting loops' times.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub poll: Duration,
    pub timeout: Duration,
    pub no_progress: Duration,
    /// How long a role that ECS cannot assume is put down to IAM propagation.
    pub iam_grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: Duration::from_secs(6),
            timeout: Duration::from_secs(30 * 60),
            no_progress: Duration::from_secs(10 * 60),
            iam_grace: Duration::from_secs(120),
        }
    }
}

impl Deps {
    pub fn new(ctx: Ctx, progress: Progress, timing: Timing) -> Self {
        Deps {
            ecs: ctx.ecs(),
            ec2: ctx.ec2(),
            ctx,
            clock: Clock::real(),
            progress,
            timing,
            log_lines: 20,
        }
    }
}

/// Checks every flag before anything is called; all problems at once.
pub fn validate(args: &Args) -> Result<()> {
    let mut problems = Vec::new();
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 255
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !name_ok(&args.cluster) && !args.cluster.starts_with("arn:") {
        problems.push(format!(
            "--cluster '{}' is not a cluster name: use up to 255 letters, digits, '-' and '_'",
            args.cluster
        ));
    }
    let service_needed = !args.run_task && (!args.delete_cluster || args.delete);
    match &args.service {
        None if service_needed => problems
            .push("--service is missing: name the service (or set ECSKIT_SERVICE)".to_string()),
        Some(s) if !name_ok(s) => problems.push(format!(
            "--service '{s}' is not a service name: use up to 255 letters, digits, '-' and '_'"
        )),
        _ => {}
    }
    if args.container.is_some() && !args.run_task && !args.day2.logs {
        problems.push(
            "--container applies to --run-task (the overrides' container) or --logs (whose lines to show)"
                .to_string(),
        );
    }
    let td_needed = !args.watch
        && !args.delete
        && !args.delete_cluster
        && !args.day2.logs
        && !args.day2.rollback;
    match &args.task_definition {
        None if td_needed => problems.push(
            "--task-definition is missing: pass an ARN, `family` or `family:revision` (or set ECSKIT_TASK_DEFINITION_ARN)"
                .to_string(),
        ),
        Some(td) => {
            if let Err(e) = deploy::check_task_definition_ref(td) {
                problems.push(format!("--task-definition {e}"));
            }
        }
        None => {}
    }
    if let Some(n) = args.desired_count
        && n < 0
    {
        problems.push(format!("--desired-count {n} is negative: use 0 or more"));
    }
    for item in &args.capacity_provider_strategy {
        if let Err(e) = deploy::parse_strategy_item(item) {
            problems.push(format!("--capacity-provider-strategy {e}"));
        }
    }
    for s in &args.subnets {
        if !s.starts_with("subnet-") {
            problems.push(format!("--subnets '{s}' is not a subnet id (subnet-...)"));
        }
    }
    for s in &args.security_groups {
        if !s.starts_with("sg-") {
            problems.push(format!(
                "--security-groups '{s}' is not a security group id (sg-...)"
            ));
        }
    }
    if let Some(p) = args.min_healthy_percent
        && !(0..=100).contains(&p)
    {
        problems.push(format!(
            "--min-healthy-percent {p} is not between 0 and 100"
        ));
    }
    if let Some(p) = args.max_percent
        && !(100..=200).contains(&p)
    {
        problems.push(format!("--max-percent {p} is not between 100 and 200"));
    }
    if let Some(arn) = &args.task_role_arn
        && let Err(e) = crate::validate::role_arn(arn)
    {
        problems.push(format!("--task-role-arn {e}"));
    }
    if let Some(c) = &args.command
        && let Err(e) = task::parse_command(c)
    {
        problems.push(format!("--command {e}"));
    }
    for (name, d) in [
        ("--timeout", args.timeout),
        ("--no-progress-timeout", args.no_progress_timeout),
        ("--poll-interval", args.poll_interval),
    ] {
        if d.is_zero() {
            problems.push(format!(
                "{name} is zero: give a positive duration such as 90s"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::inputs(problems))
    }
}

/// The step: validate, connect, dispatch.
pub async fn run(args: Args) -> Result<Report> {
    validate(&args)?;
    let ctx = Ctx::new(&args.aws, args.common.dry_run).await;
    let timing = Timing {
        poll: args.poll_interval,
        timeout: args.timeout,
        no_progress: args.no_progress_timeout,
        ..Timing::default()
    };
    let mut deps = Deps::new(ctx, Progress::new(args.common.quiet), timing);
    deps.log_lines = args.day2.log_lines;
    run_with(&deps, &args).await
}

/// The step with its dependencies given (tests call this with recorded clients).
pub async fn run_with(deps: &Deps, args: &Args) -> Result<Report> {
    if args.delete || args.delete_cluster {
        return deploy::delete(deps, args).await;
    }
    if args.watch {
        return watch::attach(deps, args).await;
    }
    if args.day2.logs {
        return day2::show_logs(deps, args).await;
    }
    if args.day2.rollback {
        return day2::rollback(deps, args).await;
    }
    let td_ref = args.task_definition.as_deref().unwrap_or_default();
    let td = deploy::resolve_task_definition(deps, td_ref).await?;
    let checks = if args.verify {
        Some(verify(deps, args, &td).await?)
    } else {
        None
    };
    if args.run_task {
        return task::run(deps, args, &td).await;
    }
    let report = deploy::deploy(deps, args, &td).await?;
    Ok(match checks {
        Some(c) => c.add_to(report),
        None => report,
    })
}

/// `--verify`: the registered task definition's resources, and the network flags' subnets and
/// security groups (the default VPC's are looked up, and so exist, when none are given).
async fn verify(deps: &Deps, args: &Args, td: &deploy::TaskDef) -> Result<crate::verify::Checks> {
    let def = deps
        .ecs
        .describe_task_definition()
        .task_definition(&td.arn)
        .send()
        .await
        .context(format!("reading task definition {}", td.arn))?
        .task_definition
        .ok_or_else(|| {
            Error::aws(
                "reading the task definition",
                "no task definition in the answer",
            )
        })?;
    let network = (!args.subnets.is_empty()).then(|| crate::verify::Network {
        subnets: args.subnets.clone(),
        security_groups: args.security_groups.clone(),
        assign_public_ip: args.assign_public_ip.unwrap_or(false),
        fargate: !matches!(args.launch_type, Some(LaunchTypeArg::Ec2)),
    });
    let checks = crate::verify::verify(
        &deps.ctx,
        &crate::verify::TaskSubject::from_ecs(&def),
        network.as_ref(),
    )
    .await?;
    checks.conclude()?;
    Ok(checks)
}

/// Whether an ECS answer means "ECS cannot assume this role (yet)". Right after a role is made,
/// IAM has not propagated it; the same words after the grace period mean a wrong trust policy.
pub fn is_role_not_assumable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("unable to assume")
        || m.contains("cannot assume")
        || m.contains("not authorized to perform: sts:assumerole")
        || m.contains("role is not assumable")
}

/// An SDK error's code and message, for deciding whether to retry.
pub(crate) fn error_message<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    match err.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or("no message")
        ),
        None => String::new(),
    }
}

/// Reads one service; `None` when it is missing or INACTIVE.
pub async fn describe_service(
    deps: &Deps,
    cluster: &str,
    service: &str,
) -> Result<Option<aws_sdk_ecs::types::Service>> {
    let out = deps
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await;
    let out = match out {
        Ok(o) => o,
        // A missing cluster has no services.
        Err(e) if error_message(&e).starts_with("ClusterNotFoundException") => return Ok(None),
        Err(e) => {
            return Err(e).context(format!("describing service {service} in cluster {cluster}"));
        }
    };
    Ok(out
        .services
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.status.as_deref() != Some("INACTIVE")))
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations_parse_and_a_huge_one_is_refused_not_wrapped() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        let huge = format!("{}h", u64::MAX / 2);
        assert_eq!(
            parse_duration(&huge),
            Err(format!(
                "'{huge}' is too long a duration: use at most a few days, like 72h"
            ))
        );
        assert!(parse_duration("soon").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn validation_names_every_bad_flag() {
        let args = Args::try_parse_from([
            "service-run",
            "--cluster",
            "a b",
            "--service",
            "web",
            "--task-definition",
            "web:x",
            "--desired-count=-1",
            "--subnets",
            "abc",
            "--max-percent",
            "50",
        ])
        .unwrap();
        let err = validate(&args).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.exit_code(), 2);
        for flag in [
            "--cluster",
            "--task-definition",
            "--desired-count",
            "--subnets",
            "--max-percent",
        ] {
            assert!(text.contains(flag), "{flag} missing from: {text}");
        }
    }

    #[test]
    fn role_messages() {
        assert!(is_role_not_assumable(
            "ECS was unable to assume the role 'arn:aws:iam::1:role/x' that was provided for this task."
        ));
        assert!(!is_role_not_assumable(
            "CannotPullContainerError: pull access denied"
        ));
    }
}
