//! role-create as a process: exit codes, stdout only for results, `--output env`.

use std::process::Command;

fn role_create(stack: &ecskit_testkit::LocalStack, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_role-create"))
        .args(["--region", "us-west-2", "--endpoint-url", &stack.moto_url])
        .args(args)
        .env_remove("ECSKIT_CONFIG_BUCKET")
        .env_remove("ECSKIT_CONFIG_PREFIX")
        .output()
        .unwrap()
}

#[test]
fn env_output_chains_and_a_rerun_is_unchanged() {
    let stack = ecskit_testkit::local_stack();
    let out = Command::new(env!("CARGO_BIN_EXE_role-create"))
        .args([
            "--region",
            "us-west-2",
            "--endpoint-url",
            &stack.moto_url,
            "--name",
            "web",
            "--output",
            "env",
        ])
        .env("ECSKIT_CONFIG_BUCKET", "cfg-bucket")
        .env("ECSKIT_CONFIG_PREFIX", "web/prod")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        "ECSKIT_TASK_ROLE_ARN=arn:aws:iam::123456789012:role/web-task\n\
         ECSKIT_TASK_ROLE_NAME=web-task\n\
         ECSKIT_EXECUTION_ROLE_ARN=arn:aws:iam::123456789012:role/web-execution\n\
         ECSKIT_EXECUTION_ROLE_NAME=web-execution\n\
         ECSKIT_CHANGED=true\n\
         export ECSKIT_TASK_ROLE_ARN ECSKIT_TASK_ROLE_NAME ECSKIT_EXECUTION_ROLE_ARN ECSKIT_EXECUTION_ROLE_NAME ECSKIT_CHANGED\n"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("create role web-task"), "{stderr}");
    // The environment scoped the policy to the prefix config-upload printed.
    let again = role_create(
        &stack,
        &[
            "--name",
            "web",
            "--s3",
            "cfg-bucket/web/prod",
            "--output",
            "json",
        ],
    );
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json["changed"], false, "{json}");
    assert_eq!(json["aws_calls"]["mutating"], 0, "{json}");
}

#[test]
fn bad_input_exits_2_with_the_flag_named() {
    let stack = ecskit_testkit::local_stack();
    let out = role_create(&stack, &["--name", "web", "--bucket", "Not_A_Bucket"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("--bucket") && stderr.contains("Not_A_Bucket"),
        "{stderr}"
    );
    // Usage errors are 2 as well.
    assert_eq!(
        role_create(&stack, &["--access", "write"]).status.code(),
        Some(2)
    );
}

/// The step's own flags come first, under the step's name; Output and AWS come last.
#[test]
fn help_lists_the_steps_own_flags_first() {
    let (help, headings) = ecskit_testkit::help_and_headings(env!("CARGO_BIN_EXE_role-create"));
    assert_eq!(
        headings.first().map(String::as_str),
        Some("Options:"),
        "{help}"
    );
    assert_eq!(
        headings.get(1).map(String::as_str),
        Some("role-create:"),
        "{help}"
    );
    let n = headings.len();
    assert_eq!(
        headings[n - 3..].to_vec(),
        ["Output:", "AWS:", "Examples:"],
        "{help}"
    );
    let at = |s: &str| help.find(s).unwrap_or_else(|| panic!("no {s} in {help}"));
    assert!(at("\nrole-create:\n") < at("\nOutput:\n"));
    assert!(at("\nAWS:\n") < at("--region <REGION>"));
}
