//! The bucket side of config-upload: find the bucket (and its region), create it locked down
//! when it is missing, check an existing one for public access and missing encryption, and
//! delete it (only when ecskit made it).

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    VersioningConfiguration,
};

use crate::aws::Ctx;
use crate::error::{AwsContext, Error, Result, from_sdk};

pub use crate::aws::MANAGED_BY;

/// Whether the bucket exists. A bucket in another region than the client's is an input error
/// naming the region to pass; one that answers 403 belongs to someone else (bucket names are
/// global) or is closed to these credentials.
pub async fn exists(s3: &Client, bucket: &str, region: Option<&str>) -> Result<bool> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(out) => {
            if let (Some(have), Some(want)) = (out.bucket_region(), region)
                && have != want
            {
                return Err(wrong_region(bucket, have, want));
            }
            Ok(true)
        }
        Err(err) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            if err.as_service_error().is_some_and(|e| e.is_not_found()) || status == Some(404) {
                return Ok(false);
            }
            let other_region = err
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_string);
            match (status, other_region, region) {
                (Some(301 | 400), Some(have), Some(want)) if have != want => {
                    Err(wrong_region(bucket, &have, want))
                }
                (Some(403), _, _) => Err(Error::aws(
                    format!("looking up bucket {bucket}"),
                    "403 Forbidden",
                )
                .hint(
                    "the bucket exists but belongs to another account or is closed to these credentials: \
                     bucket names are global, so pick another --bucket, or fix the caller's s3:ListBucket permission",
                )),
                _ => Err(from_sdk(format!("looking up bucket {bucket}"), err)),
            }
        }
    }
}

fn wrong_region(bucket: &str, have: &str, want: &str) -> Error {
    Error::input(format!(
        "bucket {bucket} is in region {have}, but this run uses {want}"
    ))
    .hint(format!("pass --region {have} (or set AWS_REGION={have})"))
}

/// What a new bucket gets.
pub struct NewBucket<'a> {
    pub region: &'a str,
    pub kms_key: Option<&'a str>,
    pub versioning: bool,
}

/// Creates the bucket, tagged, with Block Public Access (all four settings), default
/// encryption and, when asked, versioning. The tag goes on right after creation, so a bucket
/// left half-configured by a failure can still be removed with `--delete-bucket`.
pub async fn create(ctx: &Ctx, s3: &Client, bucket: &str, new: &NewBucket<'_>) -> Result<()> {
    let region = new.region;
    if ctx.apply(format!("create bucket {bucket} in {region}")) {
        let mut req = s3.create_bucket().bucket(bucket);
        // us-east-1 is the one region that must not be named as a location constraint.
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match req
            .send()
            .await
            .context(format!("creating bucket {bucket} in {region}"))
        {
            Ok(_) => {}
            // A retried create whose first answer was lost: the bucket is ours already
            // (outside us-east-1 S3 says so with a 409). Go on converging it.
            Err(e) if e.is_aws(&["BucketAlreadyOwnedByYou"]) => {
                tracing::info!("bucket {bucket} is already ours (a retried create): converging it");
            }
            Err(e) => return Err(e),
        }
    }
    if ctx.apply(format!("tag bucket {bucket} managed-by=ecskit")) {
        s3.put_bucket_tagging()
            .bucket(bucket)
            .tagging(managed_tagging()?)
            .send()
            .await
            .context(format!("tagging bucket {bucket}"))?;
    }
    if ctx.apply(format!(
        "block all public access to bucket {bucket} (all four settings)"
    )) {
        s3.put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .context(format!("blocking public access to bucket {bucket}"))?;
    }
    let what = match new.kms_key {
        Some(key) => format!("SSE-KMS with key {key}"),
        None => "SSE-S3".to_string(),
    };
    if ctx.apply(format!(
        "turn on default encryption ({what}) for bucket {bucket}"
    )) {
        let mut default = ServerSideEncryptionByDefault::builder();
        default = match new.kms_key {
            Some(key) => default
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(key),
            None => default.sse_algorithm(ServerSideEncryption::Aes256),
        };
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default.build().map_err(build_error)?)
            .bucket_key_enabled(new.kms_key.is_some())
            .build();
        s3.put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await
            .context(format!("turning on default encryption for bucket {bucket}"))?;
    }
    if new.versioning {
        enable_versioning(ctx, s3, bucket).await?;
    }
    Ok(())
}

