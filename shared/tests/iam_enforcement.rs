//! The task role's S3 policy under the emulator's IAM enforcement: credentials holding exactly
//! that policy read the allowed prefix and are denied everywhere else.

use aws_sdk_s3::primitives::ByteStream;
use clap::Parser;
use ecskit::role_create::{Args, RoleCreate};

/// The step as its binary runs it.
async fn run(a: ecskit::role_create::Args) -> ecskit::Result<ecskit::Report> {
    ecskit::step::run_from_flags::<RoleCreate>(&a).await
}

#[tokio::test]
async fn task_role_policy_reads_the_prefix_and_nothing_else() {
    let stack = ecskit_testkit::local_stack();
    let argv = [
        "role-create",
        "--region",
        "us-west-2",
        "--endpoint-url",
        &stack.moto_url,
        "--name",
        "web",
        "--bucket",
        "cfg-bucket",
        "--prefix",
        "app/prod",
        "--access",
        "read",
    ];
    run(Args::try_parse_from(argv).unwrap()).await.unwrap();

    // As test/test (before enforcement): the buckets, the objects, and a user holding exactly
    // the task role's inline policy.
    let admin = stack.ctx(false).await;
    let s3 = admin.s3();
    for bucket in ["cfg-bucket", "other-bucket"] {
        s3.create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    for (bucket, key) in [
        ("cfg-bucket", "app/prod/app.env"),
        ("cfg-bucket", "app/staging/app.env"),
        ("other-bucket", "app/prod/app.env"),
    ] {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"A=1\n"))
            .send()
            .await
            .unwrap();
    }
    let iam = admin.iam();
    let doc = iam
        .get_role_policy()
        .role_name("web-task")
        .policy_name("ecskit-s3")
        .send()
        .await
        .unwrap();
    let doc = ecskit::iam::policy::decode(doc.policy_document()).unwrap();
    let user = stack.ctx_as_user_with_policy("task", &doc).await.s3();
    stack.enforce_iam();

    let got = user
        .get_object()
        .bucket("cfg-bucket")
        .key("app/prod/app.env")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"A=1\n"
    );

    let denied = |r: Result<(), String>, what: &str| {
        let e = r.expect_err(&format!("{what} should be denied"));
        assert!(e.contains("AccessDenied"), "{what}: {e}");
    };
    let get = |bucket: &'static str, key: &'static str| {
        let user = user.clone();
        async move {
            user.get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{:?}", e.into_service_error()))
        }
    };
    denied(
        get("cfg-bucket", "app/staging/app.env").await,
        "another prefix",
    );
    denied(
        get("other-bucket", "app/prod/app.env").await,
        "another bucket",
    );
    let put = user
        .put_object()
        .bucket("cfg-bucket")
        .key("app/prod/new.env")
        .body(ByteStream::from_static(b"B=2\n"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{:?}", e.into_service_error()));
    denied(put, "a write with --access read");
    let del = user
        .delete_object()
        .bucket("cfg-bucket")
        .key("app/prod/app.env")
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{:?}", e.into_service_error()));
    denied(del, "a delete with --access read");
    stack.reset();
}
