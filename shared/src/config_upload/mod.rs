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
pub mod plan;

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete,
    ObjectIdentifier, ServerSideEncryption,
};
use base64::Engine as _;

use crate::aws::Ctx;
use crate::cli::Common;
use crate::error::{AwsContext, Error, Result};
use crate::progress::Progress;
use crate::{Report, validate};

use files::LocalFile;
use plan::{Remote, full_key};

/// The metadata key (`x-amz-meta-sha256`) that holds the hex SHA-256 of the whole file.
const SHA_META: &str = "sha256";
/// Object tags, in the query-string form `PutObject` takes.
const OBJECT_TAGGING: &str = "managed-by=ecskit";

#[derive(clap::Parser, Debug)]
#[command(
    name = "config-upload",
    version,
    about = "Upload configuration files to S3: encrypted, checksummed, only what changed.",
    after_help = "Examples:\n  \
      config-upload --bucket my-app-config --prefix prod global.properties keys.properties\n  \
      config-upload --bucket my-app-config --prefix prod --delete config/\n  \
      eval \"$(config-upload --bucket my-app-config --prefix prod config/ --output env)\"\n  \
      config-upload --bucket my-app-config --delete-bucket\n\n\
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

impl crate::cli::StepArgs for Args {
    fn common(&self) -> &Common {
        &self.common
    }
}

pub async fn run(args: Args) -> Result<Report> {
    // Everything the user gave is checked before the first AWS call (and before the AWS
    // configuration is even loaded).
    let checked = check(&args)?;
    let ctx = Ctx::new(&args.aws, args.common.dry_run).await;
    execute(&ctx, &args, checked).await
}

/// [`run`] with a context the caller made (tests count its calls). The inputs are still
/// checked before the first call.
pub async fn run_with(ctx: &Ctx, args: Args) -> Result<Report> {
    let checked = check(&args)?;
    execute(ctx, &args, checked).await
}

/// The inputs, checked: the prefix without its trailing '/', and the local files.
struct Checked {
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
            .output("CONFIG_BUCKET", bucket)
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
        .output("CONFIG_BUCKET", bucket)
        .output("CONFIG_PREFIX", prefix.as_str())
        .output("CONFIG_URI", uri)
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
    }
    err
}

/// Every key under the prefix (relative to it); those with a local file are looked at with
/// HeadObject for their checksum and encryption.
async fn remote_state(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    local: &[LocalFile],
    kms_key: Option<&str>,
) -> Result<BTreeMap<String, Option<Remote>>> {
    let list_prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let mut remote = BTreeMap::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&list_prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.context(format!("listing s3://{bucket}/{list_prefix}"))?;
        for obj in page.contents() {
            if let Some(rel) = obj.key().and_then(|k| k.strip_prefix(&list_prefix))
                && !rel.is_empty()
            {
                remote.insert(rel.to_string(), None);
            }
        }
    }
    for f in local {
        if !remote.contains_key(&f.rel) {
            continue;
        }
        let key = full_key(prefix, &f.rel);
        let head = s3
            .head_object()
            .bucket(bucket)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .context(format!("reading s3://{bucket}/{key}"))?;
        let sha256_hex = head
            .metadata()
            .and_then(|m| m.get(SHA_META))
            .map(|s| s.to_ascii_lowercase())
            .or_else(|| whole_object_sha(head.checksum_sha256()));
        let encrypted_as_wanted =
            encrypted_as_wanted(head.server_side_encryption(), head.ssekms_key_id(), kms_key);
        remote.insert(
            f.rel.clone(),
            Some(Remote {
                sha256_hex,
                encrypted_as_wanted,
            }),
        );
    }
    Ok(remote)
}

/// S3's own SHA-256 of an object, as hex, when it covers the whole object: a composite
/// checksum of a multipart upload (`...-3`) is a checksum of checksums and compares to nothing.
fn whole_object_sha(checksum: Option<&str>) -> Option<String> {
    let c = checksum?;
    if c.contains('-') {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(c)
        .ok()
        .filter(|b| b.len() == 32)
        .map(hex::encode)
}

/// Whether an object is encrypted as this run would encrypt it. A KMS key given as an alias
/// cannot be compared with the key ARN S3 reports, so any SSE-KMS key counts then.
fn encrypted_as_wanted(
    have: Option<&ServerSideEncryption>,
    have_key: Option<&str>,
    want_key: Option<&str>,
) -> bool {
    match want_key {
        None => have == Some(&ServerSideEncryption::Aes256),
        Some(want) => {
            if have != Some(&ServerSideEncryption::AwsKms) {
                return false;
            }
            if want.starts_with("alias/") || want.contains(":alias/") {
                return true;
            }
            match have_key {
                Some(k) => k == want || k.ends_with(&format!("/{want}")),
                None => false,
            }
        }
    }
}

fn sse(kms_key: Option<&str>) -> ServerSideEncryption {
    if kms_key.is_some() {
        ServerSideEncryption::AwsKms
    } else {
        ServerSideEncryption::Aes256
    }
}

async fn file_body(file: &LocalFile, offset: u64, len: u64) -> Result<ByteStream> {
    ByteStream::read_from()
        .path(&file.path)
        .offset(offset)
        .length(Length::Exact(len))
        .build()
        .await
        .map_err(|e| {
            Error::io(
                format!("reading '{}'", file.path.display()),
                std::io::Error::other(e.to_string()),
            )
        })
}

/// One object in one request. The body is streamed from the file: it is never held as bytes
/// that a debug log of the request could print.
async fn put(
    s3: &Client,
    bucket: &str,
    key: &str,
    file: &LocalFile,
    kms_key: Option<&str>,
) -> Result<()> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(file_body(file, 0, file.size).await?)
        .content_length(file.size as i64)
        .content_type(files::content_type(key))
        .server_side_encryption(sse(kms_key))
        .set_ssekms_key_id(kms_key.map(str::to_string))
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(&file.sha256_b64)
        .metadata(SHA_META, &file.sha256_hex)
        .tagging(OBJECT_TAGGING)
        .send()
        .await
        .context(format!("uploading s3://{bucket}/{key}"))?;
    Ok(())
}

