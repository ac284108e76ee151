//! taskdef-register: register task definitions exactly as written.
//!
//! The SDK's typed shapes have no serde support, and a hand-written mapping from JSON to them
//! drops whatever it forgot. So the validated JSON document itself is the request body: the
//! fluent builder gets only what it needs to build its input, and a `mutate_request` hook
//! replaces the serialized body with the document before the request is signed (see
//! [`revisions::register`]). Fields this tool has never heard of reach ECS as written.
//!
//! The pieces: this module (flags, the input check, compare-then-register), [`document`]
//! (parse, unwrap, strip, overrides), [`substitute`] (`${NAME}`), [`validate`] (everything
//! checked before the first call), [`compare`] (equality by meaning, the diff), [`mask`] (no
//! secret value in what is printed), [`revisions`] (list, read back, register, converge after a
//! lost answer) and [`delete`].

pub mod compare;
pub mod delete;
pub mod document;
pub mod mask;
pub mod revisions;
pub mod substitute;
pub mod validate;

use std::io::Read;

use serde_json::Value;

use crate::aws::{AwsArgs, Ctx};
use crate::cli::Common;
use crate::error::Error;
use crate::output::OutputFormat;
use crate::step::Step;
use crate::{Report, Result};
use ecskit_contract::outputs;

use document::Overrides;
pub use revisions::{Revision, active_revisions, latest_active, register};

/// The variable --in-use-cluster also reads.
const PRUNE_CLUSTERS_ENV: &str = "ECSKIT_PRUNE_CLUSTERS";

#[derive(clap::Parser, Debug)]
#[command(
    name = "taskdef-register",
    version,
    next_help_heading = "taskdef-register",
    about = "Register an ECS task definition exactly as written: validated, compared by meaning, registered only when it changed.",
    after_help = "Examples:\n  taskdef-register --file snaplex.json --verify\n  eval \"$(role-create --name snaplex --output env)\"; taskdef-register --file snaplex.json\n  taskdef-register --file snaplex.json --image jcc=snaplogic/snaplex:4.36 --diff --dry-run\n  aws ecs describe-task-definition --task-definition snaplex | taskdef-register --file - --dry-run\n  taskdef-register --family snaplex --delete --keep 5\n\nReads: ECSKIT_TASKDEF_FILE, ECSKIT_IMAGE_URI, ECSKIT_TASK_ROLE_ARN, ECSKIT_EXECUTION_ROLE_ARN\nPrints: ECSKIT_TASK_DEFINITION_ARN, ECSKIT_TASK_FAMILY, ECSKIT_TASK_REVISION, ECSKIT_CHANGED\n\nDry run: prints the revision it would register (FAMILY:N+1) and the ARN it would have. Environment values whose names look like credentials are printed as *** in the dry run's document, the --diff and the json output."
)]
pub struct Args {
    /// The task definition JSON (`-` for stdin): the register-task-definition input, or the
    /// output of describe-task-definition with or without its wrapper.
    #[arg(long, short = 'f', env = "ECSKIT_TASKDEF_FILE", value_name = "FILE")]
    pub file: Option<String>,
    /// Set a container's image; with one container the name may be left out. Repeatable.
    #[arg(
        long = "image",
        env = "ECSKIT_IMAGE_URI",
        value_name = "[CONTAINER=]URI"
    )]
    pub images: Vec<String>,
    /// Set taskRoleArn (role-create prints it).
    #[arg(long, env = "ECSKIT_TASK_ROLE_ARN", value_name = "ARN")]
    pub task_role_arn: Option<String>,
    /// Set executionRoleArn (role-create prints it).
    #[arg(long, env = "ECSKIT_EXECUTION_ROLE_ARN", value_name = "ARN")]
    pub execution_role_arn: Option<String>,
    /// Set the family (with --delete: the family whose revisions to deregister).
    #[arg(long)]
    pub family: Option<String>,
    /// Register even when the latest ACTIVE revision means the same.
    #[arg(long, conflicts_with = "delete")]
    pub force: bool,
    /// Print a unified diff against the latest ACTIVE revision (on stderr; in the json output too).
    #[arg(long, conflicts_with = "delete")]
    pub diff: bool,
    /// Accept environment variables that look like credentials with literal values.
    #[arg(long)]
    pub allow_plaintext_secrets: bool,
    /// Check before registering that what the task definition names exists and fits (roles
    /// and their trust, images and their architecture, secrets, env files, log groups, the
    /// roles' permissions); a failed check is exit 2 with nothing registered.
    #[arg(long, env = "ECSKIT_VERIFY")]
    pub verify: bool,
    /// Deregister the family's revisions (only those tagged managed-by=ecskit).
    #[arg(long)]
    pub delete: bool,
    /// With --delete or --prune: keep the newest N ACTIVE revisions.
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// After registering, deregister this family's ACTIVE revisions beyond the newest --keep N
    /// that no service uses (never the one just registered; only those tagged
    /// managed-by=ecskit). A dry run lists them.
    #[arg(long, requires = "keep", conflicts_with = "delete")]
    pub prune: bool,
    /// With --prune: look for the services that use a revision only in these clusters
    /// (repeatable or comma-separated; default: every cluster in the region). A revision a
    /// service of another cluster runs is then not protected.
    #[arg(
        long = "in-use-cluster",
        value_name = "CLUSTER",
        value_delimiter = ',',
        env = PRUNE_CLUSTERS_ENV
    )]
    pub prune_clusters: Vec<String>,

    // The shared flags come last, so `--help` shows the step's own flags first.
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: AwsArgs,
}

