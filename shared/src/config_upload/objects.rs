//! config-upload's object calls: what is under the prefix (keys, checksums, encryption), the
//! uploads (one PutObject, or a multipart upload for large files) and the deletes. The bucket's
//! own calls are in [`super::bucket`].

use std::collections::BTreeMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete,
    ObjectIdentifier, ServerSideEncryption,
};
use base64::Engine as _;

use crate::error::{AwsContext, Error, Result};
use crate::progress::Progress;

use super::bucket;
use super::files::{self, LocalFile};
use super::plan::{Remote, full_key};

/// The metadata key (`x-amz-meta-sha256`) that holds the hex SHA-256 of the whole file.
const SHA_META: &str = "sha256";
/// Object tags, in the query-string form `PutObject` takes.
const OBJECT_TAGGING: &str = "managed-by=ecskit";

/// Every key under the prefix (relative to it); those with a local file are looked at with
/// HeadObject for their checksum and encryption.
pub(super) async fn remote_state(
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
pub(super) fn whole_object_sha(checksum: Option<&str>) -> Option<String> {
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
pub(super) fn encrypted_as_wanted(
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

pub(super) fn sse(kms_key: Option<&str>) -> ServerSideEncryption {
    if kms_key.is_some() {
        ServerSideEncryption::AwsKms
    } else {
        ServerSideEncryption::Aes256
    }
}

pub(super) async fn file_body(file: &LocalFile, offset: u64, len: u64) -> Result<ByteStream> {
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
pub(super) async fn put(
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
pub(super) async fn multipart(
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
pub(super) async fn object_is_managed(s3: &Client, bucket: &str, key: &str) -> Result<bool> {
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

pub(super) async fn delete_objects(s3: &Client, bucket: &str, keys: &[String]) -> Result<()> {
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
}