/// One object in parts, each with its own SHA-256. A failed upload is aborted, so no parts are
/// left behind to be billed.
async fn multipart(
    s3: &Client,
    progress: &Progress,
    bucket: &str,
    key: &str,
    file: &LocalFile,
    kms_key: Option<&str>,
) -> Result<()> {
    let parts = file.parts.as_ref().expect("multipart files have parts");
    let created = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type(files::content_type(key))
        .server_side_encryption(sse(kms_key))
        .set_ssekms_key_id(kms_key.map(str::to_string))
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .metadata(SHA_META, &file.sha256_hex)
        .tagging(OBJECT_TAGGING)
        .send()
        .await
        .context(format!(
            "starting the multipart upload of s3://{bucket}/{key}"
        ))?;
    let upload_id = created.upload_id().ok_or_else(|| {
        Error::aws(
            format!("starting the multipart upload of s3://{bucket}/{key}"),
            "no upload id in the answer",
        )
    })?;

    let bar = progress.bar(file.size, format!("uploading {key}"), true);
    let result = async {
        let mut done = Vec::with_capacity(parts.sha256_b64.len());
        for (i, sum) in parts.sha256_b64.iter().enumerate() {
            let number = i as i32 + 1;
            let offset = i as u64 * parts.size;
            let len = parts.size.min(file.size - offset);
            let out = s3
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(file_body(file, offset, len).await?)
                .content_length(len as i64)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(sum)
                .send()
                .await
                .context(format!(
                    "uploading part {number} of {} of s3://{bucket}/{key}",
                    parts.sha256_b64.len()
                ))?;
            done.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .checksum_sha256(sum)
                    .build(),
            );
            bar.inc(len);
        }
        s3.complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .context(format!(
                "completing the multipart upload of s3://{bucket}/{key}"
            ))?;
        Ok::<(), Error>(())
    }
    .await;
    match result {
        Ok(()) => {
            bar.finish(format!(
                "uploaded {key} in {} parts",
                parts.sha256_b64.len()
            ));
            Ok(())
        }
        Err(e) => {
            bar.finish(format!("upload of {key} failed"));
            if let Err(abort) = s3
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await
            {
                tracing::warn!(
                    "could not abort the multipart upload of {key} (id {upload_id}): {}",
                    crate::error::flatten(&abort)
                );
            }
            Err(e)
        }
    }
}

/// Whether an object carries `managed-by=ecskit` (only those are deleted by `--delete`).
async fn object_is_managed(s3: &Client, bucket: &str, key: &str) -> Result<bool> {
    let out = s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .context(format!("reading the tags of s3://{bucket}/{key}"))?;
    Ok(crate::aws::is_managed(
        out.tag_set().iter().map(|t| (t.key(), t.value())),
    ))
}

async fn delete_objects(s3: &Client, bucket: &str, keys: &[String]) -> Result<()> {
    let mut del = Delete::builder().quiet(true);
    for key in keys {
        del = del.objects(
            ObjectIdentifier::builder()
                .key(key)
                .build()
                .map_err(bucket::build_error)?,
        );
    }
    let out = s3
        .delete_objects()
        .bucket(bucket)
        .delete(del.build().map_err(bucket::build_error)?)
        .send()
        .await
        .context(format!(
            "deleting {} object(s) from bucket {bucket}",
            keys.len()
        ))?;
    if let Some(e) = out.errors().first() {
        return Err(Error::aws(
            format!("deleting objects from bucket {bucket}"),
            format!(
                "{} object(s) could not be deleted, the first {}: {}",
                out.errors().len(),
                e.key().unwrap_or("?"),
                e.message().or(e.code()).unwrap_or("no reason given")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_checksums_compare_to_nothing() {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(b"x");
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(whole_object_sha(Some(&b64)), Some(hex::encode(digest)));
        assert_eq!(whole_object_sha(Some(&format!("{b64}-3"))), None);
        assert_eq!(whole_object_sha(None), None);
    }

    #[test]
    fn encryption_must_match_the_run() {
        let s3 = Some(&ServerSideEncryption::Aes256);
        let kms = Some(&ServerSideEncryption::AwsKms);
        let arn = Some("arn:aws:kms:us-west-2:123456789012:key/1234abcd");
        assert!(encrypted_as_wanted(s3, None, None));
        assert!(!encrypted_as_wanted(None, None, None));
        assert!(!encrypted_as_wanted(kms, arn, None));
        assert!(encrypted_as_wanted(kms, arn, Some("1234abcd")));
        assert!(encrypted_as_wanted(kms, arn, arn));
        assert!(!encrypted_as_wanted(kms, arn, Some("other")));
        assert!(encrypted_as_wanted(kms, arn, Some("alias/app")));
        assert!(!encrypted_as_wanted(s3, None, Some("alias/app")));
    }

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
