//! config-upload: configuration files (`global.properties`, `keys.properties`, a `.slpropz`)
//! to S3, encrypted, only what changed.
//!
//! The order of work is what makes the step safe to run again: every local file is found,
//! sized and hashed before the first AWS call (a missing file exits 2 with nothing created);
//! then the bucket is found or created locked down; then each file is compared by SHA-256 with
//! the object under the prefix (kept as the object's `sha256` metadata, so objects that went up
//! in parts compare too) and only new or changed files are uploaded, one at a time, so a
//! failure names what already went up and a re-run uploads only the rest. File contents are
//! read to be hashed and streamed to S3, and never formatted into a log line or a report.

pub mod bucket;
pub mod files;
pub mod objects;
pub mod plan;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::aws::Ctx;
use crate::cli::Common;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::{Report, validate};

use files::LocalFile;
use objects::{delete_objects, multipart, object_is_managed, put, remote_state};
use plan::full_key;

#[derive(clap::Parser, Debug)]
#[command(
    name = "config-upload",
    version,
    about = "Upload configuration files to S3: encrypted, checksummed, only what changed.",
    after_help = "Examples:\n  \
      config-upload --bucket acme-config --prefix snaplex/prod global.properties keys.properties\n  \
      eval \"$(config-upload --bucket acme-config --prefix snaplex/prod config/ --output env)\"\n  \
      config-upload --bucket acme-config --prefix snaplex/prod --delete config/   # drop stale keys\n  \
      config-upload --bucket acme-config --delete-bucket\n\n\
      Reads: ECSKIT_CONFIG_BUCKET, ECSKIT_CONFIG_PREFIX, ECSKIT_CONFIG_KMS_KEY, ECSKIT_CONFIG_MULTIPART_THRESHOLD\n\
      Prints: ECSKIT_CONFIG_BUCKET, ECSKIT_CONFIG_PREFIX, ECSKIT_CONFIG_URI, ECSKIT_CHANGED"
)]
pub struct Args {
    /// Files and directories to upload. A file's key is its name; the files below a directory
    /// keep their path relative to that directory.
    #[arg(value_name = "FILE|DIR", required_unless_present = "delete_bucket")]
    pub paths: Vec<PathBuf>,

    /// The S3 bucket. Created (locked down, tagged managed-by=ecskit) when missing.
    #[arg(long, env = "ECSKIT_CONFIG_BUCKET")]
    pub bucket: String,

    /// The key prefix the files go under (no leading '/'). Empty: the top of the bucket.
    #[arg(long, env = "ECSKIT_CONFIG_PREFIX", default_value = "")]
    pub prefix: String,

    /// Encrypt with this KMS key (id, ARN or alias) instead of SSE-S3: the bucket's default
    /// encryption (when the bucket is created) and every object uploaded.
    #[arg(long, env = "ECSKIT_CONFIG_KMS_KEY")]
    pub kms_key: Option<String>,

    /// Turn on versioning for the bucket (new or existing).
    #[arg(long)]
    pub versioning: bool,

    /// Fail (exit 2, nothing uploaded) when an existing bucket is public, does not block
    /// public access fully, or has no default encryption; without it these are warnings.
    #[arg(long)]
    pub strict: bool,

    /// Delete objects under the prefix that have no local file (only those tagged
    /// managed-by=ecskit).
    #[arg(long)]
    pub delete: bool,

    /// Files of this size or more go up in parts (bytes, or with KiB/MiB/GiB).
    #[arg(long, default_value = "8MiB", value_parser = files::parse_size, env = "ECSKIT_CONFIG_MULTIPART_THRESHOLD")]
    pub multipart_threshold: u64,

    /// The size of each part of a multipart upload (5MiB to 5GiB; raised when a file would
    /// need more than 10,000 parts).
    #[arg(long, default_value = "8MiB", value_parser = files::parse_size)]
    pub part_size: u64,

    /// Delete everything under --prefix instead of uploading; then the bucket itself, when it is
    /// tagged managed-by=ecskit and holds nothing else.
    #[arg(long, conflicts_with_all = ["paths", "delete", "versioning", "kms_key"])]
    pub delete_bucket: bool,

    // The shared flags come last: their help headings would otherwise swallow the flags above.
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

crate::step_flags!(Args);

/// The config-upload step.
pub struct ConfigUpload;

impl crate::step::Step for ConfigUpload {
    const STEP: ecskit_contract::Step = ecskit_contract::Step::ConfigUpload;
    type Args = Args;
    type Checked = Checked;

