//! task-run's flags, and the check of all of them before any call (exit 2, nothing changed).

use std::time::Duration;

use crate::cli::{Common, key_value};
use crate::ecs::parse_duration;
use crate::ecs::placement::LaunchTypeArg;
use crate::ecs::taskdef;
use crate::error::{Error, Result};

/// The most tasks one RunTask call starts (ECS's limit).
pub const MAX_COUNT: i32 = 10;

#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "task-run",
    next_help_heading = "task-run",
    version,
    about = "Run one task of a task definition on ECS (or on the local Docker Engine) and wait until it stops.",
    after_help = "Examples:\n  \
eval \"$(taskdef-register --file migrate.json --output env)\"   # ECSKIT_TASK_DEFINITION_ARN\n  \
task-run --cluster acme --command 'bin/migrate --up' --logs   # waits, exit 3 if it fails\n  \
task-run --cluster acme --task-definition report:4 --count 3 --no-wait --tag job=nightly\n  \
task-run --cluster acme --task-definition app --task-role-arn arn:aws:iam::1:role/audit\n  \
task-run --local --task-definition snaplex:7 --env LOG_LEVEL=debug\n  \
task-run --cluster acme --stop 0123456789abcdef --reason 'stuck migration'\n\n\
Reads: ECSKIT_CLUSTER, ECSKIT_TASK_DEFINITION_ARN\n\
Prints: ECSKIT_TASK_ARN, ECSKIT_EXIT_CODE, ECSKIT_EXIT_CODE_<CONTAINER>, ECSKIT_CLUSTER_ARN, \
ECSKIT_TASK_DEFINITION_ARN, ECSKIT_CHANGED\n\n\
Exit codes: 0 success, 1 AWS or Docker failure, 2 bad input (nothing changed), 3 the task ran but \
an essential container failed"
)]
pub struct Args {
    /// The ECS cluster (created when missing; not with --local).
    #[arg(
        long,
        value_name = "NAME",
        env = "ECSKIT_CLUSTER",
        default_value = "",
        hide_default_value = true
    )]
    pub cluster: String,
    /// An ARN, `family` (its latest revision) or `family:revision`.
    #[arg(long, value_name = "TD", env = "ECSKIT_TASK_DEFINITION_ARN")]
    pub task_definition: Option<String>,

    /// Command override: a JSON array (`'["sh","-c","echo hi"]'`) or words.
    #[arg(long, value_name = "CMD", help_heading = "Task")]
    pub command: Option<String>,
    /// Environment override (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = key_value, help_heading = "Task")]
    pub env: Vec<(String, String)>,
    /// The overrides' (and --logs') container (default: the first essential).
    #[arg(long, value_name = "NAME", help_heading = "Task")]
    pub container: Option<String>,
    /// Task role for this run only.
    #[arg(long, value_name = "ARN", help_heading = "Task")]
    pub task_role_arn: Option<String>,
    /// Tasks to start at once (1 to 10).
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Task")]
    pub count: i32,
    /// The tasks' startedBy (default: ecskit).
    #[arg(
        long,
        value_name = "TEXT",
        hide_short_help = true,
        help_heading = "Task"
    )]
    pub started_by: Option<String>,
    /// A tag on the tasks (repeatable; managed-by=ecskit is always added).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = key_value, help_heading = "Task")]
    pub tags: Vec<(String, String)>,

    /// FARGATE (default without a strategy) or EC2.
    #[arg(
        long,
        value_enum,
        value_name = "TYPE",
        hide_possible_values = true,
        conflicts_with = "capacity_provider_strategy",
        help_heading = "Placement"
    )]
    pub launch_type: Option<LaunchTypeArg>,
    /// Capacity providers: PROV:WEIGHT[:BASE],...
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        help_heading = "Placement"
    )]
    pub capacity_provider_strategy: Vec<String>,
    /// awsvpc subnets (default: the default VPC's).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "IDS",
        help_heading = "Placement"
    )]
    pub subnets: Vec<String>,
    /// awsvpc security groups (default: `default`).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "IDS",
        help_heading = "Placement"
    )]
    pub security_groups: Vec<String>,
    /// Public IP (default: in the default VPC only).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL", hide_possible_values = true, help_heading = "Placement")]
    pub assign_public_ip: Option<bool>,

    /// Print the task ARN and return, without waiting.
    #[arg(long, conflicts_with = "local", help_heading = "Waiting")]
    pub no_wait: bool,
    /// Stream the containers' lines (CloudWatch Logs) to stderr.
    #[arg(long, help_heading = "Waiting")]
    pub logs: bool,
    /// Lines of the failing container's log shown when the task fails (0: none).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20,
        hide_short_help = true,
        help_heading = "Waiting"
    )]
    pub log_lines: u32,
    /// Stop waiting after this long (90s, 15m, 1h); the task runs on.
    #[arg(long, value_name = "TIME", default_value = "30m", value_parser = parse_duration, help_heading = "Waiting")]
    pub timeout: Duration,
    /// Stop waiting when the task's status has not changed for this long.
    #[arg(long, value_name = "TIME", default_value = "10m", value_parser = parse_duration, hide_short_help = true, help_heading = "Waiting")]
    pub no_progress_timeout: Duration,
    /// Time between two polls.
    #[arg(long, default_value = "6s", value_parser = parse_duration, hide = true)]
    pub poll_interval: Duration,

    /// Run it on the local Docker Engine (DOCKER_HOST) as ECS would, role included.
    ///
    /// As ECS would run it: dependsOn order, secrets, env files, volumes, and the task role's
    /// credentials at 169.254.170.2.
    #[arg(long, conflicts_with_all = ["stop", "count", "started_by", "tags", "launch_type", "capacity_provider_strategy", "subnets", "security_groups", "assign_public_ip"], help_heading = "Local run")]
    pub local: bool,
    /// The image that holds the local task's network namespace (ECS's pause container).
    #[arg(long, value_name = "IMAGE", env = "ECSKIT_LOCAL_PAUSE_IMAGE", default_value = super::local::DEFAULT_PAUSE_IMAGE, hide_short_help = true, help_heading = "Local run")]
    pub pause_image: String,
    /// How the local task's containers reach the task role's credentials: `relative` (port 80,
    /// as ECS; needs root), `full` (a free port and a token), `auto` (relative when it can).
    #[arg(long, value_enum, env = "ECSKIT_LOCAL_CREDENTIALS_URI", default_value_t = super::local::endpoint::CredentialsUri::Auto, hide_short_help = true, help_heading = "Local run")]
    pub credentials_uri: super::local::endpoint::CredentialsUri,

    /// Stop this task (ARN or id) if task-run started it (tagged managed-by=ecskit).
    #[arg(long, value_name = "TASK", conflicts_with_all = ["command", "env", "task_role_arn", "count", "no_wait", "logs", "tags", "started_by", "container", "launch_type", "capacity_provider_strategy", "subnets", "security_groups", "assign_public_ip", "local"], help_heading = "Stop")]
    pub stop: Option<String>,
    /// Why (ECS's stopped reason).
    #[arg(long, value_name = "TEXT", requires = "stop", help_heading = "Stop")]
    pub reason: Option<String>,

    // The shared flags come last, under their own headings (Output, AWS): flattened first,
    // their headings would swallow the step's own flags.
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

