//! service-run's flags, and the check of all of them before any call (exit 2, nothing changed).

use std::time::Duration;

use super::{day2, deploy, taskdef};
use crate::cli::Common;
pub use crate::ecs::parse_duration;
pub use crate::ecs::placement::LaunchTypeArg;
use crate::error::{Error, Result};

#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "service-run",
    next_help_heading = "service-run",
    version,
    about = "Create or update an ECS service and watch it until it is stable or has failed.",
    after_help = "Examples:\n  \
eval \"$(taskdef-register --file snaplex.json --output env)\"   # ECSKIT_TASK_DEFINITION_ARN\n  \
service-run --cluster acme --service snaplex                  # deploys it, waits until stable\n  \
service-run --cluster acme --service snaplex --task-definition snaplex:7 --verify\n  \
service-run --cluster acme --service-file service.json --capacity-provider-strategy FARGATE_SPOT:3\n  \
service-run --cluster acme --service snaplex --continue       # resumes a paused rollout\n  \
service-run --cluster acme --service snaplex --logs --follow\n  \
service-run --cluster acme --service snaplex --delete --delete-cluster\n\n\
Reads: ECSKIT_CLUSTER, ECSKIT_SERVICE, ECSKIT_TASK_DEFINITION_ARN\n\
Prints: ECSKIT_CLUSTER_ARN, ECSKIT_SERVICE_ARN, ECSKIT_DEPLOYMENT_ID, ECSKIT_ROLLOUT_STATE, \
ECSKIT_RUNNING_COUNT, ECSKIT_DESIRED_COUNT, ECSKIT_CHANGED (and, following a blue/green, canary \
or linear deployment, ECSKIT_SERVICE_DEPLOYMENT_ARN, ECSKIT_LIFECYCLE_STAGE)\n\n\
Exit codes: 0 success, 1 AWS failure, 2 bad input (nothing changed), 3 the deployment ran but failed"
)]
pub struct Args {
    /// The ECS cluster (created with FARGATE and FARGATE_SPOT capacity providers when missing).
    #[arg(
        long,
        env = "ECSKIT_CLUSTER",
        default_value = "",
        hide_default_value = true
    )]
    pub cluster: String,
    /// The service name.
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
    /// The service in CreateService's JSON form (`aws ecs create-service --generate-cli-skeleton`,
    /// or what `cargo xtask init` wrote): load balancers, service registries, placement, alarms
    /// and every other field, sent as written, fields unknown to this tool included. Flags win
    /// over its fields. A difference in a field UpdateService cannot change is exit 2.
    #[arg(
        long,
        env = "ECSKIT_SERVICE_FILE",
        value_name = "FILE",
        conflicts_with_all = ["watch", "delete", "delete_cluster", "export"],
        help_heading = "Service"
    )]
    pub service_file: Option<std::path::PathBuf>,
    /// Print the live service in the --service-file form and its task definition in the
    /// register form (what `cargo xtask init` writes out), with the task role's config bucket
    /// and what could not be carried over; changes nothing. Best with --output json.
    #[arg(long, conflicts_with_all = ["watch", "delete", "delete_cluster"], help_heading = "Service")]
    pub export: bool,
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

    /// Turn the deployment circuit breaker (with rollback) off. A new service has it on; an
    /// existing one keeps its setting unless this or --circuit-breaker is given.
    #[arg(long, conflicts_with = "circuit_breaker", help_heading = "Deployment")]
    pub no_circuit_breaker: bool,
    /// Turn the deployment circuit breaker (with rollback) on for an existing service that has
    /// it off.
    #[arg(long, help_heading = "Deployment")]
    pub circuit_breaker: bool,
    /// Lower limit of running tasks during a deployment, in percent of the desired count.
    #[arg(long, help_heading = "Deployment")]
    pub min_healthy_percent: Option<i32>,
    /// Upper limit of running and pending tasks during a deployment, in percent.
    #[arg(long, help_heading = "Deployment")]
    pub max_percent: Option<i32>,
    /// Allow `aws ecs execute-command` into the tasks (`--enable-execute-command[=false]`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = "Deployment")]
    pub enable_execute_command: Option<bool>,

    /// Check before any change that what the task definition names exists and fits (roles,
    /// images, secrets, env files, log groups, permissions) and that the service's network does
    /// (subnets and security groups of one VPC, a route to pull the image); `--verify=network`
    /// checks the network only. A failed check is exit 2 with nothing changed.
    #[arg(
        long,
        env = "ECSKIT_VERIFY",
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "all",
        help_heading = "Deployment"
    )]
    pub verify: Option<Verify>,

    /// Do not wait for the deployment to finish.
    #[arg(long, help_heading = "Watching")]
    pub no_wait: bool,
    /// Only attach to the existing service and report until it is stable; change nothing.
    #[arg(long, conflicts_with_all = ["no_wait", "delete", "delete_cluster"], help_heading = "Watching")]
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

    /// With --logs, the one container whose lines are shown.
    #[arg(long, help_heading = "Watching")]
    pub container: Option<String>,
    /// Gone to task-run: refused with a pointer there (exit 2).
    #[arg(long, hide = true)]
    pub run_task: bool,
    /// Gone to task-run: refused with a pointer there (exit 2).
    #[arg(long, hide = true)]
    pub local: bool,
    /// The one-off task's own flags, gone to task-run with it: taken (hidden) only so that an
    /// old command line gets the pointer to task-run rather than clap's "unexpected argument".
    #[arg(long = "command", hide = true, value_name = "COMMAND")]
    pub gone_command: Option<String>,
    #[arg(long = "env", hide = true, value_name = "K=V")]
    pub gone_env: Vec<String>,
    #[arg(long = "task-role-arn", hide = true, value_name = "ARN")]
    pub gone_task_role_arn: Option<String>,
    #[arg(long = "pause-image", hide = true, value_name = "IMAGE")]
    pub gone_pause_image: Option<String>,
    #[arg(long = "credentials-uri", hide = true, value_name = "FORM")]
    pub gone_credentials_uri: Option<String>,

    /// Scale the service to zero, delete it and wait until it is inactive (only if tagged managed-by=ecskit).
    #[arg(long, help_heading = "Delete")]
    pub delete: bool,
    /// Also delete the cluster when it is empty and tagged managed-by=ecskit.
    #[arg(long, help_heading = "Delete")]
    pub delete_cluster: bool,
    #[command(flatten)]
    pub rollout: super::strategy::RolloutArgs,
    // The shared flags come last, under their own headings (Output, AWS): flattened first,
    // their headings would swallow the step's own flags.
    #[command(flatten)]
    pub day2: day2::Day2Args,
    #[command(flatten)]
    pub follow: super::following::FollowArgs,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