    // Everything the user gave is checked before the first AWS call (and before the AWS
    // configuration is even loaded).
    fn check(args: &Args) -> Result<Checked> {
        check(args)
    }

    async fn execute(ctx: &Ctx, args: &Args, checked: Checked) -> Result<Report> {
        execute(ctx, args, checked).await
    }
}

/// The inputs, checked: the prefix without its trailing '/', and the local files.
pub struct Checked {
    prefix: String,
    local: Vec<LocalFile>,
}

fn check(args: &Args) -> Result<Checked> {
    let mut problems = Vec::new();
    if let Err(p) = validate::bucket_name(&args.bucket) {
        problems.push(format!("--bucket: {p}"));
    }
    let prefix = match validate::s3_prefix(&args.prefix) {
        Ok(p) => p,
        Err(p) => {
            problems.push(format!("--prefix: {p}"));
            String::new()
        }
    };
    if args.kms_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        problems.push(
            "--kms-key is empty: pass a KMS key id, ARN or alias, or leave it out for SSE-S3"
                .into(),
        );
    }
    if !(files::MIN_PART_SIZE..=files::MAX_PART_SIZE).contains(&args.part_size) {
        problems.push(format!(
            "--part-size {} is out of range: S3 takes parts of 5MiB to 5GiB",
            args.part_size
        ));
    }
    let local = if args.delete_bucket {
        Vec::new()
    } else {
        match files::collect(&args.paths, args.multipart_threshold, args.part_size) {
            Ok(f) => f,
            Err(p) => {
                problems.extend(p);
                Vec::new()
            }
        }
    };
    if !problems.is_empty() {
        return Err(Error::inputs(problems));
    }
    Ok(Checked { prefix, local })
}

