//! What role-create, instance-profile, config-upload and service-run print, pinned: the text
//! and json output of a first run, a re-run and a dry run against the emulator, through the
//! one set of filters every snapshot uses (ARNs' random parts, ids, times). image-push's and
//! taskdef-register's are pinned beside their tests (image.rs, taskdef.rs).

use clap::Parser;
use ecskit::output::OutputFormat::{Json, Text};
use ecskit::step::{Step, run};
use ecskit_testkit::{LocalStack, assert_output_snapshot, local_stack};

fn args<S: Step>(stack: &LocalStack, argv: &[&str]) -> S::Args
where
    S::Args: Parser,
{
    let mut v = vec![
        "bin",
        "--region",
        "us-west-2",
        "--endpoint-url",
        &stack.moto_url,
    ];
    v.extend_from_slice(argv);
    S::Args::try_parse_from(v).unwrap()
}

/// First run, re-run and dry run of a step, each in text and json.
async fn pin<S: Step>(stack: &LocalStack, name: &str, argv: &[&str], dry_argv: &[&str])
where
    S::Args: Parser,
{
    let ctx = stack.ctx(false).await;
    let first = run::<S>(&ctx, &args::<S>(stack, argv))
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_output_snapshot!(format!("{name}_first_text"), first.render(Text));
    assert_output_snapshot!(format!("{name}_first_json"), first.render(Json));
    let ctx = stack.ctx(false).await;
    let again = run::<S>(&ctx, &args::<S>(stack, argv))
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_output_snapshot!(format!("{name}_rerun_text"), again.render(Text));
    assert_output_snapshot!(format!("{name}_rerun_json"), again.render(Json));
    let ctx = stack.ctx(true).await;
    let dry = run::<S>(&ctx, &args::<S>(stack, dry_argv))
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_output_snapshot!(format!("{name}_dry_run_text"), dry.render(Text));
    assert_output_snapshot!(format!("{name}_dry_run_json"), dry.render(Json));
}

#[tokio::test]
async fn role_create_output() {
    let stack = local_stack();
    pin::<ecskit::role_create::RoleCreate>(
        &stack,
        "role_create",
        &[
            "--name",
            "web",
            "--bucket",
            "web-config",
            "--prefix",
            "prod",
        ],
        &[
            "--name",
            "other",
            "--bucket",
            "web-config",
            "--prefix",
            "prod",
            "--dry-run",
        ],
    )
    .await;
}

#[tokio::test]
async fn instance_profile_output() {
    let stack = local_stack();
    pin::<ecskit::instance_profile::InstanceProfile>(
        &stack,
        "instance_profile",
        &[],
        &[
            "--role-name",
            "otherRole",
            "--profile-name",
            "other-profile",
            "--dry-run",
        ],
    )
    .await;
}

#[tokio::test]
async fn config_upload_output() {
    let stack = local_stack();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conf");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("global.properties"), "jcc.count=2\n").unwrap();
    std::fs::write(dir.join("keys.properties"), "api.key=k-1234\n").unwrap();
    let d = dir.to_str().unwrap();
    pin::<ecskit::config_upload::ConfigUpload>(
        &stack,
        "config_upload",
        &["--bucket", "snap-config", "--prefix", "prod", d],
        &[
            "--bucket",
            "snap-config-dry",
            "--prefix",
            "prod",
            "--dry-run",
            d,
        ],
    )
    .await;
}

#[tokio::test]
async fn service_run_output() {
    let stack = local_stack();
    stack
        .ctx(false)
        .await
        .ecs()
        .register_task_definition()
        .family("web")
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("nginx:1")
                .memory(512)
                .build(),
        )
        .send()
        .await
        .unwrap();
    pin::<ecskit::service_run::ServiceRun>(
        &stack,
        "service_run",
        &[
            "--cluster",
            "app",
            "--service",
            "web",
            "--task-definition",
            "web:1",
            "--poll-interval",
            "100ms",
        ],
        &[
            "--cluster",
            "other",
            "--service",
            "web",
            "--task-definition",
            "web:1",
            "--dry-run",
        ],
    )
    .await;
}
