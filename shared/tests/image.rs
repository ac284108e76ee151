//! image-push against the local stack: moto for ECR, the Distribution registry whose htpasswd
//! credentials are the ones in moto's ECR token, and the Docker Engine. Every image is built
//! from scratch inside the test, under a name no other test uses.

mod image_support;

use aws_sdk_ecr::types::{EncryptionType, ImageTagMutability};
use clap::Parser;
use ecskit::image_push::{Args, ImagePush};
use image_support::*;

fn args(argv: &[&str]) -> Args {
    let mut full = vec!["image-push"];
    full.extend_from_slice(argv);
    Args::try_parse_from(full).unwrap()
}

/// The step as its binary runs it (the AWS flags come from the stack's environment).
async fn run(args: Args) -> ecskit::Result<ecskit::Report> {
    let ctx = ecskit::aws::Ctx::new(&args.aws, args.common.dry_run).await;
    ecskit::step::run::<ImagePush>(&ctx, &args).await
}

/// `--pull-password-stdin` with the password a test gives instead of stdin.
fn with_password(mut args: Args, password: &str) -> Args {
    args.pull_password = Some(ecskit::secret::Secret::new(password));
    args
}

#[tokio::test]
async fn pushes_a_scratch_image_then_a_second_run_changes_nothing() {
    let stack = local_stack_checked();
    let name = unique("ecskit-test-push");
    let repo = format!("team/{}", unique("app"));
    let source = build_scratch_image(&name, "v1").await;
    let (_, user_password) = ecr_token(&stack).await;

    let argv = [
        source.as_str(),
        "--repository",
        &repo,
        "--tag",
        "v1",
        "--tag",
        "stable",
        "--scan-on-push",
        "--immutable-tags",
        "--registry-endpoint",
        &stack.registry,
    ];
    let first = run(args(&argv))
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(first.changed);
    let digest = first.get_str("IMAGE_DIGEST").unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(
        first.get_str("IMAGE_URI").unwrap(),
        format!("{}/{repo}@{digest}", stack.registry)
    );
    assert_eq!(
        first.get_str("IMAGE_TAG_URI").unwrap(),
        format!("{}/{repo}:v1", stack.registry)
    );
    assert_eq!(
        first.get_str("REPOSITORY_URI").unwrap(),
        format!("{}/{repo}", stack.registry)
    );
    // Two COPY layers, uploaded once: the second tag found them in place.
    assert_eq!(first.get("layers_pushed"), Some(&serde_json::json!(2)));
    assert_eq!(first.get("layers_existing"), Some(&serde_json::json!(2)));

    // The registry itself, asked with the credentials decoded from the emulator's token,
    // serves that digest under both tags.
    for tag in ["v1", "stable"] {
        assert_eq!(
            registry_manifest_digest(&stack.registry, &repo, tag, &user_password),
            Ok(digest.clone()),
            "{tag}"
        );
    }

    // The repository was created as asked and tagged managed-by=ecskit.
    let ctx = stack.ctx(false).await;
    let described = ctx
        .ecr()
        .describe_repositories()
        .repository_names(&repo)
        .send()
        .await
        .unwrap();
    let r = &described.repositories()[0];
    assert_eq!(
        r.image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );
    assert_eq!(
        r.image_scanning_configuration().map(|c| c.scan_on_push()),
        Some(true)
    );
    assert_eq!(
        r.encryption_configuration().map(|c| c.encryption_type()),
        Some(&EncryptionType::Aes256)
    );
    let tags = ctx
        .ecr()
        .list_tags_for_resource()
        .resource_arn(r.repository_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "managed-by" && t.value() == "ecskit"),
        "{tags:?}"
    );

    // Second run: the registry already holds the digest under both tags.
    let second = run(args(&argv))
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(!second.changed, "{second:?}");
    assert_eq!(second.calls.mutating, 0, "{second:?}");
    assert_eq!(second.get("layers_pushed"), Some(&serde_json::json!(0)));
    assert_eq!(second.get_str("IMAGE_DIGEST"), Some(digest.clone()));
    assert!(second.actions.is_empty(), "{:?}", second.actions);

    remove_image(&source).await;
}