impl Args {
    /// The awsvpc flags.
    pub fn network_flags(&self) -> crate::ecs::network::NetworkFlags {
        crate::ecs::network::NetworkFlags {
            subnets: self.subnets.clone(),
            security_groups: self.security_groups.clone(),
            assign_public_ip: self.assign_public_ip,
        }
    }
}

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

/// A task to stop: its ARN, or its id (32 hex digits on ECS; a UUID on the emulator).
pub fn check_task_ref(task: &str) -> std::result::Result<(), String> {
    let id = task.rsplit('/').next().unwrap_or(task);
    let arn_ok = !task.contains('/') || (task.starts_with("arn:") && task.contains(":task/"));
    if arn_ok
        && !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Ok(())
    } else {
        Err(format!(
            "'{task}' is not a task: pass its ARN (arn:aws:ecs:...:task/CLUSTER/ID) or its id"
        ))
    }
}

/// Checks every flag before anything is called; all problems at once.
pub fn validate(args: &Args) -> Result<()> {
    let mut problems: Vec<String> = Vec::new();
    if args.cluster.is_empty() {
        if !args.local {
            problems
                .push("--cluster is missing: name the cluster (or set ECSKIT_CLUSTER)".to_string());
        }
    } else if crate::validate::ecs_name(&args.cluster, 255).is_err()
        && !args.cluster.starts_with("arn:")
    {
        problems.push(format!(
            "--cluster '{}' is not a cluster name: use up to 255 letters, digits, '-' and '_'",
            args.cluster
        ));
    }
    match (&args.task_definition, &args.stop) {
        (None, None) => problems.push(
            "--task-definition is missing: pass an ARN, `family` or `family:revision` (or set ECSKIT_TASK_DEFINITION_ARN)"
                .to_string(),
        ),
        (Some(td), None) => {
            if let Err(e) = taskdef::check_task_definition_ref(td) {
                problems.push(format!("--task-definition {e}"));
            }
        }
        // A stop names its task; the task definition (from ECSKIT_TASK_DEFINITION_ARN, say) is
        // not read.
        (_, Some(task)) => {
            if let Err(e) = check_task_ref(task) {
                problems.push(format!("--stop {e}"));
            }
        }
    }
    if let Some(c) = &args.command
        && let Err(e) = parse_command(c)
    {
        problems.push(format!("--command {e}"));
    }
    if let Some(arn) = &args.task_role_arn
        && let Err(e) = crate::validate::role_arn(arn)
    {
        problems.push(format!("--task-role-arn {e}"));
    }
    if !(1..=MAX_COUNT).contains(&args.count) {
        problems.push(format!(
            "--count {} is not between 1 and {MAX_COUNT} (ECS starts at most {MAX_COUNT} tasks per call)",
            args.count
        ));
    }
    // ECS's limits: startedBy up to 128 letters, digits, '-' and '_'; a tag key up to 128
    // characters and a value up to 256, and no key of its own (aws:).
    if let Some(s) = &args.started_by
        && crate::validate::ecs_name(s, 128).is_err()
    {
        problems.push(format!(
            "--started-by '{s}' is not a startedBy: use up to 128 letters, digits, '-' and '_'"
        ));
    }
    for (k, v) in &args.tags {
        if k.len() > 128 || v.len() > 256 || k.to_ascii_lowercase().starts_with("aws:") {
            problems.push(format!(
                "--tag {k}: a key is up to 128 characters, not starting with aws:, and a value up to 256"
            ));
        } else if k == crate::aws::MANAGED_BY.0 {
            problems.push(format!(
                "--tag {k}: task-run sets {}={} itself (it marks what --stop may stop)",
                crate::aws::MANAGED_BY.0,
                crate::aws::MANAGED_BY.1
            ));
        }
    }
    if let Some(r) = &args.reason
        && r.len() > 255
    {
        problems.push("--reason is longer than 255 characters (ECS's limit)".to_string());
    }
    problems.extend(crate::ecs::placement::check(
        args.launch_type,
        &args.capacity_provider_strategy,
        &args.network_flags(),
    ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn problems(argv: &[&str]) -> String {
        let args = Args::try_parse_from([&["task-run"][..], argv].concat()).unwrap();
        match validate(&args) {
            Ok(()) => String::new(),
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn a_run_needs_a_cluster_and_a_task_definition_but_a_local_run_no_cluster() {
        let text = problems(&[]);
        assert!(text.contains("--cluster is missing"), "{text}");
        assert!(text.contains("--task-definition is missing"), "{text}");
        assert_eq!(problems(&["--local", "--task-definition", "app:3"]), "");
        assert_eq!(
            problems(&["--cluster", "acme", "--task-definition", "app"]),
            ""
        );
    }

    #[test]
    fn count_is_between_one_and_ecs_limit() {
        for bad in ["0", "11", "-1"] {
            let count = format!("--count={bad}");
            let text = problems(&["--cluster", "a", "--task-definition", "t", &count]);
            assert!(text.contains("--count"), "{bad}: {text}");
        }
        assert_eq!(
            problems(&["--cluster", "a", "--task-definition", "t", "--count", "10"]),
            ""
        );
    }

    #[test]
    fn the_managed_by_tag_is_task_runs_own() {
        let text = problems(&[
            "--cluster",
            "a",
            "--task-definition",
            "t",
            "--tag",
            "managed-by=me",
        ]);
        assert!(text.contains("sets managed-by=ecskit itself"), "{text}");
        let text = problems(&[
            "--cluster",
            "a",
            "--task-definition",
            "t",
            "--tag",
            "aws:x=1",
        ]);
        assert!(text.contains("--tag aws:x"), "{text}");
        assert_eq!(
            problems(&[
                "--cluster",
                "a",
                "--task-definition",
                "t",
                "--tag",
                "job=nightly"
            ]),
            ""
        );
    }

    #[test]
    fn started_by_and_reason_keep_to_ecs_limits() {
        let text = problems(&[
            "--cluster",
            "a",
            "--task-definition",
            "t",
            "--started-by",
            "a b",
        ]);
        assert!(text.contains("--started-by"), "{text}");
        let long = "x".repeat(256);
        let text = problems(&["--cluster", "a", "--stop", "abc123", "--reason", &long]);
        assert!(text.contains("--reason"), "{text}");
    }

    #[test]
    fn stop_names_a_task_and_needs_no_task_definition() {
        assert_eq!(
            problems(&["--cluster", "a", "--stop", "0123456789abcdef"]),
            ""
        );
        assert_eq!(
            problems(&[
                "--cluster",
                "a",
                "--stop",
                "arn:aws:ecs:us-west-2:1:task/a/0123abcd"
            ]),
            ""
        );
        for bad in ["../x", "arn:aws:ecs:us-west-2:1:service/a/web", "a b", ""] {
            let text = problems(&["--cluster", "a", "--stop", bad]);
            assert!(text.contains("--stop"), "{bad}: {text}");
        }
    }

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
