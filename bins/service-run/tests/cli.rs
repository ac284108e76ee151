//! The service-run binary as a process: exit codes, stdout/stderr separation, `--output env`.

use std::process::Command;

fn service_run(stack: &ecskit_testkit::LocalStack, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_service-run"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &stack.moto_url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("ECSKIT_TASK_DEFINITION_ARN")
        .env_remove("ECSKIT_CLUSTER")
        .env_remove("ECSKIT_SERVICE")
        .output()
        .unwrap()
}

#[test]
fn bad_input_exits_2_and_names_the_flags() {
    let stack = ecskit_testkit::local_stack();
    let out = service_run(&stack, &["--cluster", "app", "--desired-count=-2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--service is missing"), "{err}");
    assert!(err.contains("--task-definition is missing"), "{err}");
    assert!(err.contains("--desired-count -2 is negative"), "{err}");
}

#[test]
fn env_output_reads_the_previous_steps_variables() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let arn = rt.block_on(async {
        let ecs = stack.ctx(false).await.ecs();
        ecs.register_task_definition()
            .family("web")
            .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("app")
                    .image("nginx")
                    .memory(512)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .task_definition
            .unwrap()
            .task_definition_arn
            .unwrap()
    });
    let out = Command::new(env!("CARGO_BIN_EXE_service-run"))
        .args(["--output", "env", "--poll-interval", "100ms", "-vvv"])
        .env("AWS_ENDPOINT_URL", &stack.moto_url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-value")
        .env("ECSKIT_CLUSTER", "app")
        .env("ECSKIT_SERVICE", "web")
        .env("ECSKIT_TASK_DEFINITION_ARN", &arn)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for name in [
        "ECSKIT_CLUSTER_ARN=",
        "ECSKIT_SERVICE_ARN=",
        "ECSKIT_DEPLOYMENT_ID=",
        "ECSKIT_ROLLOUT_STATE=COMPLETED",
        "ECSKIT_RUNNING_COUNT=1",
        "ECSKIT_DESIRED_COUNT=1",
        "ECSKIT_CHANGED=true",
    ] {
        assert!(stdout.contains(name), "{name} missing from {stdout}");
    }
    // stdout is only the results; the default-VPC fallback is announced on stderr.
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with("ECSKIT_") || l.starts_with("export ECSKIT_")),
        "{stdout}"
    );
    assert!(stderr.contains("default VPC"), "{stderr}");
    assert!(!stderr.contains("test-secret-value") && !stdout.contains("test-secret-value"));
}

/// The step's own flags come first, under the step's name; Output and AWS come last.
#[test]
fn help_lists_the_steps_own_flags_first() {
    let (help, headings) = ecskit_testkit::help_and_headings(env!("CARGO_BIN_EXE_service-run"));
    assert_eq!(
        headings.first().map(String::as_str),
        Some("Options:"),
        "{help}"
    );
    assert_eq!(
        headings.get(1).map(String::as_str),
        Some("service-run:"),
        "{help}"
    );
    let n = headings.len();
    assert_eq!(
        headings[n - 3..].to_vec(),
        ["Output:", "AWS:", "Examples:"],
        "{help}"
    );
    let at = |s: &str| help.find(s).unwrap_or_else(|| panic!("no {s} in {help}"));
    assert!(at("\nservice-run:\n") < at("\nOutput:\n"));
    assert!(at("\nAWS:\n") < at("--region <REGION>"));
}
