//! `service-run --local` against the local stack: the task runs for real on the private Docker
//! Engine, with credentials from the task-role endpoint, secrets from SSM and Secrets Manager,
//! a dependsOn-ordered shared volume and the exit-code contract; an interrupted run and a task
//! it cannot run leave nothing behind.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Command, Stdio};

use bollard::Docker;
use clap::Parser;
use futures_util::StreamExt;
use sha2::Digest;

/// The busybox image every container of these tests runs (from Debian's busybox-static, which
/// `cargo xtask local up` installs): its CMD sleeps, so it also serves as the pause image.
const IMAGE: &str = "ecskit-test/busybox:local";

async fn docker() -> Docker {
    Docker::connect_with_defaults()
        .expect("DOCKER_HOST")
        .negotiate_version()
        .await
        .expect("the local stack's Docker Engine answers")
}

/// Builds [`IMAGE`] from scratch with the host's static busybox.
async fn busybox_image() {
    let docker = docker().await;
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox (Debian's busybox-static; `cargo xtask local up` installs it)");
    let mut context = tar::Builder::new(Vec::new());
    let dockerfile =
        b"FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"86400\"]\n";
    for (path, body, mode) in [
        ("Dockerfile", &dockerfile[..], 0o644),
        ("busybox", &busybox[..], 0o755),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        context.append_data(&mut header, path, body).unwrap();
    }
    let options = bollard::query_parameters::BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(IMAGE)
        .rm(true)
        .build();
    let context = context.into_inner().unwrap();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        item.expect("building the busybox image");
    }
}