async fn execute(ctx: &Ctx, args: &Args, checked: Checked) -> Result<Report> {
    let Checked { prefix, local } = checked;
    for f in &local {
        tracing::debug!(
            "{}: {} bytes, sha256 {}{}",
            f.path.display(),
            f.size,
            f.sha256_hex,
            f.parts
                .as_ref()
                .map(|p| format!(", {} parts", p.sha256_b64.len()))
                .unwrap_or_default()
        );
    }

    let s3 = ctx.s3();
    let bucket = args.bucket.as_str();
    let uri = if prefix.is_empty() {
        format!("s3://{bucket}/")
    } else {
        format!("s3://{bucket}/{prefix}/")
    };

    if args.delete_bucket {
        let region = ctx.region().map(str::to_string);
        let deleted = if !bucket::exists(&s3, bucket, region.as_deref()).await? {
            tracing::info!("bucket {bucket} does not exist: nothing to delete");
            bucket::Deleted::default()
        } else if !bucket::is_managed(&s3, bucket).await? {
            return Err(Error::input(format!(
                "refusing to delete bucket {bucket}: it is not tagged managed-by=ecskit"
            ))
            .hint("config-upload deletes only buckets it created; delete this one yourself if you mean to"));
        } else {
            bucket::delete(ctx, &s3, bucket, &prefix).await?
        };
        let mut report = ctx
            .report()
            .output(ecskit_contract::outputs::CONFIG_BUCKET, bucket)
            .detail("deleted", deleted.keys);
        if let Some(why) = deleted.kept {
            report = report.detail("kept", why);
        }
        return Ok(report);
    }

    let region = ctx.require_region()?;
    let exists = bucket::exists(&s3, bucket, Some(&region)).await?;
    if exists {
        let findings = bucket::findings(&s3, bucket).await;
        if args.strict && !findings.is_empty() {
            return Err(Error::inputs(findings).hint(
                "--strict refuses a bucket that is not private and encrypted: fix the bucket (Block Public Access, default encryption) or pick another --bucket",
            ));
        }
        for f in &findings {
            tracing::warn!("{f}");
        }
        if args.versioning && !bucket::versioning_enabled(&s3, bucket).await? {
            bucket::enable_versioning(ctx, &s3, bucket).await?;
        }
    } else {
        bucket::create(
            ctx,
            &s3,
            bucket,
            &bucket::NewBucket {
                region: &region,
                kms_key: args.kms_key.as_deref(),
                versioning: args.versioning,
            },
        )
        .await?;
    }

    // What is there: every key under the prefix, and for those with a local file, its
    // checksum and encryption. A bucket that does not exist yet (dry run) holds nothing.
    let remote = if exists {
        remote_state(&s3, bucket, &prefix, &local, args.kms_key.as_deref()).await?
    } else {
        BTreeMap::new()
    };
    let wanted: BTreeMap<String, String> = local
        .iter()
        .map(|f| (f.rel.clone(), f.sha256_hex.clone()))
        .collect();
    let plan = plan::plan(&wanted, &remote, args.delete);

    let progress = Progress::new(args.common.quiet);
    let by_rel: BTreeMap<&str, &LocalFile> = local.iter().map(|f| (f.rel.as_str(), f)).collect();
    let mut uploaded: Vec<String> = Vec::new();
    for (rel, reason) in &plan.upload {
        let file = by_rel[rel.as_str()];
        let key = full_key(&prefix, rel);
        let how = if file.parts.is_some() {
            ", in parts"
        } else {
            ""
        };
        if ctx.apply(format!(
            "upload {key} ({} bytes, {}{how})",
            file.size,
            reason.as_str()
        )) {
            let result = match &file.parts {
                None => put(&s3, bucket, &key, file, args.kms_key.as_deref()).await,
                Some(_) => {
                    multipart(&s3, &progress, bucket, &key, file, args.kms_key.as_deref()).await
                }
            };
            if let Err(e) = result {
                return Err(partial(e, &uploaded, &[]));
            }
        }
        uploaded.push(key);
    }

    let mut deleted: Vec<String> = Vec::new();
    if !plan.delete.is_empty() {
        let mut ours = Vec::new();
        for rel in &plan.delete {
            let key = full_key(&prefix, rel);
            if object_is_managed(&s3, bucket, &key).await? {
                ours.push(key);
            } else {
                tracing::warn!(
                    "not deleting {key}: it has no local file but is not tagged managed-by=ecskit"
                );
            }
        }
        let mut go = false;
        for key in &ours {
            go = ctx.apply(format!("delete {key}"));
        }
        if go {
            for chunk in ours.chunks(1000) {
                if let Err(e) = delete_objects(&s3, bucket, chunk).await {
                    return Err(partial(e, &uploaded, &deleted));
                }
                deleted.extend(chunk.iter().cloned());
            }
        } else {
            deleted = ours;
        }
    }

    let unchanged: Vec<String> = plan
        .unchanged
        .iter()
        .map(|rel| full_key(&prefix, rel))
        .collect();
    Ok(ctx
        .report()
        .output(ecskit_contract::outputs::CONFIG_BUCKET, bucket)
        .output(ecskit_contract::outputs::CONFIG_PREFIX, prefix.as_str())
        .output(ecskit_contract::outputs::CONFIG_URI, uri)
        .detail("uploaded", uploaded)
        .detail("unchanged", unchanged)
        .detail("deleted", deleted))
}

/// Adds what was already done to an error, so the user knows where the step stopped. A re-run
/// finds those objects unchanged and does the rest.
fn partial(mut err: Error, uploaded: &[String], deleted: &[String]) -> Error {
    let mut done = Vec::new();
    if !uploaded.is_empty() {
        done.push(format!("uploaded {}", uploaded.join(", ")));
    }
    if !deleted.is_empty() {
        done.push(format!("deleted {}", deleted.join(", ")));
    }
    let note = if done.is_empty() {
        " (nothing was uploaded yet; run again once the cause is fixed)".to_string()
    } else {
        format!(
            " (before the failure: {}; run again to finish: unchanged files are skipped)",
            done.join("; ")
        )
    };
    match &mut err {
        Error::Aws { context, .. } | Error::Docker { context, .. } | Error::Io { context, .. } => {
            context.push_str(&note)
        }
        Error::Input { message, .. } | Error::Deployment { message, .. } => message.push_str(&note),
        // config-upload installs no signal handler: a signal ends it as the shell's default.
        Error::Interrupted { .. } => {}
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_what_was_done() {
        let e = partial(
            Error::aws("uploading s3://b/p/c", "boom"),
            &["p/a".into(), "p/b".into()],
            &[],
        );
        assert_eq!(
            e.to_string(),
            "uploading s3://b/p/c (before the failure: uploaded p/a, p/b; run again to finish: unchanged files are skipped): boom"
        );
    }
}
