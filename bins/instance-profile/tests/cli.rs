//! instance-profile as a process: exit codes, the conflict message, `--output github`.

use std::process::Command;

fn instance_profile(stack: &ecskit_testkit::LocalStack, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_instance-profile"))
        .args(["--region", "us-west-2", "--endpoint-url", &stack.moto_url])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn github_output_then_conflict_exits_2() {
    let stack = ecskit_testkit::local_stack();
    let out = instance_profile(&stack, &["--output", "github"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("instance_profile_name=ecsInstanceRole-profile\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("instance_role_arn=arn:aws:iam::123456789012:role/ecsInstanceRole\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("changed=true\n"), "{stdout}");

    let out = instance_profile(&stack, &["--role-name", "otherRole"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("ecsInstanceRole") && stderr.contains("otherRole"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// The step's own flags come first, under the step's name; Output and AWS come last.
#[test]
fn help_lists_the_steps_own_flags_first() {
    let (help, headings) =
        ecskit_testkit::help_and_headings(env!("CARGO_BIN_EXE_instance-profile"));
    assert_eq!(
        headings.first().map(String::as_str),
        Some("Options:"),
        "{help}"
    );
    assert_eq!(
        headings.get(1).map(String::as_str),
        Some("instance-profile:"),
        "{help}"
    );
    let n = headings.len();
    assert_eq!(
        headings[n - 3..].to_vec(),
        ["Output:", "AWS:", "Examples:"],
        "{help}"
    );
    let at = |s: &str| help.find(s).unwrap_or_else(|| panic!("no {s} in {help}"));
    assert!(at("\ninstance-profile:\n") < at("\nOutput:\n"));
    assert!(at("\nAWS:\n") < at("--region <REGION>"));
}
