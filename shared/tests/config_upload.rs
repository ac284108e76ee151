//! config-upload against the emulator: what a run creates, that a second run changes nothing,
//! that only changed files go up, `--delete`, multipart uploads, input errors before any call,
//! a failure part-way and its re-run, `--strict`, `--dry-run` and `--delete-bucket`.

use std::path::{Path, PathBuf};

use base64::Engine;
use clap::Parser;
use ecskit::aws::Ctx;
use ecskit::config_upload::{Args, ConfigUpload};
use ecskit::step::run;
use ecskit_testkit::{LocalStack, local_stack};
use sha2::{Digest, Sha256};

const BUCKET: &str = "app-config";

fn args(extra: &[&str]) -> Args {
    let mut argv = vec!["config-upload", "--bucket", BUCKET, "--prefix", "prod"];
    argv.extend_from_slice(extra);
    Args::try_parse_from(argv).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A config directory: two properties files and one JSON file in a subdirectory.
fn config_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conf");
    std::fs::create_dir_all(dir.join("extra")).unwrap();
    std::fs::write(dir.join("global.properties"), "jcc.count=2\n").unwrap();
    std::fs::write(dir.join("keys.properties"), "api.key=k-1234\n").unwrap();
    std::fs::write(dir.join("extra/flags.json"), "{\"debug\": false}\n").unwrap();
    (tmp, dir)
}

fn ops(ctx: &Ctx) -> Vec<String> {
    ctx.calls()
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect()
}

fn sha_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

async fn object_bytes(ctx: &Ctx, key: &str) -> Vec<u8> {
    let out = ctx
        .s3()
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

async fn keys_in(ctx: &Ctx, bucket: &str) -> Vec<String> {
    let out = ctx
        .s3()
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

async fn bucket_exists(stack: &LocalStack, bucket: &str) -> bool {
    let ctx = stack.ctx(false).await;
    ctx.s3().head_bucket().bucket(bucket).send().await.is_ok()
}

fn strings(report: &ecskit::Report, name: &str) -> Vec<String> {
    report
        .get(name)
        .and_then(|v| v.as_array())
        .unwrap_or_else(|| panic!("no list {name}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn uploads_into_a_new_locked_down_bucket() {
    let stack = local_stack();
    let (tmp, dir) = config_dir();
    let single = tmp.path().join("app.slpropz");
    std::fs::write(&single, [0u8, 1, 2, 3]).unwrap();
    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&[s(&dir), s(&single)]))
        .await
        .unwrap();

    assert!(report.changed);
    assert_eq!(report.get_str("CONFIG_BUCKET").unwrap(), BUCKET);
    assert_eq!(report.get_str("CONFIG_PREFIX").unwrap(), "prod");
    assert_eq!(
        report.get_str("CONFIG_URI").unwrap(),
        "s3://app-config/prod/"
    );
    let expected = [
        "prod/app.slpropz",
        "prod/extra/flags.json",
        "prod/global.properties",
        "prod/keys.properties",
    ];
    assert_eq!(strings(&report, "uploaded"), expected);
    assert!(strings(&report, "unchanged").is_empty());
    let mut listed = keys_in(&ctx, BUCKET).await;
    listed.sort();
    assert_eq!(listed, expected);

    // The bucket: in the region asked for, tagged, private, encrypted by default.
    let s3 = ctx.s3();
    let loc = s3
        .get_bucket_location()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(loc.location_constraint().unwrap().as_str(), "us-west-2");
    let tags = s3.get_bucket_tagging().bucket(BUCKET).send().await.unwrap();
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "managed-by" && t.value() == "ecskit")
    );
    let bpa = s3
        .get_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let c = bpa.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            c.block_public_acls(),
            c.ignore_public_acls(),
            c.block_public_policy(),
            c.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let enc = s3
        .get_bucket_encryption()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );

    // Each object: encrypted, typed, checksummed, tagged, with exactly the file's bytes.
    let local = std::fs::read(dir.join("keys.properties")).unwrap();
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("prod/keys.properties")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.server_side_encryption().unwrap().as_str(), "AES256");
    assert!(head.content_type().unwrap().starts_with("text/plain"));
    assert_eq!(head.checksum_sha256().unwrap(), sha_b64(&local));
    assert_eq!(
        head.metadata().unwrap()["sha256"],
        hex::encode(Sha256::digest(&local))
    );
    let json = s3
        .head_object()
        .bucket(BUCKET)
        .key("prod/extra/flags.json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.content_type(), Some("application/json"));
    let otags = s3
        .get_object_tagging()
        .bucket(BUCKET)
        .key("prod/app.slpropz")
        .send()
        .await
        .unwrap();
    assert!(otags.tag_set().iter().any(|t| t.key() == "managed-by"));
    assert_eq!(object_bytes(&ctx, "prod/keys.properties").await, local);
    assert_eq!(object_bytes(&ctx, "prod/app.slpropz").await, [0u8, 1, 2, 3]);
}