pub async fn enable_versioning(ctx: &Ctx, s3: &Client, bucket: &str) -> Result<()> {
    if ctx.apply(format!("turn on versioning for bucket {bucket}")) {
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .context(format!("turning on versioning for bucket {bucket}"))?;
    }
    Ok(())
}

pub async fn versioning_enabled(s3: &Client, bucket: &str) -> Result<bool> {
    let out = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .context(format!("reading the versioning of bucket {bucket}"))?;
    Ok(out.status() == Some(&BucketVersioningStatus::Enabled))
}

fn managed_tagging() -> Result<Tagging> {
    Tagging::builder()
        .tag_set(
            Tag::builder()
                .key(MANAGED_BY.0)
                .value(MANAGED_BY.1)
                .build()
                .map_err(build_error)?,
        )
        .build()
        .map_err(build_error)
}

pub(crate) fn build_error(e: aws_smithy_types::error::operation::BuildError) -> Error {
    Error::aws("building an S3 request", e)
}

/// What is wrong with an existing bucket, one sentence each: public (by policy or ACL), Block
/// Public Access not fully on, no default encryption. A check that cannot be made (no
/// permission to read the setting) is a finding too: an unverified bucket is not a safe one.
pub async fn findings(s3: &Client, bucket: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fully_blocked = false;
    match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(resp) => {
            let c = resp.public_access_block_configuration();
            let off: Vec<&str> = [
                ("BlockPublicAcls", c.and_then(|c| c.block_public_acls())),
                ("IgnorePublicAcls", c.and_then(|c| c.ignore_public_acls())),
                ("BlockPublicPolicy", c.and_then(|c| c.block_public_policy())),
                (
                    "RestrictPublicBuckets",
                    c.and_then(|c| c.restrict_public_buckets()),
                ),
            ]
            .into_iter()
            .filter(|(_, v)| *v != Some(true))
            .map(|(n, _)| n)
            .collect();
            fully_blocked = off.is_empty();
            if !fully_blocked {
                out.push(format!(
                    "bucket {bucket} does not block public access fully: {} off",
                    off.join(", ")
                ));
            }
        }
        Err(e) if crate::error::sdk_is(&e, &["NoSuchPublicAccessBlockConfiguration"]) => out.push(
            format!("bucket {bucket} has no Block Public Access configuration"),
        ),
        Err(e) => out.push(format!(
            "could not read Block Public Access of bucket {bucket}: {}",
            crate::error::flatten(&e)
        )),
    }
    if !fully_blocked {
        match s3.get_bucket_policy_status().bucket(bucket).send().await {
            Ok(resp) => {
                if resp.policy_status().and_then(|s| s.is_public()) == Some(true) {
                    out.push(format!(
                        "bucket {bucket} is public: its bucket policy allows public access"
                    ));
                }
            }
            Err(e) if crate::error::sdk_is(&e, &["NoSuchBucketPolicy"]) => {}
            Err(e) => out.push(format!(
                "could not read the policy status of bucket {bucket}: {}",
                crate::error::flatten(&e)
            )),
        }
        match s3.get_bucket_acl().bucket(bucket).send().await {
            Ok(resp) => {
                let public = resp.grants().iter().any(|g| {
                    g.grantee().and_then(|g| g.uri()).is_some_and(|uri| {
                        uri.ends_with("/global/AllUsers")
                            || uri.ends_with("/global/AuthenticatedUsers")
                    })
                });
                if public {
                    out.push(format!(
                        "bucket {bucket} is public: its ACL grants access to all (authenticated) users"
                    ));
                }
            }
            Err(e) => out.push(format!(
                "could not read the ACL of bucket {bucket}: {}",
                crate::error::flatten(&e)
            )),
        }
    }
    match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) if crate::error::sdk_is(&e, &["ServerSideEncryptionConfigurationNotFoundError"]) => {
            out.push(format!("bucket {bucket} has no default encryption"))
        }
        Err(e) => out.push(format!(
            "could not read the default encryption of bucket {bucket}: {}",
            crate::error::flatten(&e)
        )),
    }
    out
}

