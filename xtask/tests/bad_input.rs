//! Exit 2 means nothing was changed: every binary on a matrix of bad inputs, through a proxy
//! that counts the mutating requests that reach the emulator (not the binaries' own call logs,
//! which could miss one). Some inputs are refused before any call, some only after reads (a
//! role that ecskit did not make, a task definition that does not exist): for each, exit 2 and
//! zero mutating requests.
//!
//! Run it through `cargo xtask test` (the local stack), like tests/deploy.rs.

mod support;

use std::process::Command;

use ecskit_testkit::fault_proxy::{self, Faults};
use support::{aws, bin_dir, local_env};

fn run(proxy: &fault_proxy::FaultProxy, bin: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin_dir().join(bin))
        .args(args)
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("DOCKER_HOST", local_env("DOCKER_HOST"))
        .env(
            "ECSKIT_REGISTRY_ENDPOINT",
            local_env("ECSKIT_REGISTRY_ENDPOINT"),
        )
        .env_remove("ECSKIT_TASK_DEFINITION_ARN")
        .env_remove("ECSKIT_IMAGE_URI")
        .env_remove("ECSKIT_CLUSTER")
        .env_remove("ECSKIT_SERVICE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_exit_2_leaves_everything_as_it_was() {
    let id = std::process::id();
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let template = d(
        "template.json",
        r#"{"family": "t", "containerDefinitions": [{"name": "app", "image": "${IMAGE_NOT_SET}", "memory": 64}]}"#,
    );
    let raw_newline = d(
        "newline.json",
        "{\"family\": \"t\", \"containerDefinitions\": [{\"name\": \"app\", \"image\": \"x\",\n \"command\": [\"a\nb\"], \"memory\": 64}]}",
    );
    let bad_service = d(
        "service.json",
        r#"{"serviceName": "web", "taskDefinition": "t:1", "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/t/0", "containerName": "app"}], "aFieldFromTheFuture": true}"#,
    );
    let plaintext = d(
        "secret.json",
        r#"{"family": "t", "containerDefinitions": [{"name": "app", "image": "x", "memory": 64, "environment": [{"name": "DB_PASSWORD", "value": "hunter2"}]}]}"#,
    );
    let bridged = d(
        "bridged.json",
        r#"{"family": "bridged-bad", "networkMode": "bridge", "containerDefinitions": [{"name": "app", "image": "x", "memory": 64}]}"#,
    );

    // Resources that ecskit did not make: deleting them must be refused before anything else is
    // deleted.
    let app = format!("badin-{id}");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws(&[
        "iam",
        "create-role",
        "--role-name",
        &format!("{app}-task"),
        "--assume-role-policy-document",
        trust,
        "--tags",
        "Key=managed-by,Value=ecskit",
    ])
    .unwrap();
    aws(&[
        "iam",
        "create-role",
        "--role-name",
        &format!("{app}-execution"),
        "--assume-role-policy-document",
        trust,
    ])
    .unwrap();
    let ec2_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let instance_role = format!("{app}-instance");
    let profile = format!("{app}-profile");
    aws(&[
        "iam",
        "create-role",
        "--role-name",
        &instance_role,
        "--assume-role-policy-document",
        ec2_trust,
    ])
    .unwrap();
    aws(&[
        "iam",
        "create-instance-profile",
        "--instance-profile-name",
        &profile,
        "--tags",
        "Key=managed-by,Value=ecskit",
    ])
    .unwrap();
    // taskdef-register first registers the bridged task definition (a good input) for the
    // Fargate case below; that registration is the one mutating call before the matrix.
    let proxy = fault_proxy::start(&local_env("AWS_ENDPOINT_URL"), Faults::None);
    let (code, err) = run(&proxy, "taskdef-register", &["--file", &bridged]);
    assert_eq!(code, 0, "{err}");
    let before = proxy.mutating().len();

    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "image-push",
            vec!["--repository".into(), "Bad Name".into(), "app:1".into()],
            "--repository",
        ),
        (
            "image-push",
            vec![
                "--repository".into(),
                "app".into(),
                "--delete".into(),
                "app:1".into(),
            ],
            "",
        ),
        (
            "role-create",
            vec!["--name".into(), "bad name".into()],
            "name",
        ),
        (
            "role-create",
            vec!["--name".into(), app.clone(), "--delete".into()],
            "not tagged managed-by=ecskit",
        ),
        (
            "instance-profile",
            vec![
                "--role-name".into(),
                instance_role.clone(),
                "--profile-name".into(),
                profile.clone(),
                "--delete".into(),
            ],
            "not tagged managed-by=ecskit",
        ),
        (
            "config-upload",
            vec![
                "--bucket".into(),
                format!("{app}-cfg"),
                "--prefix".into(),
                "p".into(),
                dir.path().join("missing.properties").display().to_string(),
            ],
            "missing.properties",
        ),
        (
            "config-upload",
            vec!["--bucket".into(), "Bad_Bucket".into(), template.clone()],
            "--bucket",
        ),
        (
            "taskdef-register",
            vec!["--file".into(), template],
            "IMAGE_NOT_SET",
        ),
        (
            "taskdef-register",
            vec!["--file".into(), raw_newline],
            "line",
        ),
        (
            "taskdef-register",
            vec!["--file".into(), plaintext],
            "DB_PASSWORD",
        ),
        (
            "service-run",
            vec!["--cluster".into(), app.clone(), "--desired-count=-2".into()],
            "--desired-count -2",
        ),
        (
            "service-run",
            vec![
                "--cluster".into(),
                app.clone(),
                "--service".into(),
                "web".into(),
                "--task-definition".into(),
                "does-not-exist:1".into(),
            ],
            "does not exist",
        ),
        (
            "service-run",
            vec![
                "--cluster".into(),
                app.clone(),
                "--service".into(),
                "web".into(),
                "--task-definition".into(),
                "bridged-bad".into(),
            ],
            "Fargate runs only awsvpc tasks",
        ),
        (
            "service-run",
            vec![
                "--cluster".into(),
                app.clone(),
                "--service".into(),
                "web".into(),
                "--task-definition".into(),
                "bridged-bad".into(),
                "--launch-type".into(),
                "EC2".into(),
                "--assign-public-ip".into(),
            ],
            "--assign-public-ip",
        ),
        (
            "service-run",
            vec![
                "--cluster".into(),
                app.clone(),
                "--service-file".into(),
                bad_service,
            ],
            "service.json: loadBalancers[0].containerPort: missing",
        ),
    ];
    for (bin, args, says) in &cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = run(&proxy, bin, &argv);
        assert_eq!(code, 2, "{bin} {args:?} should exit 2:\n{err}");
        assert!(
            err.contains(says),
            "{bin} {args:?} should name {says:?}:\n{err}"
        );
        let after = proxy.mutating();
        assert_eq!(
            after.len(),
            before,
            "{bin} {args:?} exited 2 after mutating calls: {:?}",
            &after[before..]
        );
    }
    // The task role that ecskit made is still there: role-create refused before deleting it.
    assert!(aws(&["iam", "get-role", "--role-name", &format!("{app}-task")]).is_ok());
    assert!(
        aws(&[
            "iam",
            "get-instance-profile",
            "--instance-profile-name",
            &profile
        ])
        .is_ok()
    );
}