crate::step_flags!(Args);

/// The taskdef-register step.
pub struct TaskdefRegister;

/// What the check learnt: the document to register, or the family to delete from.
pub enum Checked {
    Register(Prepared),
    Delete { family: String },
}

impl Step for TaskdefRegister {
    const STEP: ecskit_contract::Step = ecskit_contract::Step::TaskdefRegister;
    type Args = Args;
    type Checked = Checked;

    fn check(args: &Args) -> Result<Checked> {
        if args.keep.is_some() && !args.delete && !args.prune {
            return Err(
                Error::input("--keep N says how many revisions --delete or --prune keeps")
                    .hint("add --prune (after registering) or --delete, or drop --keep"),
            );
        }
        // Given on the command line without --prune it is a mistake; set for a whole job in
        // the environment it is read only by the runs that prune.
        if !args.prune
            && !args.prune_clusters.is_empty()
            && std::env::var_os(PRUNE_CLUSTERS_ENV).is_none()
        {
            return Err(Error::input(
                "--in-use-cluster says where --prune looks for revisions in use",
            )
            .hint("add --prune --keep N, or drop --in-use-cluster"));
        }
        for c in &args.prune_clusters {
            if crate::validate::ecs_name(c, 255).is_err() && !c.starts_with("arn:") {
                return Err(Error::input(format!(
                    "--in-use-cluster '{c}' is not a cluster name: 1 to 255 letters, digits, '-' and '_'"
                )));
            }
        }
        if args.delete {
            return Ok(Checked::Delete {
                family: delete_family(args)?,
            });
        }
        let Some(file) = args.file.clone() else {
            return Err(Error::input("--file is missing")
                .hint("pass --file taskdef.json (or - for stdin), or set ECSKIT_TASKDEF_FILE"));
        };
        let text = read_source(&file)?;
        let overrides = Overrides {
            images: args.images.clone(),
            task_role_arn: args.task_role_arn.clone(),
            execution_role_arn: args.execution_role_arn.clone(),
            family: args.family.clone(),
        };
        let source = if file == "-" { "stdin" } else { file.as_str() };
        let prepared = prepare(
            source,
            &text,
            &overrides,
            args.allow_plaintext_secrets,
            &|name| std::env::var(name).ok(),
        )?;
        if !prepared.stripped.is_empty() {
            tracing::warn!(
                "ignoring read-only fields: {}",
                prepared.stripped.join(", ")
            );
        }
        for w in &prepared.warnings {
            tracing::warn!("{source}: {w}");
        }
        Ok(Checked::Register(prepared))
    }

