//! taskdef-register: register task definitions exactly as written.
//!
//! The SDK's typed shapes have no serde support, and a hand-written mapping from JSON to them
//! drops whatever it forgot. So the validated JSON document itself is the request body: the
//! fluent builder gets only what it needs to build its input, and a `mutate_request` hook
//! replaces the serialized body with the document before the request is signed (see
//! [`register`]). Fields this tool has never heard of reach ECS as written.
//!
//! The pieces: [`document`] (parse, unwrap, strip, substitute, overrides), [`validate`]
//! (everything checked before the first call), [`compare`] (equality by meaning, the diff).

pub mod compare;
pub mod document;
pub mod validate;

use std::io::Read;
use std::sync::{Arc, Mutex};

use aws_sdk_ecs::types::{SortOrder, TaskDefinitionField, TaskDefinitionStatus};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;

use crate::aws::{AwsArgs, Ctx};
use crate::cli::Common;
use crate::error::{AwsContext, Error};
use crate::output::OutputFormat;
use crate::{Report, Result};

use document::Overrides;

#[derive(clap::Parser, Debug)]
#[command(
    name = "taskdef-register",
    version,
    about = "Register an ECS task definition exactly as written: validated, compared by meaning, registered only when it changed.",
    after_help = "Examples:\n  taskdef-register --file taskdef.json\n  taskdef-register --file taskdef.json --image web=123456789012.dkr.ecr.us-west-2.amazonaws.com/web:1.4 --diff\n  aws ecs describe-task-definition --task-definition web | taskdef-register --file - --dry-run\n  taskdef-register --family web --delete --keep 5\n\nReads: ECSKIT_TASKDEF_FILE, ECSKIT_IMAGE_URI, ECSKIT_TASK_ROLE_ARN, ECSKIT_EXECUTION_ROLE_ARN\nPrints: ECSKIT_TASK_DEFINITION_ARN, ECSKIT_TASK_FAMILY, ECSKIT_TASK_REVISION, ECSKIT_CHANGED"
)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: AwsArgs,
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
    /// With --delete: keep the newest N ACTIVE revisions.
    #[arg(long, value_name = "N", requires = "delete", default_value_t = 0)]
    pub keep: usize,
}

impl crate::cli::StepArgs for Args {
    fn common(&self) -> &Common {
        &self.common
    }
}

/// A document ready to send, and what was learnt on the way.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub doc: Value,
    pub family: String,
    /// Read-only fields that were removed.
    pub stripped: Vec<String>,
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
    let mut problems = document::substitute(&mut doc, env);
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
    document::add_managed_tag(&mut doc);
    let family = doc["family"].as_str().unwrap_or_default().to_string();
    Ok(Prepared {
        doc,
        family,
        stripped,
    })
}

