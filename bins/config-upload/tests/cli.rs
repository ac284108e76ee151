//! The binary as a user runs it: exit codes, stdout/stderr separation, `--output env`, and the
//! contents of `keys.properties` never printed, not even at `-vvv` or with `RUST_LOG=trace`.

use std::path::Path;
use std::process::{Command, Output};

use ecskit_testkit::{LocalStack, local_stack};

const SECRET: &str = "sk_live_9f8e7d6c5b4a-DO-NOT-PRINT";

fn config_upload(stack: &LocalStack, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_config-upload"));
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", &stack.moto_url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("ECSKIT_CONFIG_BUCKET")
        .env_remove("ECSKIT_CONFIG_PREFIX")
        .env_remove("ECSKIT_OUTPUT")
        .env_remove("ECSKIT_DRY_RUN")
        .env_remove("RUST_LOG")
        .env_remove("ECSKIT_CALL_LOG");
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_config(dir: &Path, secret_line: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("global.properties"), "jcc.count=2\n").unwrap();
    std::fs::write(
        dir.join("keys.properties"),
        format!("# keys\napi.key={secret_line}\n"),
    )
    .unwrap();
}

#[test]
fn keys_properties_is_never_printed_even_at_vvv() {
    let stack = local_stack();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conf");
    write_config(&dir, SECRET);
    let d = dir.to_str().unwrap();

    for (verbosity, rust_log, output) in [
        ("-vvv", None, "text"),
        ("-vvv", None, "json"),
        ("-v", Some("trace"), "env"),
    ] {
        // A new secret each time, so every run uploads it again.
        let secret = format!("{SECRET}-{output}");
        write_config(&dir, &secret);
        let mut cmd = config_upload(
            &stack,
            &[
                "--bucket",
                "cli-config",
                "--prefix",
                "prod",
                "--output",
                output,
                verbosity,
                d,
            ],
        );
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let out = cmd.output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{output}: {stderr}");
        assert!(
            stderr.contains("keys.properties"),
            "names are shown: {stderr}"
        );
        // env prints the outputs only; text and json list the keys uploaded too.
        let expected = if output == "env" {
            "s3://cli-config/prod/"
        } else {
            "prod/keys.properties"
        };
        assert!(stdout.contains(expected), "{output}: {stdout}");
        for part in [secret.as_str(), "sk_live_9f8e7d6c5b4a", "DO-NOT-PRINT"] {
            assert!(!stdout.contains(part), "{output}: secret on stdout");
            assert!(
                !stderr.contains(part),
                "{verbosity} {rust_log:?}: secret on stderr"
            );
        }
    }
}

#[test]
fn env_output_chains_and_a_second_run_is_unchanged() {
    let stack = local_stack();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conf");
    write_config(&dir, "k");
    let d = dir.to_str().unwrap();
    let call_log = tmp.path().join("calls.log");

    let out = config_upload(
        &stack,
        &[
            "--bucket",
            "cli-config",
            "--prefix",
            "prod/app/",
            "--output",
            "env",
            d,
        ],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // stdout has the results only; the actions were logged on stderr.
    assert_eq!(
        stdout,
        "ECSKIT_CONFIG_BUCKET=cli-config\nECSKIT_CONFIG_PREFIX=prod/app\nECSKIT_CONFIG_URI=s3://cli-config/prod/app/\nECSKIT_CHANGED=true\n\
         export ECSKIT_CONFIG_BUCKET ECSKIT_CONFIG_PREFIX ECSKIT_CONFIG_URI ECSKIT_CHANGED\n"
    );
    assert!(
        stderr.contains("upload prod/app/global.properties"),
        "{stderr}"
    );

    // The printed names are the flags' environment: a second run from them alone converges.
    let out = config_upload(&stack, &["--output", "env", d])
        .env("ECSKIT_CONFIG_BUCKET", "cli-config")
        .env("ECSKIT_CONFIG_PREFIX", "prod/app")
        .env("ECSKIT_CALL_LOG", &call_log)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("\nECSKIT_CHANGED=false\n"), "{stdout}");
    let calls = std::fs::read_to_string(&call_log).unwrap();
    assert!(calls.contains("S3.HeadObject"), "{calls}");
    assert!(
        !calls.contains("Put") && !calls.contains("Create"),
        "mutating calls on a converged run: {calls}"
    );
}

#[test]
fn a_missing_file_exits_2_and_creates_nothing() {
    let stack = local_stack();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conf");
    write_config(&dir, "k");
    let call_log = tmp.path().join("calls.log");
    let missing = tmp.path().join("keys-prod.properties");

    let out = config_upload(
        &stack,
        &[
            "--bucket",
            "cli-config",
            dir.to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
    )
    .env("ECSKIT_CALL_LOG", &call_log)
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("keys-prod.properties") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!call_log.exists(), "no AWS call was made");

    // The bucket was not created.
    let out = config_upload(&stack, &["--bucket", "cli-config", "--delete-bucket"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("changed: false"), "{stdout}");

    // No files at all is a usage error too.
    let out = config_upload(&stack, &["--bucket", "cli-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
