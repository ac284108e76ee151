//! role-create: the task role (what the application may do) and the execution role (what ECS
//! needs to start the task), both least-privilege and convergent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::aws::{AwsArgs, Ctx};
use crate::cli::Common;
use crate::iam::policy::{self, Access, S3Grant};
use crate::iam::role::{self, DesiredRole};
use crate::validate;
use crate::{Error, Report, Result};

/// How the execution role gets its ECR-pull and logs permissions.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutionPolicy {
    /// Attach the AWS managed AmazonECSTaskExecutionRolePolicy.
    #[default]
    Managed,
    /// An inline policy with explicit ECR-pull and CloudWatch Logs statements.
    Inline,
}

#[derive(clap::Parser, Debug)]
#[command(
    name = "role-create",
    next_help_heading = "role-create",
    version,
    about = "Create or converge an ECS task role and execution role, least-privilege and idempotent.",
    after_help = "Examples:\n  \
        role-create --name snaplex --bucket acme-config --prefix snaplex/prod   # reads its 2 files\n  \
        eval \"$(config-upload --bucket acme-config --prefix snaplex/prod config/ --output env)\"\n  \
        role-create --name snaplex --output github >> \"$GITHUB_OUTPUT\"   # bucket, prefix: from above\n  \
        role-create --name snaplex --s3 acme-config/snaplex:read --s3 acme-data/uploads:read-write\n  \
        role-create --name snaplex --delete\n\n\
        Reads: ECSKIT_NAME, ECSKIT_CONFIG_BUCKET, ECSKIT_CONFIG_PREFIX\n\
        Prints: ECSKIT_TASK_ROLE_ARN, ECSKIT_TASK_ROLE_NAME, ECSKIT_EXECUTION_ROLE_ARN, ECSKIT_EXECUTION_ROLE_NAME, ECSKIT_CHANGED"
)]
pub struct Args {
    /// Application name: the roles are APP-task and APP-execution.
    #[arg(long, env = "ECSKIT_NAME")]
    pub name: Option<String>,
    /// Task role name (default: APP-task).
    #[arg(long)]
    pub task_role_name: Option<String>,
    /// Execution role name (default: APP-execution).
    #[arg(long)]
    pub execution_role_name: Option<String>,

    /// Bucket the task may read (with --prefix and --access); config-upload prints it.
    #[arg(long, env = "ECSKIT_CONFIG_BUCKET", help_heading = "Task role")]
    pub bucket: Option<String>,
    /// Key prefix within --bucket (default: the whole bucket); config-upload prints it.
    #[arg(
        long,
        env = "ECSKIT_CONFIG_PREFIX",
        requires = "bucket",
        help_heading = "Task role"
    )]
    pub prefix: Option<String>,
    /// Access to --bucket/--prefix.
    #[arg(long, value_enum, default_value_t = Access::Read, help_heading = "Task role")]
    pub access: Access,
    /// More S3 access, repeatable: BUCKET[/PREFIX][:read|read-write] (access defaults to --access).
    #[arg(
        long = "s3",
        value_name = "BUCKET[/PREFIX][:ACCESS]",
        help_heading = "Task role"
    )]
    pub s3: Vec<String>,
    /// A policy document (JSON) added as an inline policy, repeatable.
    #[arg(long, value_name = "FILE", help_heading = "Task role")]
    pub policy_file: Vec<PathBuf>,
    /// A managed policy to attach to the task role, repeatable.
    #[arg(long, value_name = "ARN", help_heading = "Task role")]
    pub managed_policy_arn: Vec<String>,
    /// Allow grants of s3:* or of S3 on Resource "*" (refused otherwise).
    #[arg(long, help_heading = "Task role")]
    pub allow_broad_s3: bool,

    /// Managed AmazonECSTaskExecutionRolePolicy, or explicit inline statements.
    #[arg(long, value_enum, default_value_t = ExecutionPolicy::Managed, help_heading = "Execution role")]
    pub execution_policy: ExecutionPolicy,
    /// An S3 object the task definition names in environmentFiles (s3://BUCKET/KEY or its ARN), repeatable.
    #[arg(long, value_name = "S3_URI", help_heading = "Execution role")]
    pub env_file: Vec<String>,
    /// A Secrets Manager secret or SSM parameter ARN the task definition names in secrets, repeatable.
    #[arg(long, value_name = "ARN", help_heading = "Execution role")]
    pub secret_arn: Vec<String>,

    #[command(flatten)]
    pub role: role::RoleOptions,
    /// Delete both roles (only when tagged managed-by=ecskit).
    #[arg(long)]
    pub delete: bool,
    // The shared flags come last, under their own headings (Output, AWS): flattened first,
    // their headings would swallow the step's own flags.
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: AwsArgs,
}

crate::step_flags!(Args);

/// The role-create step.
pub struct RoleCreate;

