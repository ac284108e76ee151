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
    // The digest is not known before the push: the URI the next step plans with is by tag.
    assert_eq!(report.get_str("IMAGE_DIGEST").unwrap(), "");
    assert_eq!(
        report.get_str("IMAGE_URI").unwrap(),
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

/// `deploy --dry-run` on a stack that does not exist yet: image-push's dry run prints a URI
/// for a repository that does not exist, and taskdef-register's dry run takes it and says
/// which revision it would register, with the ARN that revision would have. Nothing is made.
#[tokio::test]
async fn a_dry_run_chain_from_push_to_register_plans_the_revision() {
    let stack = local_stack_checked();
    let source = build_scratch_image(&unique("ecskit-test-dry-chain"), "v3").await;
    let repo = unique("chain");
    let pushed = run(args(&[
        &source,
        "--repository",
        &repo,
        "--registry-endpoint",
        &stack.registry,
        "--dry-run",
    ]))
    .await
    .unwrap_or_else(|e| panic!("{}", e.render()));
    let uri = pushed.get_str("IMAGE_URI").unwrap();
    assert_eq!(uri, format!("{}/{repo}:v3", stack.registry));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("td.json");
    std::fs::write(
        &file,
        r#"{"family": "dry-chain", "containerDefinitions": [{"name": "app", "image": "placeholder", "memory": 128}]}"#,
    )
    .unwrap();
    let mut td = ecskit::taskdef_register::Args::try_parse_from([
        "taskdef-register",
        "--file",
        file.to_str().unwrap(),
        "--image",
        &uri,
        "--dry-run",
    ])
    .unwrap();
    td.aws = stack.aws_args();
    let ctx = stack.ctx(true).await;
    let planned = ecskit::step::run::<ecskit::taskdef_register::TaskdefRegister>(&ctx, &td)
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(planned.changed && planned.dry_run);
    assert_eq!(
        planned.actions,
        vec!["register task definition dry-chain:1"]
    );
    assert_eq!(
        planned.get_str("TASK_DEFINITION_ARN").unwrap(),
        "arn:aws:ecs:us-west-2:123456789012:task-definition/dry-chain:1"
    );
    assert_eq!(planned.get_str("TASK_REVISION").unwrap(), "1");
    assert_eq!(ctx.calls().mutating(), vec![]);
    let real = stack.ctx(false).await;
    let families = real.ecs().list_task_definitions().send().await.unwrap();
    assert!(families.task_definition_arns().is_empty());
    remove_image(&source).await;
}

#[path = "json_replay/mod.rs"]
mod json_replay;

/// CreateRepository's answer is lost after ECR applied it (a 500); the SDK sends it again and
/// ECR answers RepositoryAlreadyExistsException. The step converges: it describes the
/// repository and pushes. ECR is recorded; the engine and the registry are the real ones.
#[tokio::test]
async fn a_lost_create_repository_answer_converges() {
    use json_replay::{error, ok};
    use serde_json::json;
    let stack = local_stack_checked();
    let source = build_scratch_image(&unique("ecskit-test-lost-create"), "v1").await;
    let repo = unique("lost");
    let (token, _) = ecr_token(&stack).await;
    let arn = format!("arn:aws:ecr:us-west-2:123456789012:repository/{repo}");
    let repository = json!({"repositoryArn": arn, "registryId": "123456789012", "repositoryName": repo,
        "repositoryUri": format!("123456789012.dkr.ecr.us-west-2.amazonaws.com/{repo}")});
    let replay = json_replay::Replay::new(vec![
        error("DescribeRepositories", 400, "RepositoryNotFoundException"),
        ok(
            "GetAuthorizationToken",
            json!({"authorizationData": [{"authorizationToken": token,
                "proxyEndpoint": "https://123456789012.dkr.ecr.us-west-2.amazonaws.com", "expiresAt": 1.9e9}]}),
        ),
        error("CreateRepository", 500, "ServerException"),
        error("CreateRepository", 400, "RepositoryAlreadyExistsException"),
        ok(
            "DescribeRepositories",
            json!({"repositories": [repository]}),
        ),
    ]);
    let ctx = replay.ctx(false);
    let a = args(&[
        &source,
        "--repository",
        &repo,
        "--registry-endpoint",
        &stack.registry,
    ]);
    let report = ecskit::step::run::<ImagePush>(&ctx, &a)
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(
        replay.sent(),
        vec![
            "DescribeRepositories",
            "GetAuthorizationToken",
            "CreateRepository",
            "CreateRepository",
            "DescribeRepositories"
        ]
    );
    assert!(replay.left().is_empty());
    assert!(report.changed);
    assert_eq!(report.get("repository_arn"), Some(&json!(arn)));
    let digest = report.get_str("IMAGE_DIGEST").unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    // The create asked for the managed-by tag: the repository it converged on is ecskit's.
    let create: serde_json::Value = serde_json::from_str(&replay.bodies()[2]).unwrap();
    assert_eq!(
        create["tags"],
        json!([{"Key": "managed-by", "Value": "ecskit"}])
    );
    remove_image(&source).await;
}

/// What a user sees, pinned: the text and json output of a first push, of the re-run that
/// changes nothing, and of a dry run on a repository that does not exist yet.
#[tokio::test]
async fn output_snapshots() {
    use ecskit::output::OutputFormat::{Json, Text};
    let stack = local_stack_checked();
    let source = build_scratch_image(&unique("ecskit-test-snap"), "v1").await;
    // Fixed names, so the snapshots do not change from run to run; the image's content is
    // new each run, so the first push always pushes.
    let argv = [
        source.as_str(),
        "--repository",
        "snap/app",
        "--registry-endpoint",
        &stack.registry,
    ];
    let first = run(args(&argv))
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    ecskit_testkit::assert_output_snapshot!("image_push_first_text", first.render(Text));
    ecskit_testkit::assert_output_snapshot!("image_push_first_json", first.render(Json));
    let again = run(args(&argv))
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    ecskit_testkit::assert_output_snapshot!("image_push_rerun_text", again.render(Text));
    ecskit_testkit::assert_output_snapshot!("image_push_rerun_json", again.render(Json));
    let dry = run(args(&[
        &source,
        "--repository",
        "snap/dry",
        "--registry-endpoint",
        &stack.registry,
        "--dry-run",
    ]))
    .await
    .unwrap_or_else(|e| panic!("{}", e.render()));
    ecskit_testkit::assert_output_snapshot!("image_push_dry_run_text", dry.render(Text));
    ecskit_testkit::assert_output_snapshot!("image_push_dry_run_json", dry.render(Json));
    remove_image(&source).await;
}
