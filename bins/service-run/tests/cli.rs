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

/// `--logs --follow` as a user runs it: the lines so far on stdout, then a line put after it
/// started, within a bounded wait; Ctrl-C ends it.
#[test]
fn logs_follow_picks_up_a_line_put_after_it_started() {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    use std::io::BufRead;

    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let (cw, stream) = rt.block_on(async {
        let ctx = stack.ctx(false).await;
        ctx.ecs()
            .register_task_definition()
            .family("web")
            .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("app")
                    .image("nginx")
                    .memory(512)
                    .log_configuration(
                        aws_sdk_ecs::types::LogConfiguration::builder()
                            .log_driver(aws_sdk_ecs::types::LogDriver::Awslogs)
                            .options("awslogs-group", "/ecs/web")
                            .options("awslogs-stream-prefix", "ecs")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let argv = [
            "--cluster",
            "app",
            "--task-definition",
            "web:1",
            "--no-wait",
        ];
        let service: ecskit::service_run::Args =
            stack.parse("service-run", &[&argv[..], &["--service", "web"]].concat());
        ecskit::step::run::<ecskit::service_run::ServiceRun>(&ctx, &service)
            .await
            .unwrap();
        let one_off: ecskit::task_run::Args = stack.parse("task-run", &argv);
        ecskit::step::run::<ecskit::task_run::TaskRun>(&ctx, &one_off)
            .await
            .unwrap();
        // moto starts no task for a service and lists the cluster's tasks for a service name:
        // the one-off task stands in for the service's task.
        let task = ctx
            .ecs()
            .list_tasks()
            .cluster("app")
            .service_name("web")
            .send()
            .await
            .unwrap()
            .task_arns()[0]
            .clone();
        let stream = format!("ecs/app/{}", task.rsplit('/').next().unwrap());
        let cw = ctx.logs();
        cw.create_log_group()
            .log_group_name("/ecs/web")
            .send()
            .await
            .unwrap();
        cw.create_log_stream()
            .log_group_name("/ecs/web")
            .log_stream_name(&stream)
            .send()
            .await
            .unwrap();
        (cw, stream)
    });
    let put = |message: &str| {
        rt.block_on(
            cw.put_log_events()
                .log_group_name("/ecs/web")
                .log_stream_name(&stream)
                .log_events(
                    InputLogEvent::builder()
                        .timestamp(now_ms())
                        .message(message)
                        .build()
                        .unwrap(),
                )
                .send(),
        )
        .unwrap();
    };
    put("before the follow");

    let mut child = Command::new(env!("CARGO_BIN_EXE_service-run"))
        .args(["--cluster", "app", "--service", "web", "--logs", "--follow"])
        .env("AWS_ENDPOINT_URL", &stack.moto_url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // The test's bound: whatever happens, the follow is stopped after 60 s.
    let watchdog = {
        let pid = pid.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(60));
            let _ = Command::new("kill").args(["-INT", &pid]).status();
        })
    };
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("before the follow") {
            put("after the follow started");
        }
        let done = line.contains("after the follow started");
        lines.push(line);
        if done {
            Command::new("kill").args(["-INT", &pid]).status().unwrap();
        }
    }
    let status = child.wait().unwrap();
    drop(watchdog);
    // The log lines, then the step's own report.
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(lines[2..], ["changed: false", "lines: 2"], "{lines:#?}");
    assert!(lines[0].ends_with("app] before the follow"), "{lines:#?}");
    assert!(
        lines[1].ends_with("app] after the follow started"),
        "{lines:#?}"
    );
    assert!(
        status.success(),
        "Ctrl-C ends --follow as success: {status:?}"
    );
}

/// One-off tasks moved to task-run: service-run says so, exit 2, before any call.
#[test]
fn run_task_and_local_point_to_task_run() {
    let stack = ecskit_testkit::local_stack();
    for flag in ["--run-task", "--local"] {
        let out = service_run(
            &stack,
            &["--cluster", "app", "--task-definition", "web:1", flag],
        );
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("use task-run"), "{flag}: {err}");
    }
}
