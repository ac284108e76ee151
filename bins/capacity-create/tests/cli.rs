//! capacity-create as a process: bad input is exit 2 with nothing on stdout and nothing made, a
//! dry run's plan in `--output env`, the help's order.

use std::process::Command;

fn capacity_create(stack: &ecskit_testkit::LocalStack, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_capacity-create"))
        .args(["--region", "us-west-2", "--endpoint-url", &stack.moto_url])
        .args(args)
        .env_remove("ECSKIT_CAPACITY_PROVIDER_NAME")
        .env_remove("ECSKIT_INSTANCE_PROFILE_NAME")
        .output()
        .unwrap()
}

#[test]
fn bad_sizes_are_exit_2_naming_the_flags_with_nothing_on_stdout() {
    let stack = ecskit_testkit::local_stack();
    let name = format!("cli{}", std::process::id());
    let out = capacity_create(
        &stack,
        &[
            "--cluster",
            &name,
            "--name",
            &name,
            "--min-size",
            "3",
            "--max-size",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("--min-size 3 is more than --max-size 1"),
        "{stderr}"
    );
}

#[test]
fn an_allowed_ami_owner_that_is_not_an_account_id_is_exit_2() {
    let stack = ecskit_testkit::local_stack();
    let name = format!("own{}", std::process::id());
    let out = capacity_create(
        &stack,
        &[
            "--cluster",
            &name,
            "--name",
            &name,
            "--ami",
            "ami-0e9271c829888680e",
            "--allow-ami-owner",
            "111122223333,amazon",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("--allow-ami-owner: 'amazon' is not an AWS account id (12 digits)"),
        "{stderr}"
    );
    assert!(!stderr.contains("'111122223333'"), "{stderr}");
}

#[test]
fn a_dry_run_plans_with_env_output_and_makes_nothing() {
    let stack = ecskit_testkit::local_stack();
    let name = format!("dry{}", std::process::id());
    let out = capacity_create(
        &stack,
        &[
            "--cluster",
            &name,
            "--name",
            &name,
            "--dry-run",
            "--output",
            "env",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!("ECSKIT_CAPACITY_PROVIDER_NAME={name}\n")),
        "{stdout}"
    );
    assert!(stdout.contains("ECSKIT_CHANGED=true\n"), "{stdout}");
    // Nothing was made: a second dry run still plans the template.
    let again = capacity_create(&stack, &["--cluster", &name, "--name", &name, "--dry-run"]);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!("launch template {name}")),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// The step's own flags come first, under the step's name; Output and AWS come last.
#[test]
fn help_lists_the_steps_own_flags_first() {
    let (help, headings) = ecskit_testkit::help_and_headings(env!("CARGO_BIN_EXE_capacity-create"));
    assert_eq!(
        headings.get(1).map(String::as_str),
        Some("capacity-create:"),
        "{help}"
    );
    let n = headings.len();
    assert_eq!(
        headings[n - 3..].to_vec(),
        ["Output:", "AWS:", "Examples:"],
        "{help}"
    );
}

/// A stack deploy passes --retry-refresh as ECSKIT_RETRY_REFRESH in the environment: the flag
/// reads it (a value that is not a bool is refused naming the flag).
#[test]
fn retry_refresh_is_read_from_the_environment() {
    let stack = ecskit_testkit::local_stack();
    let name = format!("rr{}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_capacity-create"))
        .args(["--region", "us-west-2", "--endpoint-url", &stack.moto_url])
        .args(["--cluster", &name, "--name", &name, "--dry-run"])
        .env("ECSKIT_RETRY_REFRESH", "maybe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("'maybe' for '--retry-refresh'"), "{stderr}");
}

/// The CI job's environment opt-ins (ECSKIT_ALLOW_AMI_OWNER, ECSKIT_RETRY_REFRESH) hold for every
/// stack it deploys: a --managed one is not refused for them (they have nothing to act on).
#[test]
fn the_jobs_environment_opt_ins_do_not_refuse_a_managed_run() {
    let stack = ecskit_testkit::local_stack();
    let name = format!("mienv{}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_capacity-create"))
        .args(["--region", "us-west-2", "--endpoint-url", &stack.moto_url])
        .args([
            "--cluster",
            &name,
            "--name",
            &name,
            "--managed",
            "--dry-run",
        ])
        .env("ECSKIT_RETRY_REFRESH", "true")
        .env("ECSKIT_ALLOW_AMI_OWNER", "111122223333")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("cannot be used with"), "{stderr}");
}