    async fn execute(ctx: &Ctx, args: &Args, checked: Checked) -> Result<Report> {
        match checked {
            Checked::Register(p) => register_prepared(ctx, &p, args).await,
            Checked::Delete { family } => delete::delete(ctx, args, &family).await,
        }
    }
}

/// A document ready to send, and what was learnt on the way.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub doc: Value,
    pub family: String,
    /// Read-only fields that were removed.
    pub stripped: Vec<String>,
    /// What ECS accepts but will not do as meant ([`validate::warnings`]).
    pub warnings: Vec<String>,
}

fn read_source(file: &str) -> Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::input(format!("--file -: could not read stdin: {e}")))?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).map_err(|e| {
            Error::input(format!("--file {file}: cannot read it: {e}"))
                .hint("give the path of a task definition JSON file, or - for stdin")
        })
    }
}

/// Everything before the first call: parse, unwrap, strip, substitute, override, validate.
/// `env` looks up `${NAME}`.
pub fn prepare(
    source: &str,
    text: &str,
    overrides: &Overrides,
    allow_plaintext_secrets: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Prepared> {
    let parsed = document::parse(source, text)
        .map_err(|e| Error::input(e).hint("fix the JSON syntax at that position"))?;
    let (mut doc, stripped) = document::unwrap_and_strip(parsed).map_err(Error::input)?;
    let mut problems = substitute::substitute(&mut doc, env);
    for (flag, value) in [
        ("--task-role-arn", &overrides.task_role_arn),
        ("--execution-role-arn", &overrides.execution_role_arn),
    ] {
        if let Some(v) = value
            && let Err(e) = crate::validate::role_arn(v)
        {
            problems.push(format!("{flag}: {e}"));
        }
    }
    problems.extend(document::apply_overrides(&mut doc, overrides));
    problems.extend(validate::validate(&doc, allow_plaintext_secrets));
    if !problems.is_empty() {
        return Err(Error::inputs(problems).hint(format!(
            "fix {source} (or the flags named); nothing was registered"
        )));
    }
    let warnings = validate::warnings(&doc);
    document::add_managed_tag(&mut doc);
    let family = doc["family"].as_str().unwrap_or_default().to_string();
    Ok(Prepared {
        doc,
        family,
        stripped,
        warnings,
    })
}

/// After the check: compare with the latest ACTIVE revision, register when
/// it differs (or `--force`), and report.
async fn register_prepared(ctx: &Ctx, p: &Prepared, args: &Args) -> Result<Report> {
    let ecs = ctx.ecs();
    let family = &p.family;
    let latest = revisions::latest_active(&ecs, family).await?;
    let mut diff_text = None;
    if args.diff {
        let text = match &latest {
            Some(l) => {
                let (old, new) = mask::masked_pair(&l.doc, &p.doc);
                compare::diff(&old, &format!("{family}:{}", l.revision), &new, "document")
            }
            None => compare::diff(
                &Value::Null,
                "(no ACTIVE revision)",
                &mask::masked(&p.doc),
                "document",
            ),
        };
        if text.is_empty() {
            eprintln!(
                "no difference from {family}:{}",
                latest.as_ref().map_or(0, |l| l.revision)
            );
        } else {
            eprint!("{text}");
        }
        diff_text = Some(text);
    }
    if ctx.dry_run {
        eprint!("{}", compare::pretty(&mask::masked(&p.doc)));
    }
    let checks = if args.verify {
        let checks =
            crate::verify::verify(ctx, &crate::verify::TaskSubject::from_json(&p.doc), None)
                .await?;
        checks.conclude()?;
        Some(checks)
    } else {
        None
    };

    let unchanged = latest
        .as_ref()
        .filter(|l| !args.force && compare::same(&l.doc, &p.doc));
    let (arn, revision) = if let Some(l) = unchanged {
        tracing::info!(
            "task definition {family}:{} already means the same: nothing to register",
            l.revision
        );
        (l.arn.clone(), l.revision)
    } else {
        let next = latest.as_ref().map_or(1, |l| l.revision + 1);
        if ctx.apply(format!("register task definition {family}:{next}")) {
            let before = latest.as_ref().map(|l| l.revision);
            revisions::register_converging(&ecs, &ctx.clock, &p.doc, before).await?
        } else {
            // Dry run: the ARN the real run would print.
            let arn = match &latest {
                Some(l) => format!(
                    "{}:{next}",
                    l.arn.rsplit_once(':').map_or(l.arn.as_str(), |(a, _)| a)
                ),
                None => {
                    let region = ctx.require_region()?;
                    let account = ctx.account_id().await?;
                    let partition = if region.starts_with("cn-") {
                        "aws-cn"
                    } else if region.starts_with("us-gov-") {
                        "aws-us-gov"
                    } else {
                        "aws"
                    };
                    format!(
                        "arn:{partition}:ecs:{region}:{account}:task-definition/{family}:{next}"
                    )
                }
            };
            (arn, next)
        }
    };
    let pruned = if args.prune {
        let planned = ctx.dry_run && unchanged.is_none();
        // The revision is registered: a prune that fails after it still says which (exit 1
        // with the outputs), so a CI job on failure knows what now exists.
        Some(
            delete::prune(ctx, args, family, &arn, planned)
                .await
                .map_err(|e| {
                    e.with_made_output(outputs::TASK_DEFINITION_ARN, arn.clone())
                        .with_made_output(outputs::TASK_FAMILY, family.clone())
                        .with_made_output(outputs::TASK_REVISION, revision)
                })?,
        )
    } else {
        None
    };
    let mut report = ctx
        .report()
        .output(outputs::TASK_DEFINITION_ARN, arn)
        .output(outputs::TASK_FAMILY, family.clone())
        .output(outputs::TASK_REVISION, revision);
    if let Some((deregistered, kept)) = pruned {
        for arn in &deregistered {
            report = report.note(format!(
                "deregistered {}",
                arn.rsplit('/').next().unwrap_or(arn)
            ));
        }
        report = report
            .detail("deregistered", deregistered)
            .detail("kept", kept);
    }
    if args.common.output == OutputFormat::Json {
        if let Some(d) = diff_text {
            report = report.detail("diff", d);
        }
        if ctx.dry_run {
            report = report.detail("document", mask::masked(&p.doc));
        }
    }
    if let Some(checks) = checks {
        report = checks.add_to(report);
    }
    Ok(report)
}

/// The family `--delete` works on: `--family`, else the file's.
fn delete_family(args: &Args) -> Result<String> {
    let family = match (&args.family, &args.file) {
        (Some(f), _) => f.clone(),
        (None, Some(file)) => {
            let text = read_source(file)?;
            let parsed = document::parse(file, &text).map_err(Error::input)?;
            let (doc, _) = document::unwrap_and_strip(parsed).map_err(Error::input)?;
            doc["family"]
                .as_str()
                .ok_or_else(|| {
                    Error::input(format!("{file}: family: missing")).hint("pass --family")
                })?
                .to_string()
        }
        (None, None) => {
            return Err(Error::input("--delete needs the family")
                .hint("pass --family NAME or --file taskdef.json"));
        }
    };
    if crate::validate::ecs_name(&family, 255).is_err() {
        return Err(Error::input(format!(
            "--family '{family}' is not a valid family name: 1 to 255 letters, digits, '-' and '_'"
        )));
    }
    Ok(family)
}