/// What `--verify` checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    /// The task definition's resources and the service's network.
    #[value(alias = "true", alias = "yes", alias = "on", alias = "1")]
    All,
    /// The service's network only (the chain's choice: its taskdef-register --verify has
    /// checked the task definition).
    Network,
    /// Nothing (`ECSKIT_VERIFY=false`).
    #[value(hide = true, alias = "false", alias = "no", alias = "0")]
    Off,
}

impl Args {
    /// Whether `--verify` (or ECSKIT_VERIFY) asks for the task definition's checks.
    pub fn verifies_task(&self) -> bool {
        self.verify == Some(Verify::All)
    }
    /// Whether it asks for the network's.
    pub fn verifies_network(&self) -> bool {
        matches!(self.verify, Some(Verify::All | Verify::Network))
    }
}

/// Checks every flag before anything is called; all problems at once.
pub fn validate(args: &Args) -> Result<()> {
    let mut problems: Vec<String> = Vec::new();
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 255
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    // One-off tasks have their own binary; these flags only point there.
    for (given, flag) in [
        (args.run_task, "--run-task"),
        (args.local, "--local"),
        (args.gone_command.is_some(), "--command"),
        (!args.gone_env.is_empty(), "--env"),
        (args.gone_task_role_arn.is_some(), "--task-role-arn"),
        (args.gone_pause_image.is_some(), "--pause-image"),
        (args.gone_credentials_uri.is_some(), "--credentials-uri"),
    ] {
        if given {
            problems.push(format!(
                "{flag}: service-run runs services only; use task-run for one task (task-run --help)"
            ));
        }
    }
    if args.container.is_some() && !args.day2.logs && !args.run_task && !args.local {
        problems.push(
            "--container chooses whose lines --logs shows: add --logs (a one-off task's container is task-run's --container)"
                .to_string(),
        );
    }
    // The service file is read and checked here too: its problems are bad input like a flag's.
    let file = args
        .service_file
        .as_deref()
        .map(super::from_file::load)
        .transpose()
        .unwrap_or_else(|file_problems| {
            problems.extend(file_problems);
            None
        })
        .map(|loaded| loaded.doc);
    if let (Some(doc), Some(path)) = (&file, &args.service_file) {
        problems.extend(super::from_file::identity_conflicts(args, doc, path));
    }
    let from_file = |key: &str| {
        file.as_ref()
            .and_then(|f| f.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    if args.cluster.is_empty() {
        if from_file("cluster").is_none() {
            problems
                .push("--cluster is missing: name the cluster (or set ECSKIT_CLUSTER)".to_string());
        }
    } else if !name_ok(&args.cluster) && !args.cluster.starts_with("arn:") {
        problems.push(format!(
            "--cluster '{}' is not a cluster name: use up to 255 letters, digits, '-' and '_'",
            args.cluster
        ));
    }
    let service_needed =
        (!args.delete_cluster || args.delete) && from_file("serviceName").is_none();
    match &args.service {
        None if service_needed => problems
            .push("--service is missing: name the service (or set ECSKIT_SERVICE)".to_string()),
        Some(s) if !name_ok(s) => problems.push(format!(
            "--service '{s}' is not a service name: use up to 255 letters, digits, '-' and '_'"
        )),
        _ => {}
    }
    let td_needed = !args.watch
        && !args.export
        && from_file("taskDefinition").is_none()
        && !args.delete
        && !args.delete_cluster
        && !args.day2.logs
        && !args.day2.rollback
        && !args.follow.steers();
    match &args.task_definition {
        None if td_needed => problems.push(
            "--task-definition is missing: pass an ARN, `family` or `family:revision` (or set ECSKIT_TASK_DEFINITION_ARN)"
                .to_string(),
        ),
        Some(td) => {
            if let Err(e) = taskdef::check_task_definition_ref(td) {
                problems.push(format!("--task-definition {e}"));
            }
        }
        // The file's own is checked with the file.
        None => {}
    }
    if let Some(n) = args.desired_count
        && n < 0
    {
        problems.push(format!("--desired-count {n} is negative: use 0 or more"));
    }
    problems.extend(crate::ecs::placement::check(
        args.launch_type,
        &args.capacity_provider_strategy,
        &deploy::network_flags(args),
    ));
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
    problems.extend(super::strategy::check(&args.rollout, file.as_ref()));
    problems.extend(crate::ecs::check_waits(
        args.timeout,
        args.no_progress_timeout,
        args.poll_interval,
    ));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::inputs(problems))
    }
}