#[tokio::test]
async fn a_second_run_uploads_nothing() {
    let stack = local_stack();
    let (_tmp, dir) = config_dir();
    let first = stack.ctx(false).await;
    run::<ConfigUpload>(&first, &args(&[s(&dir)]))
        .await
        .unwrap();
    assert!(ops(&first).iter().filter(|o| *o == "PutObject").count() == 3);

    let second = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&second, &args(&[s(&dir)]))
        .await
        .unwrap();
    assert!(!report.changed);
    assert!(report.actions.is_empty());
    assert_eq!(ops(&second), Vec::<String>::new());
    assert!(strings(&report, "uploaded").is_empty());
    assert_eq!(strings(&report, "unchanged").len(), 3);
    assert_eq!(report.calls.mutating, 0);
    assert!(report.calls.total > 0, "the second run did look");
}

#[tokio::test]
async fn one_changed_file_is_one_upload() {
    let stack = local_stack();
    let (_tmp, dir) = config_dir();
    run::<ConfigUpload>(&stack.ctx(false).await, &args(&[s(&dir)]))
        .await
        .unwrap();

    std::fs::write(dir.join("global.properties"), "jcc.count=3\n").unwrap();
    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&[s(&dir)])).await.unwrap();
    assert!(report.changed);
    assert_eq!(ops(&ctx), ["PutObject"]);
    assert_eq!(strings(&report, "uploaded"), ["prod/global.properties"]);
    assert_eq!(
        strings(&report, "unchanged"),
        ["prod/extra/flags.json", "prod/keys.properties"]
    );
    assert_eq!(
        object_bytes(&ctx, "prod/global.properties").await,
        b"jcc.count=3\n"
    );
}

#[tokio::test]
async fn delete_removes_only_our_objects_without_a_local_file() {
    let stack = local_stack();
    let (_tmp, dir) = config_dir();
    let ctx = stack.ctx(false).await;
    run::<ConfigUpload>(&ctx, &args(&[s(&dir)])).await.unwrap();
    // Someone else's object under the prefix (untagged), and one outside the prefix.
    for key in ["prod/theirs.txt", "other/keep.txt"] {
        ctx.s3()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(b"x".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    std::fs::remove_file(dir.join("extra/flags.json")).unwrap();

    // Without --delete, nothing is removed.
    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&[s(&dir)])).await.unwrap();
    assert!(!report.changed);
    assert!(ops(&ctx).is_empty());

    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&["--delete", s(&dir)]))
        .await
        .unwrap();
    assert!(report.changed);
    assert_eq!(strings(&report, "deleted"), ["prod/extra/flags.json"]);
    assert_eq!(ops(&ctx), ["DeleteObjects"]);
    let mut left = keys_in(&ctx, BUCKET).await;
    left.sort();
    assert_eq!(
        left,
        [
            "other/keep.txt",
            "prod/global.properties",
            "prod/keys.properties",
            "prod/theirs.txt"
        ]
    );

    // Converged: nothing more to delete.
    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&["--delete", s(&dir)]))
        .await
        .unwrap();
    assert!(!report.changed);
    assert!(ops(&ctx).is_empty());
}