impl crate::step::Step for RoleCreate {
    const STEP: ecskit_contract::Step = ecskit_contract::Step::RoleCreate;
    type Args = Args;
    type Checked = Plan;

    fn check(args: &Args) -> Result<Plan> {
        plan(args)
    }

    async fn execute(ctx: &Ctx, args: &Args, plan: Plan) -> Result<Report> {
        converge_all(ctx, args, &plan).await
    }
}

/// The validated input: everything that can be known before the first call.
#[derive(Debug)]
pub struct Plan {
    pub task_role: String,
    pub execution_role: String,
    pub grants: Vec<S3Grant>,
    /// Inline policies from --policy-file, by policy name.
    pub files: BTreeMap<String, Value>,
    pub env_files: Vec<(String, String)>,
}

/// Checks all input and returns every problem at once.
pub fn plan(args: &Args) -> Result<Plan> {
    let mut problems = Vec::new();
    let name_of = |explicit: &Option<String>, suffix: &str| {
        explicit
            .clone()
            .or_else(|| args.name.as_ref().map(|n| format!("{n}-{suffix}")))
    };
    let task_role = name_of(&args.task_role_name, "task");
    let execution_role = name_of(&args.execution_role_name, "execution");
    if task_role.is_none() || execution_role.is_none() {
        problems.push(
            "no role names: pass --name APP (or both --task-role-name and --execution-role-name)"
                .to_string(),
        );
    }
    for (flag, n) in [
        ("--task-role-name", &task_role),
        ("--execution-role-name", &execution_role),
    ] {
        if let Some(n) = n
            && let Err(e) = validate::iam_name(n, 64)
        {
            problems.push(format!("{flag} (or --name): role name {e}"));
        }
    }
    if task_role.is_some() && task_role == execution_role {
        problems.push("the task role and the execution role must have different names".into());
    }
    args.role.check(&mut problems);

    let mut grants = Vec::new();
    if let Some(bucket) = &args.bucket {
        match S3Grant::new(bucket, args.prefix.as_deref().unwrap_or(""), args.access) {
            Ok(g) => grants.push(g),
            Err(e) => problems.push(format!("--bucket/--prefix: {e}")),
        }
    }
    for spec in &args.s3 {
        match S3Grant::parse(spec, args.access) {
            Ok(g) => grants.push(g),
            Err(e) => problems.push(format!("--s3 {spec}: {e}")),
        }
    }

    let mut files = BTreeMap::new();
    for f in &args.policy_file {
        let shown = f.display();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("--policy-file {shown}: cannot be read: {e}"));
                continue;
            }
        };
        let doc: Value = match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("--policy-file {shown}: not valid JSON: {e}"));
                continue;
            }
        };
        let mut bad = policy::check_document(&doc);
        if !args.allow_broad_s3 {
            bad.extend(policy::broad_s3(&doc).into_iter().map(|b| {
                format!("{b}: refused (scope it to a bucket and prefix, or pass --allow-broad-s3)")
            }));
        }
        problems.extend(
            bad.into_iter()
                .map(|p| format!("--policy-file {shown}: {p}")),
        );
        let stem: String = f
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let pname = format!("{}file-{stem}", role::INLINE_PREFIX);
        if let Err(e) = validate::iam_name(&pname, 128) {
            problems.push(format!("--policy-file {shown}: the inline policy name {e}"));
        }
        if files.insert(pname.clone(), doc).is_some() {
            problems.push(format!(
                "--policy-file {shown}: two files would be the inline policy {pname}: rename one"
            ));
        }
    }
    for a in &args.managed_policy_arn {
        if let Err(e) = validate::arn(a, Some("iam"), Some("policy/")) {
            problems.push(format!("--managed-policy-arn: {e}"));
        } else if !args.allow_broad_s3 && a.ends_with("/AmazonS3FullAccess") {
            problems.push(format!("--managed-policy-arn {a}: grants s3:* on every bucket: refused (use --s3, or pass --allow-broad-s3)"));
        }
    }

    let mut env_files = Vec::new();
    for spec in &args.env_file {
        let rest = spec
            .strip_prefix("s3://")
            .or_else(|| spec.split_once(":s3:::").map(|(_, r)| r));
        match rest.and_then(|r| r.split_once('/')) {
            Some((b, k)) if !k.is_empty() && !k.ends_with('/') && !k.contains('*') => {
                match validate::bucket_name(b) {
                    Ok(()) => env_files.push((b.to_string(), k.to_string())),
                    Err(e) => problems.push(format!("--env-file {spec}: {e}")),
                }
            }
            _ => problems.push(format!(
                "--env-file {spec}: expected one object, s3://BUCKET/KEY or arn:aws:s3:::BUCKET/KEY"
            )),
        }
    }
    for a in &args.secret_arn {
        if let Err(e) = validate::arn(a, None, None) {
            problems.push(format!("--secret-arn: {e}"));
        } else if !matches!(a.split(':').nth(2), Some("secretsmanager" | "ssm")) {
            problems.push(format!(
                "--secret-arn {a}: not a Secrets Manager secret or SSM parameter ARN"
            ));
        }
    }

    if !problems.is_empty() {
        return Err(Error::inputs(problems));
    }
    Ok(Plan {
        task_role: task_role.unwrap_or_default(),
        execution_role: execution_role.unwrap_or_default(),
        grants,
        files,
        env_files,
    })
}

