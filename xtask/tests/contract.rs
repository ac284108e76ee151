//! The part of the contract every binary shares, checked on all eight at once: `--help` shows
//! examples, the common flags and the `ECSKIT_*` names; a usage error exits 2 with nothing on
//! stdout. No AWS is needed: these fail or finish before the first call.

use std::path::PathBuf;
use std::process::Command;

const BINARIES: [&str; 8] = [
    "image-push",
    "role-create",
    "instance-profile",
    "capacity-create",
    "config-upload",
    "taskdef-register",
    "service-run",
    "task-run",
];

/// The binaries `cargo test --workspace` built beside the xtask.
fn binary(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_xtask"))
        .parent()
        .unwrap()
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (or cargo build -p {name})",
        path.display()
    );
    path
}

#[test]
fn every_binary_documents_its_flags_and_environment_names() {
    for name in BINARIES {
        let out = Command::new(binary(name)).arg("--help").output().unwrap();
        assert!(out.status.success(), "{name} --help failed");
        let help = String::from_utf8(out.stdout).unwrap();
        for needle in [
            "Examples:",
            "--output",
            "--dry-run",
            "--verbose",
            "--quiet",
            "--region",
            "--endpoint-url",
            "ECSKIT_",
        ] {
            assert!(
                help.contains(needle),
                "{name} --help lacks {needle}:\n{help}"
            );
        }
        let out = Command::new(binary(name))
            .arg("--version")
            .output()
            .unwrap();
        assert!(out.status.success(), "{name} --version failed");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(name));
    }
}

#[test]
fn a_usage_error_exits_2_with_nothing_on_stdout() {
    for name in BINARIES {
        let out = Command::new(binary(name))
            .args(["--output", "yaml"])
            .env_remove("ECSKIT_OUTPUT")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name} --output yaml");
        assert!(
            out.stdout.is_empty(),
            "{name} printed on stdout: {:?}",
            out.stdout
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--output"), "{name}: {stderr}");
    }
}

#[test]
fn a_failure_prints_an_error_line_and_no_debug_dump_on_stderr_only() {
    // Without required inputs each binary exits 2; instance-profile and capacity-create, whose
    // inputs all have defaults, get as far as the (unreachable) endpoint and exit 1. Each fails
    // with one `error:` line and a hint on stderr, nothing on stdout, and no Rust dump.
    let expected = [
        ("image-push", 2),
        ("role-create", 2),
        ("instance-profile", 1),
        ("capacity-create", 1),
        ("config-upload", 2),
        ("taskdef-register", 2),
        ("service-run", 2),
        ("task-run", 2),
    ];
    for (name, code) in expected {
        let out = Command::new(binary(name))
            .args(["--dry-run", "--output", "env"])
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_REGION", "us-west-2")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("ECSKIT_RETRY_ATTEMPTS", "1")
            .env_remove("ECSKIT_CLUSTER")
            .env_remove("ECSKIT_TASKDEF_FILE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name} printed on stdout on failure");
        assert!(
            stderr.starts_with("error: ") || stderr.contains("\nerror: "),
            "{name}: {stderr}"
        );
        assert!(
            !stderr.contains("{ "),
            "{name} printed a Rust debug dump: {stderr}"
        );
    }
}