/// Whether the bucket carries `managed-by=ecskit`.
pub async fn is_managed(s3: &Client, bucket: &str) -> Result<bool> {
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(crate::aws::is_managed(
            out.tag_set().iter().map(|t| (t.key(), t.value())),
        )),
        Err(e) if crate::error::sdk_is(&e, &["NoSuchTagSet"]) => Ok(false),
        Err(e) => Err(from_sdk(format!("reading the tags of bucket {bucket}"), e)),
    }
}

/// What `--delete-bucket` did.
#[derive(Debug, Default)]
pub struct Deleted {
    /// The keys deleted under the prefix (one entry per key, however many versions it had).
    pub keys: Vec<String>,
    /// Why the bucket itself was kept, when it was.
    pub kept: Option<String>,
}

/// Deletes every version and delete marker under `prefix` (the whole bucket when it is empty),
/// then the bucket itself only if nothing else is left in it: other prefixes hold what other
/// stacks or people put there. The caller has checked the managed-by tag.
pub async fn delete(ctx: &Ctx, s3: &Client, bucket: &str, prefix: &str) -> Result<Deleted> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};

    let under = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let mut objects: Vec<(String, Option<String>)> = Vec::new();
    // ListObjectVersions has no paginator: follow the markers by hand.
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(&under)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .context(format!("listing the objects in bucket {bucket}"))?;
        for v in page.versions() {
            if let Some(k) = v.key() {
                objects.push((k.to_string(), v.version_id().map(str::to_string)));
            }
        }
        for m in page.delete_markers() {
            if let Some(k) = m.key() {
                objects.push((k.to_string(), m.version_id().map(str::to_string)));
            }
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            break;
        }
    }
    let mut keys: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();

    if !objects.is_empty()
        && ctx.apply(format!(
            "delete {} object version(s) ({} key(s)) under s3://{bucket}/{under}",
            objects.len(),
            keys.len()
        ))
    {
        for chunk in objects.chunks(1000) {
            let mut del = Delete::builder().quiet(true);
            for (key, version) in chunk {
                del = del.objects(
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(version.clone())
                        .build()
                        .map_err(build_error)?,
                );
            }
            let out = s3
                .delete_objects()
                .bucket(bucket)
                .delete(del.build().map_err(build_error)?)
                .send()
                .await
                .context(format!("emptying bucket {bucket}"))?;
            if let Some(e) = out.errors().first() {
                return Err(Error::aws(
                    format!("emptying bucket {bucket}"),
                    format!(
                        "{} object(s) could not be deleted, the first {}: {}",
                        out.errors().len(),
                        e.key().unwrap_or("?"),
                        e.message().or(e.code()).unwrap_or("no reason given")
                    ),
                ));
            }
        }
    }
    // Anything left outside the prefix? (In a dry run the prefix's objects are still there:
    // they are not counted.)
    let others = s3
        .list_object_versions()
        .bucket(bucket)
        .max_keys(1000)
        .send()
        .await
        .context(format!("listing what else bucket {bucket} holds"))?;
    let outside = others
        .versions()
        .iter()
        .filter_map(|v| v.key())
        .chain(others.delete_markers().iter().filter_map(|m| m.key()))
        .filter(|k| !k.starts_with(&under))
        .count();
    if outside > 0 {
        let more = if others.is_truncated() == Some(true) {
            " or more"
        } else {
            ""
        };
        let why = format!(
            "bucket {bucket} was kept: it holds {outside}{more} object version(s) outside {}, which this step did not put there",
            if under.is_empty() {
                "the prefix".to_string()
            } else {
                under.clone()
            }
        );
        tracing::info!("{why}");
        return Ok(Deleted {
            keys,
            kept: Some(why),
        });
    }
    ctx.mutate(
        format!("delete bucket {bucket}"),
        s3.delete_bucket().bucket(bucket).send(),
    )
    .await?;
    Ok(Deleted { keys, kept: None })
}