#[tokio::test]
async fn a_large_file_goes_up_in_parts() {
    let stack = local_stack();
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("bundle.slpropz");
    // 11 MiB + 3 bytes of varied bytes: parts of 5 MiB, 5 MiB and 1 MiB + 3.
    let data: Vec<u8> = (0..(11 * 1024 * 1024 + 3) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &data).unwrap();
    let flags = [
        "--multipart-threshold",
        "5MiB",
        "--part-size",
        "5MiB",
        s(&big),
    ];

    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&flags)).await.unwrap();
    assert_eq!(strings(&report, "uploaded"), ["prod/bundle.slpropz"]);
    let after_bucket: Vec<String> = ops(&ctx)
        .into_iter()
        .skip_while(|o| o != "CreateMultipartUpload")
        .collect();
    assert_eq!(
        after_bucket,
        [
            "CreateMultipartUpload",
            "UploadPart",
            "UploadPart",
            "UploadPart",
            "CompleteMultipartUpload"
        ]
    );
    assert!(!ops(&ctx).contains(&"PutObject".to_string()));
    let got = object_bytes(&ctx, "prod/bundle.slpropz").await;
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the object's bytes differ from the file's");
    let head = ctx
        .s3()
        .head_object()
        .bucket(BUCKET)
        .key("prod/bundle.slpropz")
        .send()
        .await
        .unwrap();
    assert_eq!(head.server_side_encryption().unwrap().as_str(), "AES256");
    assert_eq!(
        head.metadata().unwrap()["sha256"],
        hex::encode(Sha256::digest(&data))
    );

    // The multipart object compares by its metadata: a second run uploads nothing.
    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&flags)).await.unwrap();
    assert!(!report.changed);
    assert!(ops(&ctx).is_empty());
}

#[tokio::test]
async fn a_missing_file_exits_2_before_any_call() {
    let stack = local_stack();
    let (tmp, dir) = config_dir();
    let missing = tmp.path().join("keys-prod.properties");
    let ctx = stack.ctx(false).await;
    let err = run::<ConfigUpload>(&ctx, &args(&[s(&dir), s(&missing)]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("keys-prod.properties"), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(ctx.calls().calls().is_empty(), "{:?}", ctx.calls().calls());
    assert!(!bucket_exists(&stack, BUCKET).await);

    // A bad bucket name and a missing file are both reported at once.
    let err =
        Args::try_parse_from(["config-upload", "--bucket", "Bad_Bucket", s(&missing)]).unwrap();
    let err = run::<ConfigUpload>(&ctx, &err).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().starts_with("2 problems"), "{err}");
    assert!(ctx.calls().calls().is_empty());
}

#[tokio::test]
async fn dry_run_lists_the_plan_and_changes_nothing() {
    let stack = local_stack();
    let (_tmp, dir) = config_dir();
    let ctx = stack.ctx(true).await;
    let report = run::<ConfigUpload>(&ctx, &args(&["--dry-run", s(&dir)]))
        .await
        .unwrap();
    assert!(report.changed && report.dry_run);
    assert!(ops(&ctx).is_empty(), "{:?}", ops(&ctx));
    assert!(
        report
            .actions
            .iter()
            .any(|a| a == "create bucket app-config in us-west-2")
    );
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.starts_with("upload prod/keys.properties"))
    );
    assert_eq!(
        report.get_str("CONFIG_URI").unwrap(),
        "s3://app-config/prod/"
    );
    assert!(!bucket_exists(&stack, BUCKET).await);
}

#[tokio::test]
async fn an_unprotected_existing_bucket_warns_and_strict_refuses() {
    let stack = local_stack();
    let (_tmp, dir) = config_dir();
    let ctx = stack.ctx(false).await;
    let s3 = ctx.s3();
    s3.create_bucket()
        .bucket(BUCKET)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_acl()
        .bucket(BUCKET)
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();

    let ctx = stack.ctx(false).await;
    let err = run::<ConfigUpload>(&ctx, &args(&["--strict", s(&dir)]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(text.contains("is public"), "{text}");
    assert!(
        text.contains("does not block public access") || text.contains("no Block Public Access"),
        "{text}"
    );
    assert!(ops(&ctx).is_empty());
    assert!(keys_in(&ctx, BUCKET).await.is_empty());

    // Without --strict the findings are warnings, and the files go up (encrypted per object).
    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&[s(&dir)])).await.unwrap();
    assert_eq!(strings(&report, "uploaded").len(), 3);
    assert_eq!(ops(&ctx), ["PutObject", "PutObject", "PutObject"]);
}

