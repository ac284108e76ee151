//! The task-run binary as a process: exit codes, stdout/stderr separation, `--output env`, and
//! no secret at `-vvv`.

use std::process::Command;

fn task_run(stack: &ecskit_testkit::LocalStack, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_task-run"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &stack.moto_url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-value")
        .env_remove("ECSKIT_TASK_DEFINITION_ARN")
        .env_remove("ECSKIT_CLUSTER")
        .output()
        .unwrap()
}

#[test]
fn bad_input_exits_2_and_names_the_flags() {
    let stack = ecskit_testkit::local_stack();
    let out = task_run(&stack, &["--count", "11", "--tag", "managed-by=me"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "--cluster is missing",
        "--task-definition is missing",
        "--count 11",
        "--tag managed-by",
    ] {
        assert!(err.contains(want), "{want} missing from: {err}");
    }
}

#[test]
fn no_wait_prints_the_task_arn_on_stdout_and_no_secret() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let arn = rt.block_on(stack.register_app("cli-once", "busybox"));
    let out = task_run(
        &stack,
        &[
            "--cluster",
            "cli-once",
            "--task-definition",
            &arn,
            "--no-wait",
            "--output",
            "env",
            "-vvv",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let task = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ECSKIT_TASK_ARN="))
        .unwrap_or_else(|| panic!("no task ARN on stdout: {stdout}"));
    assert!(task.contains(":task/cli-once/"), "{task}");
    // Progress goes to stderr, results to stdout only.
    assert!(stderr.contains("started task"), "{stderr}");
    assert!(!stdout.contains("started task"), "{stdout}");
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains("test-secret-value"),
            "a secret printed: {text}"
        );
    }
}

/// The step's own flags come first, under the step's name; Output and AWS come last.
#[test]
fn help_lists_the_steps_own_flags_first() {
    ecskit_testkit::assert_own_flags_first(env!("CARGO_BIN_EXE_task-run"), "task-run");
}