/// The two roles as they should be.
pub fn desired(
    args: &Args,
    plan: &Plan,
    partition: &str,
    region: &str,
    account: &str,
) -> (DesiredRole, DesiredRole) {
    let tags = role::tags(&args.role.tag);
    let mut task_inline = plan.files.clone();
    if !plan.grants.is_empty() {
        task_inline.insert(
            format!("{}s3", role::INLINE_PREFIX),
            policy::s3_grants(partition, &plan.grants),
        );
    }
    let task = DesiredRole {
        name: plan.task_role.clone(),
        path: args.role.path.clone(),
        trust: policy::task_trust(partition, region, account),
        inline: task_inline,
        managed: args.managed_policy_arn.iter().cloned().collect(),
        managed_known: BTreeSet::new(),
        tags: tags.clone(),
        permissions_boundary: args.role.permissions_boundary.clone(),
        description: "ECS task role (ecskit)".into(),
    };
    let managed_exec = policy::aws_managed(
        partition,
        "service-role/",
        "AmazonECSTaskExecutionRolePolicy",
    );
    let mut exec_inline = BTreeMap::new();
    let mut exec_managed = BTreeSet::new();
    match args.execution_policy {
        ExecutionPolicy::Managed => {
            exec_managed.insert(managed_exec.clone());
        }
        ExecutionPolicy::Inline => {
            exec_inline.insert(
                format!("{}execution", role::INLINE_PREFIX),
                policy::execution_inline(),
            );
        }
    }
    if let Some(doc) = policy::execution_reads(partition, &plan.env_files, &args.secret_arn) {
        exec_inline.insert(format!("{}execution-reads", role::INLINE_PREFIX), doc);
    }
    let execution = DesiredRole {
        name: plan.execution_role.clone(),
        path: args.role.path.clone(),
        trust: policy::service_trust(&["ecs-tasks.amazonaws.com"]),
        inline: exec_inline,
        managed: exec_managed,
        managed_known: [managed_exec].into_iter().collect(),
        tags,
        permissions_boundary: args.role.permissions_boundary.clone(),
        description: "ECS task execution role (ecskit)".into(),
    };
    (task, execution)
}

/// Converges a role ecskit manages; a role that exists without the `managed-by=ecskit` tag
/// (named with --task-role-name or --execution-role-name, made by hand) is referenced as it is:
/// its trust, policies and tags are someone else's, so no mutating call touches it.
async fn converge_unless_unmanaged(
    ctx: &Ctx,
    desired: &DesiredRole,
    checked: role::Checked,
    partition: &str,
    account: &str,
) -> Result<String> {
    if let Some(arn) = checked.unmanaged_arn() {
        tracing::warn!(
            "role {} is not tagged managed-by=ecskit: ecskit did not create it, so it is used as it is (trust, policies and tags untouched)",
            desired.name
        );
        return Ok(arn.to_string());
    }
    role::converge(ctx, desired, checked, partition, account).await
}

async fn converge_all(ctx: &Ctx, args: &Args, plan: &Plan) -> Result<Report> {
    let region = ctx.require_region()?;
    let partition = policy::partition(&region);
    let account = ctx.account_id().await?;
    let (task, execution) = desired(args, plan, partition, &region, &account);
    // Both roles are read and every refusal decided before the first mutating call.
    let (task_arn, exec_arn) = if args.delete {
        let checked = (
            role::check_delete(ctx, &task.name).await?,
            role::check_delete(ctx, &execution.name).await?,
        );
        role::delete(ctx, checked.0).await?;
        role::delete(ctx, checked.1).await?;
        (
            task.arn(partition, &account),
            execution.arn(partition, &account),
        )
    } else {
        let checked = (
            role::check_converge(ctx, &task).await?,
            role::check_converge(ctx, &execution).await?,
        );
        (
            converge_unless_unmanaged(ctx, &task, checked.0, partition, &account).await?,
            converge_unless_unmanaged(ctx, &execution, checked.1, partition, &account).await?,
        )
    };
    Ok(ctx
        .report()
        .output(ecskit_contract::outputs::TASK_ROLE_ARN, task_arn)
        .output(ecskit_contract::outputs::TASK_ROLE_NAME, task.name)
        .output(ecskit_contract::outputs::EXECUTION_ROLE_ARN, exec_arn)
        .output(
            ecskit_contract::outputs::EXECUTION_ROLE_NAME,
            execution.name,
        ))
}