#[tokio::test]
async fn delete_bucket_removes_only_a_managed_bucket() {
    let stack = local_stack();
    let (_tmp, dir) = config_dir();
    let ctx = stack.ctx(false).await;
    run::<ConfigUpload>(&ctx, &args(&["--versioning", s(&dir)]))
        .await
        .unwrap();
    assert!(ops(&ctx).contains(&"PutBucketVersioning".to_string()));
    // A second version of one object: all versions must go for the bucket to be deletable.
    std::fs::write(dir.join("keys.properties"), "api.key=k-5678\n").unwrap();
    run::<ConfigUpload>(&stack.ctx(false).await, &args(&[s(&dir)]))
        .await
        .unwrap();

    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&["--delete-bucket"]))
        .await
        .unwrap();
    assert!(report.changed);
    assert_eq!(strings(&report, "deleted").len(), 3);
    assert!(!bucket_exists(&stack, BUCKET).await);

    // Gone already: nothing to do.
    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&["--delete-bucket"]))
        .await
        .unwrap();
    assert!(!report.changed);

    // Not ours: refused. (Another name: moto keeps the tags of a deleted bucket for a new
    // bucket of the same name.)
    let theirs = "their-config";
    ctx.s3()
        .create_bucket()
        .bucket(theirs)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ctx = stack.ctx(false).await;
    let theirs_args =
        Args::try_parse_from(["config-upload", "--bucket", theirs, "--delete-bucket"]).unwrap();
    let err = run::<ConfigUpload>(&ctx, &theirs_args).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("not tagged managed-by=ecskit"));
    assert!(ops(&ctx).is_empty());
    assert!(bucket_exists(&stack, theirs).await);
}

/// A failure part-way: IAM enforcement denies one key, so the first file goes up and the second
/// fails. The error names what was uploaded; a re-run with full rights uploads only the rest.
#[tokio::test]
async fn a_failure_part_way_reports_progress_and_a_rerun_finishes() {
    let stack = local_stack();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conf");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.properties"), "a=1\n").unwrap();
    std::fs::write(dir.join("b.properties"), "b=2\n").unwrap();

    // The bucket exists (made by a first run with one file), and a user may do anything on
    // it except write prod/b.properties.
    let admin = stack.ctx(false).await;
    let only_a = tmp.path().join("a.properties");
    std::fs::write(&only_a, "a=0\n").unwrap();
    run::<ConfigUpload>(&admin, &args(&[s(&only_a)]))
        .await
        .unwrap();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": [
                format!("arn:aws:s3:::{BUCKET}"), format!("arn:aws:s3:::{BUCKET}/*")]},
            {"Effect": "Deny", "Action": "s3:PutObject",
             "Resource": format!("arn:aws:s3:::{BUCKET}/prod/b.properties")}
        ]
    });
    let limited = stack.ctx_as_user_with_policy("uploader", &policy).await;
    stack.enforce_iam();
    let err = run::<ConfigUpload>(&limited, &args(&[s(&dir)]))
        .await
        .unwrap_err();
    // Enforcement off again, so the admin can look and re-run.
    stack.stop_enforcing_iam();
    assert_eq!(err.exit_code(), 1);
    let text = err.to_string();
    assert!(
        text.contains("uploading s3://app-config/prod/b.properties"),
        "{text}"
    );
    assert!(text.contains("uploaded prod/a.properties"), "{text}");
    assert_eq!(
        object_bytes(&admin, "prod/a.properties").await,
        b"a=1\n",
        "the first file went up before the failure"
    );

    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&[s(&dir)])).await.unwrap();
    assert_eq!(strings(&report, "uploaded"), ["prod/b.properties"]);
    assert_eq!(strings(&report, "unchanged"), ["prod/a.properties"]);
    assert_eq!(ops(&ctx), ["PutObject"]);
}