/// Containers, networks and volumes a local run labelled.
async fn leftovers() -> (usize, usize, usize) {
    let docker = docker().await;
    let filter = HashMap::from([("label".to_string(), vec!["ecskit.local-task".to_string()])]);
    let containers = docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap();
    let networks = docker
        .list_networks(Some(
            bollard::query_parameters::ListNetworksOptionsBuilder::new()
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap();
    let volumes = docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::new()
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap();
    (
        containers.len(),
        networks.len(),
        volumes.volumes.unwrap_or_default().len(),
    )
}

/// Registers a task definition document as written (through taskdef-register's library).
async fn register(stack: &ecskit_testkit::LocalStack, doc: serde_json::Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("td.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let mut args = ecskit::taskdef_register::Args::try_parse_from([
        "taskdef-register",
        "--file",
        path.to_str().unwrap(),
    ])
    .unwrap();
    args.aws = stack.aws_args();
    let ctx = stack.ctx(false).await;
    let report = ecskit::step::run::<ecskit::taskdef_register::TaskdefRegister>(&ctx, &args)
        .await
        .unwrap();
    report.get_str("TASK_DEFINITION_ARN").unwrap()
}

fn service_run(stack: &ecskit_testkit::LocalStack) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_service-run"));
    cmd.env("AWS_ENDPOINT_URL", &stack.moto_url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("ECSKIT_LOCAL_PAUSE_IMAGE", IMAGE)
        .env_remove("ECSKIT_TASK_DEFINITION_ARN")
        .env_remove("ECSKIT_CLUSTER")
        .env_remove("ECSKIT_SERVICE");
    cmd
}

fn sh(script: &str) -> serde_json::Value {
    serde_json::json!(["/bin/busybox", "sh", "-c", script])
}

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

#[test]
fn a_task_runs_with_its_role_secrets_volume_and_order_and_exit_3_names_the_container() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ssm_value = "ssm-value-never-printed";
    let sm_value = "sm-value-never-printed";
    let td = rt.block_on(async {
        busybox_image().await;
        let ctx = stack.ctx(false).await;
        let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        let mut roles = Vec::new();
        for name in ["local-task", "local-exec"] {
            let arn = ctx
                .iam()
                .create_role()
                .role_name(name)
                .assume_role_policy_document(trust.to_string())
                .send()
                .await
                .unwrap()
                .role
                .unwrap()
                .arn;
            roles.push(arn);
        }
        ctx.ssm()
            .put_parameter()
            .name("/local/db-password")
            .value(ssm_value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
        let secret = ctx
            .secrets_manager()
            .create_secret()
            .name("local/api")
            .secret_string(serde_json::json!({"key": sm_value}).to_string())
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        let check = |var: &str, value: &str| {
            format!(
                "[ \"$(printf %s \"${var}\" | /bin/busybox sha256sum | /bin/busybox cut -c1-64)\" = {} ] && echo {var} arrived",
                sha256_hex(value)
            )
        };
        let app = format!(
            "/bin/busybox cat /shared/flag; \
             /bin/busybox wget -q -O - http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI | /bin/busybox grep -o '\"RoleArn\": *\"[^\"]*\"'; \
             {}; {}; exit 7",
            check("DB_PASSWORD", ssm_value),
            check("API_KEY", sm_value)
        );
        register(
            &stack,
            serde_json::json!({
                "family": "local-run",
                "taskRoleArn": roles[0],
                "executionRoleArn": roles[1],
                "networkMode": "awsvpc",
                "volumes": [{"name": "shared"}],
                "containerDefinitions": [
                    {"name": "app", "image": IMAGE, "essential": true, "memory": 64,
                     "command": sh(&app),
                     "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
                     "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared"}],
                     "secrets": [
                        {"name": "DB_PASSWORD", "valueFrom": "/local/db-password"},
                        {"name": "API_KEY", "valueFrom": format!("{secret}:key::")}
                     ]},
                    {"name": "init", "image": IMAGE, "essential": false, "memory": 64,
                     "command": sh("echo written by init > /shared/flag"),
                     "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared"}]},
                    {"name": "sidecar", "image": IMAGE, "essential": false, "memory": 64,
                     "command": sh("echo sidecar leaves early; exit 1")}
                ]
            }),
        )
        .await
    });

    let out = service_run(&stack)
        .args(["--local", "--task-definition", &td, "--output", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    // The init container wrote the file before app started; app read it from the volume.
    assert!(stderr.contains("[app] written by init"), "{stderr}");
    // The seed's curl, as busybox wget: the task role's credentials from the endpoint.
    assert!(
        stderr.contains("[app] \"RoleArn\":\"arn:aws:iam::123456789012:role/local-task\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("secrets and environment files are read with the execution role arn:aws:iam::123456789012:role/local-exec"),
        "{stderr}"
    );
    assert!(stderr.contains("[app] DB_PASSWORD arrived"), "{stderr}");
    assert!(stderr.contains("[app] API_KEY arrived"), "{stderr}");
    // A non-essential container's exit does not stop the task.
    assert!(
        stderr.contains("[sidecar] sidecar leaves early"),
        "{stderr}"
    );
    assert!(
        stderr.contains("essential container app exited with code 7"),
        "{stderr}"
    );
    for secret in [ssm_value, sm_value] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["exit_code"], 7);
    let app = v["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "app")
        .unwrap();
    assert_eq!(app["exit_code"], 7);
    assert!(
        v["task_arn"]
            .as_str()
            .unwrap()
            .starts_with("local/local-run/")
    );
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

#[test]
fn an_interrupted_task_is_stopped_and_leaves_nothing_behind() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(async {
        busybox_image().await;
        register(
            &stack,
            serde_json::json!({
                "family": "local-sleep",
                "volumes": [{"name": "scratch"}],
                "containerDefinitions": [
                    {"name": "app", "image": IMAGE, "essential": true, "memory": 64,
                     "stopTimeout": 2,
                     "command": sh("echo up; exec /bin/busybox sleep 300"),
                     "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"}]}
                ]
            }),
        )
        .await
    });
    let mut child = service_run(&stack)
        .args(["--local", "--task-definition", &td])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("[app] up") {
            let during = rt.block_on(leftovers());
            assert_eq!(
                during,
                (2, 1, 1),
                "the app, the pause container, the network, the volume"
            );
            Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
        }
    }
    let status = child.wait().unwrap();
    let text = seen.join("\n");
    assert!(text.contains("interrupted: stopping the task"), "{text}");
    // sleep ignores nothing: SIGTERM ends it (143), which is a non-zero essential exit.
    assert_eq!(status.code(), Some(3), "{text}");
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

#[test]
fn a_task_that_cannot_run_locally_exits_2_naming_the_fields_and_starts_nothing() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(register(
        &stack,
        serde_json::json!({
            "family": "local-windows",
            "runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2019_CORE"},
            "containerDefinitions": [
                {"name": "app", "image": IMAGE, "essential": true, "memory": 64,
                 "resourceRequirements": [{"type": "GPU", "value": "1"}]}
            ]
        }),
    ));
    let out = service_run(&stack)
        .args(["--local", "--task-definition", &td])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("runtimePlatform.operatingSystemFamily: WINDOWS_SERVER_2019_CORE"),
        "{stderr}"
    );
    assert!(
        stderr.contains("containerDefinitions[0].resourceRequirements[0]"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}