#[tokio::test]
async fn a_new_tag_of_a_pushed_image_uploads_no_layer() {
    let stack = local_stack_checked();
    let name = unique("ecskit-test-retag");
    let repo = unique("retag");
    let source = build_scratch_image(&name, "v1").await;
    let endpoint = stack.registry.clone();
    let first = run(args(&[
        &source,
        "--repository",
        &repo,
        "--registry-endpoint",
        &endpoint,
    ]))
    .await
    .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(first.get("layers_pushed"), Some(&serde_json::json!(2)));

    let second = run(args(&[
        &source,
        "--repository",
        &repo,
        "--tag",
        "v2",
        "--registry-endpoint",
        &endpoint,
    ]))
    .await
    .unwrap_or_else(|e| panic!("{}", e.render()));
    // The tag is new, so the step pushed (and changed something), but every layer was there.
    assert!(second.changed);
    assert_eq!(second.get("layers_pushed"), Some(&serde_json::json!(0)));
    assert_eq!(second.get("layers_existing"), Some(&serde_json::json!(2)));
    assert_eq!(
        second.get_str("IMAGE_DIGEST"),
        first.get_str("IMAGE_DIGEST")
    );
    remove_image(&source).await;
}

#[tokio::test]
async fn refused_credentials_fail_with_the_registrys_message_before_anything_is_created() {
    let stack = local_stack_checked();
    let source = build_scratch_image(&unique("ecskit-test-refused"), "v1").await;
    let repo = unique("refused");
    // moto's token for another account's registry decodes to AWS:111111111111-auth-token,
    // which the local registry's htpasswd (account 123456789012) refuses.
    let err = run(args(&[
        &source,
        "--repository",
        &repo,
        "--registry-id",
        "111111111111",
        "--registry-endpoint",
        &stack.registry,
    ]))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 1, "{}", err.render());
    let text = err.render();
    assert!(text.contains("unauthorized"), "{text}");
    assert!(err.hint_text().is_some(), "{text}");
    assert!(!text.contains("auth-token"), "{text}");

    let ctx = stack.ctx(false).await;
    let repos = ctx.ecr().describe_repositories().send().await.unwrap();
    assert!(repos.repositories().is_empty(), "{repos:?}");
    remove_image(&source).await;
}

#[tokio::test]
async fn bad_input_is_reported_before_any_call() {
    let stack = local_stack_checked();
    let err = run(args(&[
        "app:1",
        "--repository",
        "Not_Valid",
        "--tag",
        ".bad",
        "--registry-endpoint",
        &stack.registry,
    ]))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(
        text.contains("--repository") && text.contains("--tag"),
        "{text}"
    );

    let missing = unique("ecskit-test-missing");
    let err = run(args(&[
        &format!("{missing}:v1"),
        "--repository",
        "app",
        "--registry-endpoint",
        &stack.registry,
    ]))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(err.to_string().contains("no such local image"), "{err}");
    assert!(err.hint_text().unwrap().contains("--pull"));

    let ctx = stack.ctx(false).await;
    let repos = ctx.ecr().describe_repositories().send().await.unwrap();
    assert!(repos.repositories().is_empty(), "{repos:?}");
}

#[tokio::test]
async fn dry_run_creates_and_pushes_nothing() {
    let stack = local_stack_checked();
    let source = build_scratch_image(&unique("ecskit-test-dry"), "v1").await;
    let repo = unique("dry");
    let (_, user_password) = ecr_token(&stack).await;
    let report = run(args(&[
        &source,
        "--repository",
        &repo,
        "--registry-endpoint",
        &stack.registry,
        "--dry-run",
    ]))
    .await
    .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(report.changed && report.dry_run);
    assert_eq!(report.calls.mutating, 0);
    assert_eq!(report.actions.len(), 2, "{:?}", report.actions);
    assert!(report.actions[0].starts_with(&format!("create repository {repo}")));
    assert_eq!(
        report.actions[1],
        format!("push {}/{repo}:v1", stack.registry)
    );
    assert_eq!(
        report.get_str("IMAGE_TAG_URI").unwrap(),
        format!("{}/{repo}:v1", stack.registry)
    );
    assert_eq!(
        registry_manifest_digest(&stack.registry, &repo, "v1", &user_password),
        Err(404)
    );
    let ctx = stack.ctx(false).await;
    assert!(
        ctx.ecr()
            .describe_repositories()
            .send()
            .await
            .unwrap()
            .repositories()
            .is_empty()
    );
    remove_image(&source).await;
}