/// `--delete-bucket` removes what is under the prefix; the bucket goes only when nothing else
/// is in it, and the report says why it was kept.
#[tokio::test]
async fn delete_bucket_keeps_other_prefixes_and_the_bucket_that_holds_them() {
    let stack = local_stack();
    let (_tmp, dir) = config_dir();
    let ctx = stack.ctx(false).await;
    run::<ConfigUpload>(&ctx, &args(&[s(&dir)])).await.unwrap();
    for key in ["staging/global.properties", "notes.txt"] {
        ctx.s3()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(b"someone else's".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let ctx = stack.ctx(false).await;
    let report = run::<ConfigUpload>(&ctx, &args(&["--delete-bucket"]))
        .await
        .unwrap();
    assert_eq!(
        strings(&report, "deleted"),
        [
            "prod/extra/flags.json",
            "prod/global.properties",
            "prod/keys.properties"
        ]
    );
    assert_eq!(
        report.get_str("kept").as_deref(),
        Some(
            "bucket app-config was kept: it holds 2 object version(s) outside prod/, which this step did not put there"
        )
    );
    assert!(bucket_exists(&stack, BUCKET).await);
    assert!(!ops(&ctx).contains(&"DeleteBucket".to_string()));
    for key in ["staging/global.properties", "notes.txt"] {
        assert!(
            ctx.s3()
                .head_object()
                .bucket(BUCKET)
                .key(key)
                .send()
                .await
                .is_ok(),
            "{key} was kept"
        );
    }
}

/// A CreateBucket whose first answer was lost: the bucket exists (ours) when the retry comes,
/// and S3 answers BucketAlreadyOwnedByYou outside us-east-1. That is success: the step goes on
/// converging the bucket.
#[tokio::test]
async fn a_retried_create_bucket_meeting_our_own_bucket_converges() {
    let stack = local_stack();
    let ctx = stack.ctx(false).await;
    let s3 = ctx.s3();
    let create = || {
        s3.create_bucket()
            .bucket(BUCKET)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                    .build(),
            )
    };
    // The first attempt was applied; its answer is what got lost.
    create().send().await.unwrap();
    let again = create().send().await.unwrap_err();
    assert_eq!(
        ecskit::error::sdk_code(&again),
        Some("BucketAlreadyOwnedByYou")
    );

    let ctx = stack.ctx(false).await;
    ecskit::config_upload::bucket::create(
        &ctx,
        &ctx.s3(),
        BUCKET,
        &ecskit::config_upload::bucket::NewBucket {
            region: "us-west-2",
            kms_key: None,
            versioning: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        ops(&ctx),
        [
            "CreateBucket",
            "PutBucketTagging",
            "PutPublicAccessBlock",
            "PutBucketEncryption"
        ]
    );
    let tags = ctx
        .s3()
        .get_bucket_tagging()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert!(ecskit::aws::is_managed(
        tags.tag_set().iter().map(|t| (t.key(), t.value()))
    ));
}

#[tokio::test]
async fn kms_key_encrypts_each_object_and_a_new_key_reuploads() {
    let stack = local_stack();
    let (_tmp, dir) = config_dir();
    let key1 = "arn:aws:kms:us-west-2:123456789012:key/11111111-2222-3333-4444-555555555555";
    let key2 = "arn:aws:kms:us-west-2:123456789012:key/66666666-7777-8888-9999-000000000000";
    let ctx = stack.ctx(false).await;
    run::<ConfigUpload>(&ctx, &args(&["--kms-key", key1, s(&dir)]))
        .await
        .unwrap();
    let head = ctx
        .s3()
        .head_object()
        .bucket(BUCKET)
        .key("prod/global.properties")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
    );
    assert_eq!(head.ssekms_key_id(), Some(key1));

    // The same key again: nothing to do.
    let ctx = stack.ctx(false).await;
    let again = run::<ConfigUpload>(&ctx, &args(&["--kms-key", key1, s(&dir)]))
        .await
        .unwrap();
    assert!(!again.changed, "{:?}", again.actions);
    assert!(ops(&ctx).is_empty(), "{:?}", ops(&ctx));

    // Another key: every object is uploaded again under it (same content, other encryption).
    let ctx = stack.ctx(false).await;
    let rekeyed = run::<ConfigUpload>(&ctx, &args(&["--kms-key", key2, s(&dir)]))
        .await
        .unwrap();
    assert!(rekeyed.changed);
    assert_eq!(strings(&rekeyed, "uploaded").len(), 3, "{rekeyed:?}");
    let head = ctx
        .s3()
        .head_object()
        .bucket(BUCKET)
        .key("prod/global.properties")
        .send()
        .await
        .unwrap();
    assert_eq!(head.ssekms_key_id(), Some(key2));
}