pub async fn run(args: Args) -> Result<Report> {
    if args.delete {
        return delete(args).await;
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
    let ctx = Ctx::new(&args.aws, args.common.dry_run).await;
    register_prepared(&ctx, &prepared, &args).await
}

/// The part of `run` after validation: compare with the latest ACTIVE revision, register when
/// it differs (or `--force`), and report.
pub async fn register_prepared(ctx: &Ctx, p: &Prepared, args: &Args) -> Result<Report> {
    let ecs = ctx.ecs();
    let family = &p.family;
    let latest = latest_active(&ecs, family).await?;
    let mut diff_text = None;
    if args.diff {
        let text = match &latest {
            Some(l) => compare::diff(
                &l.doc,
                &format!("{family}:{}", l.revision),
                &p.doc,
                "document",
            ),
            None => compare::diff(&Value::Null, "(no ACTIVE revision)", &p.doc, "document"),
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
        eprint!("{}", compare::pretty(&p.doc));
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
        if ctx.apply(format!(
            "register task definition {family} (revision {next})"
        )) {
            let answer = register(&ecs, &p.doc).await?;
            let td = answer.task_definition();
            let arn = td
                .and_then(|t| t.task_definition_arn())
                .ok_or_else(|| {
                    Error::aws("registering the task definition", "no ARN in the answer")
                })?
                .to_string();
            let revision = td.map_or(next, |t| i64::from(t.revision()));
            (arn, revision)
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
    let mut report = ctx
        .report()
        .output("TASK_DEFINITION_ARN", arn)
        .output("TASK_FAMILY", family.clone())
        .output("TASK_REVISION", revision);
    if args.common.output == OutputFormat::Json {
        if let Some(d) = diff_text {
            report = report.detail("diff", d);
        }
        if ctx.dry_run {
            report = report.detail("document", p.doc.clone());
        }
    }
    if let Some(checks) = checks {
        report = checks.add_to(report);
    }
    Ok(report)
}

/// A registered revision, as describe-task-definition returned it (register form, with tags).
#[derive(Clone, Debug)]
pub struct Revision {
    pub arn: String,
    pub revision: i64,
    pub doc: Value,
}

/// Registers `doc` as it is. The builder gets the family and a one-container minimum so it
/// builds; `mutate_request` then replaces the serialized body with the document. That hook
/// runs in `modify_before_signing`, so SigV4 signs the real body; the serializer set
/// Content-Length from its own body, so it is set again here.
pub async fn register(
    ecs: &aws_sdk_ecs::Client,
    doc: &Value,
) -> Result<aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput> {
    let body = serde_json::to_vec(doc)
        .map_err(|e| Error::input(format!("serializing the document: {e}")))?;
    let family = doc["family"].as_str().unwrap_or_default().to_string();
    let first = &doc["containerDefinitions"][0];
    let minimum = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name(first["name"].as_str().unwrap_or_default())
        .image(first["image"].as_str().unwrap_or_default())
        .build();
    ecs.register_task_definition()
        .family(family.clone())
        .container_definitions(minimum)
        .customize()
        .mutate_request(move |req| {
            req.headers_mut()
                .insert("Content-Length", body.len().to_string());
            *req.body_mut() = SdkBody::from(body.clone());
        })
        .send()
        .await
        .context(format!("registering task definition {family}"))
}

/// Copies the raw body of an answer, so the revision can be compared as JSON: the typed
/// output has no serde, and reading it back field by field would drop what it forgot.
#[derive(Debug, Clone, Default)]
struct RawResponse(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for RawResponse {
    fn name(&self) -> &'static str {
        "ecskit-raw-response"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes.to_vec());
        }
        Ok(())
    }
}

/// The ACTIVE revision ARNs of a family, newest first.
pub async fn active_revisions(
    ecs: &aws_sdk_ecs::Client,
    family: &str,
) -> Result<Vec<(i64, String)>> {
    let mut pages = ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.context(format!("listing the revisions of task definition {family}"))?;
        for arn in page.task_definition_arns() {
            // `familyPrefix` is a prefix on some implementations: keep this family only.
            if let Some((name, rev)) = arn.rsplit('/').next().and_then(|s| s.rsplit_once(':'))
                && name == family
                && let Ok(rev) = rev.parse::<i64>()
            {
                found.push((rev, arn.to_string()));
            }
        }
    }
    found.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(found)
}

/// The latest ACTIVE revision of a family with its tags, in register form.
pub async fn latest_active(ecs: &aws_sdk_ecs::Client, family: &str) -> Result<Option<Revision>> {
    let Some((revision, arn)) = active_revisions(ecs, family).await?.into_iter().next() else {
        return Ok(None);
    };
    let raw = RawResponse::default();
    ecs.describe_task_definition()
        .task_definition(&arn)
        .include(TaskDefinitionField::Tags)
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .context(format!("describing task definition {arn}"))?;
    let bytes = raw
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    let answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::aws(
            format!("describing task definition {arn}"),
            format!("the answer is not JSON: {e}"),
        )
    })?;
    let (doc, _) = document::unwrap_and_strip(answer)
        .map_err(|e| Error::aws(format!("describing task definition {arn}"), e))?;
    Ok(Some(Revision { arn, revision, doc }))
}

/// `--delete`: deregister the family's ACTIVE revisions tagged managed-by=ecskit, keeping
/// the newest `--keep`.
async fn delete(args: Args) -> Result<Report> {
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
    if family.is_empty()
        || !family
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::input(format!(
            "--family '{family}' is not a valid family name: 1 to 255 letters, digits, '-' and '_'"
        )));
    }
    let ctx = Ctx::new(&args.aws, args.common.dry_run).await;
    let ecs = ctx.ecs();
    let revisions = active_revisions(&ecs, &family).await?;
    let mut deregistered = Vec::new();
    let mut kept = Vec::new();
    for (i, (rev, arn)) in revisions.iter().enumerate() {
        if i < args.keep {
            kept.push(arn.clone());
            continue;
        }
        let tags = ecs
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .context(format!("listing the tags of {arn}"))?;
        let managed = tags.tags().iter().any(|t| {
            t.key() == Some(crate::aws::MANAGED_BY.0) && t.value() == Some(crate::aws::MANAGED_BY.1)
        });
        if !managed {
            tracing::warn!("leaving {family}:{rev} alone: it is not tagged managed-by=ecskit");
            kept.push(arn.clone());
            continue;
        }
        if ctx.apply(format!("deregister task definition {family}:{rev}")) {
            ecs.deregister_task_definition()
                .task_definition(arn)
                .send()
                .await
                .context(format!("deregistering task definition {family}:{rev}"))?;
        }
        deregistered.push(arn.clone());
    }
    let mut report = ctx
        .report()
        .output("TASK_FAMILY", family)
        .detail("deregistered", deregistered);
    if let Some((rev, arn)) = revisions.first().filter(|_| args.keep > 0) {
        report = report
            .output("TASK_DEFINITION_ARN", arn.clone())
            .output("TASK_REVISION", *rev);
    }
    Ok(report.detail("kept", kept))
}
