//! The seeds' whole story, observed: the demo program in a from-scratch image, run by
//! `task-run --local` with the emulator's IAM enforcement on, gets its task role's
//! credentials from the endpoint, reads its own prefix, and is refused another prefix, another
//! bucket and writes.
//!
//! The program and task-run are both built by `cargo test --workspace` (this test finds
//! task-run beside the program's binary).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aws_sdk_s3::primitives::ByteStream;
use clap::Parser;

const APP_IMAGE: &str = "ecskit-test/demo-app:local";
const PAUSE_IMAGE: &str = "ecskit-test/pause:local";

fn docker(stack: &ecskit_testkit::LocalStack) -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", &stack.docker_host);
    c
}

/// `docker import` of a root file system holding `files` (source, path in the image).
fn import(stack: &ecskit_testkit::LocalStack, image: &str, files: &[(PathBuf, String)], cmd: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    for (from, to) in files {
        let to = root.join(to.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    let tarball = dir.path().join("rootfs.tar");
    let ok = Command::new("tar")
        .arg("-cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar");
    let ok = docker(stack)
        .args(["import", "--change", cmd])
        .arg(&tarball)
        .arg(image)
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "docker import {image}");
}

/// The program with the libraries `ldd` names.
fn app_files(binary: &Path) -> Vec<(PathBuf, String)> {
    let ldd = Command::new("ldd").arg(binary).output().unwrap();
    let mut files = vec![(binary.to_path_buf(), "/app".to_string())];
    // The SDK's TLS set-up reads the system roots even for http:// endpoints.
    let ca = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(ca).exists() {
        files.push((PathBuf::from(ca), ca.to_string()));
    }
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            files.push((PathBuf::from(p), p.to_string()));
        }
    }
    files
}

#[test]
fn the_task_reads_its_prefix_with_its_role_and_is_refused_elsewhere() {
    let stack = ecskit_testkit::local_stack();
    let app = PathBuf::from(env!("CARGO_BIN_EXE_ecskit-demo-app"));
    let task_run = app.with_file_name("task-run");
    assert!(
        task_run.exists(),
        "{} is missing: build the workspace's tests (`cargo test --workspace`)",
        task_run.display()
    );
    import(&stack, APP_IMAGE, &app_files(&app), "CMD [\"/app\"]");
    import(
        &stack,
        PAUSE_IMAGE,
        &[(PathBuf::from("/bin/busybox"), "/bin/busybox".into())],
        "CMD [\"/bin/busybox\", \"sleep\", \"2147483647\"]",
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (td, role, key, secret) = rt.block_on(async {
        let ctx = stack.ctx(false).await;
        let s3 = ctx.s3();
        for bucket in ["demo-cfg", "demo-cfg-other"] {
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
            ("demo-cfg", "app/config/global.properties"),
            ("demo-cfg", "app/config/keys.properties"),
            ("demo-cfg", "another-app/config/global.properties"),
            ("demo-cfg-other", "app/config/global.properties"),
        ] {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from_static(b"# settings\nmode=demo\nlevel=2\n"))
                .send()
                .await
                .unwrap();
        }
        let mut roles = ecskit::role_create::Args::try_parse_from([
            "role-create",
            "--name",
            "demo",
            "--bucket",
            "demo-cfg",
            "--prefix",
            "app/config",
        ])
        .unwrap();
        roles.aws = stack.aws_args();
        let r = ecskit::step::run::<ecskit::role_create::RoleCreate>(&ctx, &roles)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("td.json");
        let doc = serde_json::json!({
            "family": "demo-local",
            "networkMode": "awsvpc",
            "taskRoleArn": r.get_str("TASK_ROLE_ARN").unwrap(),
            "executionRoleArn": r.get_str("EXECUTION_ROLE_ARN").unwrap(),
            "containerDefinitions": [{
                "name": "app", "image": APP_IMAGE, "essential": true, "memory": 128,
                "portMappings": [{"containerPort": 8080}],
                "environment": [{"name": "CONFIG_URI", "value": "s3://demo-cfg/app/config/"}]
            }]
        });
        std::fs::write(&file, doc.to_string()).unwrap();
        let mut reg = ecskit::taskdef_register::Args::try_parse_from([
            "taskdef-register",
            "--file",
            file.to_str().unwrap(),
        ])
        .unwrap();
        reg.aws = stack.aws_args();
        let td = ecskit::step::run::<ecskit::taskdef_register::TaskdefRegister>(&ctx, &reg)
            .await
            .unwrap()
            .get_str("TASK_DEFINITION_ARN")
            .unwrap();
        // The local run's own calls are signed as a user that may do anything.
        let iam = ctx.iam();
        let admin = iam
            .create_user()
            .user_name("admin")
            .send()
            .await
            .unwrap()
            .user
            .unwrap()
            .arn;
        iam.put_user_policy()
            .user_name("admin")
            .policy_name("all")
            .policy_document(
                serde_json::json!({"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let k = iam
            .create_access_key()
            .user_name("admin")
            .send()
            .await
            .unwrap()
            .access_key
            .unwrap();
        // The task role role-create made trusts ecs-tasks.amazonaws.com, and the emulator's IAM
        // enforcement cannot evaluate a Service principal (moto 5.2.5 fails with a TypeError in
        // access_control._check_principal). The local run assumes, as a developer would, a role
        // with the same S3 policy that trusts the caller.
        let policy = iam
            .get_role_policy()
            .role_name("demo-task")
            .policy_name("ecskit-s3")
            .send()
            .await
            .unwrap();
        let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": admin}, "Action": "sts:AssumeRole"}]});
        let local_role = iam
            .create_role()
            .role_name("demo-task-local")
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .unwrap()
            .role
            .unwrap()
            .arn;
        iam.put_role_policy()
            .role_name("demo-task-local")
            .policy_name("ecskit-s3")
            .policy_document(
                ecskit::iam::policy::decode(policy.policy_document())
                    .unwrap()
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        (
            td,
            local_role,
            k.access_key_id().to_string(),
            k.secret_access_key().to_string(),
        )
    });

    stack.enforce_iam();
    let mut child = Command::new(&task_run)
        .args([
            "--local",
            "--task-definition",
            &td,
            "--task-role-arn",
            &role,
        ])
        .env("AWS_ENDPOINT_URL", &stack.moto_url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("ECSKIT_LOCAL_PAUSE_IMAGE", PAUSE_IMAGE)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let serving = line.contains("[app] serving on port") || line.contains("error:");
        lines.push(line);
        if serving {
            Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
        }
    }
    let status = child.wait().unwrap();
    stack.stop_enforcing_iam();
    let text = lines.join("\n");
    // Stopped by Ctrl-C: the contract's 130 (interrupted), not a failed task.
    assert_eq!(status.code(), Some(130), "{text}");
    for want in [
        "[app] credentials from the container credentials endpoint: role arn:aws:iam::123456789012:role/demo-task-local",
        "[app] read s3://demo-cfg/app/config/global.properties: 29 bytes, 2 settings (values not shown)",
        "[app] read s3://demo-cfg/app/config/keys.properties: 29 bytes, 2 settings (values not shown)",
        "[app] refused: s3://demo-cfg/another-app/config/global.properties (AccessDenied)",
        "[app] refused: s3://demo-cfg-other/app/config/global.properties (AccessDenied)",
        "[app] refused: writing into s3://demo-cfg/app/config/ (AccessDenied)",
        "[app] serving on port 8080",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // The keys never reach the output.
    assert!(!text.contains("SecretAccessKey") && !text.contains(&secret));
}