#[tokio::test]
async fn pull_fetches_the_source_from_its_registry_with_credentials() {
    let stack = local_stack_checked();
    let name = unique("ecskit-test-pull");
    let source = build_scratch_image(&name, "v1").await;
    let origin = unique("origin");
    // Put the image into the registry first, then forget it locally.
    run(args(&[
        &source,
        "--repository",
        &origin,
        "--registry-endpoint",
        &stack.registry,
    ]))
    .await
    .unwrap_or_else(|e| panic!("{}", e.render()));
    let remote = format!("{}/{origin}:v1", stack.registry);
    remove_image(&remote).await;
    remove_image(&source).await;

    let (_, user_password) = ecr_token(&stack).await;
    let (user, password) = user_password.split_once(':').unwrap();
    let copy = unique("copy");
    let pulled = run(with_password(
        args(&[
            &remote,
            "--pull",
            "--pull-username",
            user,
            "--pull-password-stdin",
            "--repository",
            &copy,
            "--registry-endpoint",
            &stack.registry,
        ]),
        &format!("{password}\n"),
    ))
    .await
    .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(pulled.changed);
    assert!(
        pulled
            .get_str("IMAGE_DIGEST")
            .unwrap()
            .starts_with("sha256:")
    );

    // The same pull with a wrong password is refused by the registry: exit 1.
    remove_image(&remote).await;
    let err = run(with_password(
        args(&[
            &remote,
            "--pull",
            "--pull-username",
            user,
            "--pull-password-stdin",
            "--repository",
            &copy,
            "--registry-endpoint",
            &stack.registry,
        ]),
        "wrong-password\n",
    ))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 1, "{}", err.render());
    assert!(err.render().contains("pulling"), "{}", err.render());
    assert!(!err.render().contains(password), "{}", err.render());
    remove_image(&remote).await;
    remove_image(&format!("{}/{copy}:v1", stack.registry)).await;
}

#[tokio::test]
async fn delete_touches_only_managed_repositories_and_needs_force_for_images() {
    let stack = local_stack_checked();
    let ctx = stack.ctx(false).await;
    let ecr = ctx.ecr();

    // Not ours: refused, left in place.
    ecr.create_repository()
        .repository_name("not-ours")
        .send()
        .await
        .unwrap();
    let err = run(args(&["--repository", "not-ours", "--delete", "--force"]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(err.to_string().contains("managed-by=ecskit"), "{err}");

    // Ours, holding an image (registered in ECR directly): --force is needed.
    let source = build_scratch_image(&unique("ecskit-test-delete"), "v1").await;
    let repo = unique("ours");
    run(args(&[
        &source,
        "--repository",
        &repo,
        "--registry-endpoint",
        &stack.registry,
    ]))
    .await
    .unwrap_or_else(|e| panic!("{}", e.render()));
    ecr.put_image()
        .repository_name(&repo)
        .image_tag("v1")
        .image_manifest(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#)
        .send()
        .await
        .unwrap();
    let err = run(args(&["--repository", &repo, "--delete"]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert!(err.hint_text().unwrap().contains("--force"));

    let dry = run(args(&[
        "--repository",
        &repo,
        "--delete",
        "--force",
        "--dry-run",
    ]))
    .await
    .unwrap();
    assert!(dry.changed && dry.calls.mutating == 0);

    let deleted = run(args(&["--repository", &repo, "--delete", "--force"]))
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(deleted.changed);
    let left: Vec<String> = ecr
        .describe_repositories()
        .send()
        .await
        .unwrap()
        .repositories()
        .iter()
        .filter_map(|r| r.repository_name().map(str::to_string))
        .collect();
    assert_eq!(left, vec!["not-ours".to_string()]);

    // Gone already: nothing to do.
    let again = run(args(&["--repository", &repo, "--delete"]))
        .await
        .unwrap();
    assert!(!again.changed);
    remove_image(&source).await;
}

/// The local stack, with the environment the step reads (AWS_*, DOCKER_HOST) checked.
fn local_stack_checked() -> ecskit_testkit::LocalStack {
    let stack = ecskit_testkit::local_stack();
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "eval \"$(cargo xtask local env)\" first"
    );
    stack
}
