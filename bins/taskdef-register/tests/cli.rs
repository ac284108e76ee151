//! The taskdef-register binary as a process: exit codes, stdout/stderr, env output.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/tests/fixtures/taskdefs")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn cmd(stack: &ecskit_testkit::LocalStack) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_taskdef-register"));
    c.env("AWS_ENDPOINT_URL", &stack.moto_url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .env_remove("ECSKIT_IMAGE_URI")
        .env_remove("ECSKIT_TASK_ROLE_ARN")
        .env_remove("ECSKIT_EXECUTION_ROLE_ARN")
        .env_remove("ECSKIT_TASKDEF_FILE")
        .env_remove("ECSKIT_OUTPUT")
        .env_remove("RUST_LOG");
    c
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn env_output_warns_once_and_converges() {
    let stack = ecskit_testkit::local_stack();
    let out = cmd(&stack)
        .args(["--file", &fixture("vendor-guide.json"), "--output", "env"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "ECSKIT_TASK_DEFINITION_ARN=arn:aws:ecs:us-west-2:123456789012:task-definition/test-ecs:1\n\
         ECSKIT_TASK_FAMILY=test-ecs\nECSKIT_TASK_REVISION=1\nECSKIT_CHANGED=true\n\
         export ECSKIT_TASK_DEFINITION_ARN ECSKIT_TASK_FAMILY ECSKIT_TASK_REVISION ECSKIT_CHANGED\n"
    );
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("read-only")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("taskDefinitionArn, revision, status, requiresAttributes, compatibilities, registeredAt, registeredBy"),
        "{stderr}"
    );

    let again = cmd(&stack)
        .args([
            "--file",
            &fixture("vendor-guide.json"),
            "--output",
            "env",
            "-q",
        ])
        .output()
        .unwrap();
    let (stdout, _) = text(&again);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        stdout.contains("ECSKIT_TASK_REVISION=1\nECSKIT_CHANGED=false\n"),
        "{stdout}"
    );
}

#[test]
fn stdin_substitution_and_env_overrides() {
    let stack = ecskit_testkit::local_stack();
    let doc = r#"{"family": "${FAMILY:-from-stdin}",
        "containerDefinitions": [{"name": "app", "image": "placeholder", "memory": 128,
          "environment": [{"name": "GREETING", "value": "${GREETING}"}]}]}"#;
    let mut child = cmd(&stack)
        .args(["--file", "-", "--output", "json"])
        .env("GREETING", "hello")
        .env("ECSKIT_IMAGE_URI", "127.0.0.1:5000/app:7")
        .env(
            "ECSKIT_TASK_ROLE_ARN",
            "arn:aws:iam::123456789012:role/app-task",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["task_family"], "from-stdin");
    assert_eq!(v["changed"], true);

    // What was registered carries the substitutions and overrides.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let doc = rt.block_on(async {
        let ctx = stack.ctx(false).await;
        ecskit::taskdef_register::latest_active(&ctx.ecs(), "from-stdin")
            .await
            .unwrap()
            .unwrap()
            .doc
    });
    assert_eq!(
        doc["containerDefinitions"][0]["image"],
        "127.0.0.1:5000/app:7"
    );
    assert_eq!(
        doc["containerDefinitions"][0]["environment"][0]["value"],
        "hello"
    );
    assert_eq!(
        doc["taskRoleArn"],
        "arn:aws:iam::123456789012:role/app-task"
    );
}

#[test]
fn bad_input_exits_2_with_nothing_on_stdout() {
    let stack = ecskit_testkit::local_stack();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("td.json");
    std::fs::write(
        &path,
        r#"{"family": "bad", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "4096",
            "containerDefinitions": [{"name": "app", "image": "x", "portMappings": [{"containerPort": 80, "hostPort": 81}]}]}"#,
    )
    .unwrap();
    let out = cmd(&stack)
        .args(["--file", path.to_str().unwrap(), "--output", "env"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("3 problems in the input:"), "{stderr}");
    assert!(
        stderr.contains("networkMode: Fargate requires \"awsvpc\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("memory: 4096 MiB is not valid with cpu 256 on Fargate"),
        "{stderr}"
    );
    assert!(
        stderr.contains("containerDefinitions[0].portMappings[0].hostPort"),
        "{stderr}"
    );
}

#[test]
fn plaintext_values_are_not_printed_even_at_vvv() {
    let stack = ecskit_testkit::local_stack();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("td.json");
    std::fs::write(
        &path,
        r#"{"family": "pw", "containerDefinitions": [{"name": "app", "image": "x", "memory": 128,
            "environment": [{"name": "DB_PASSWORD", "value": "hunter2-not-printed"}]}]}"#,
    )
    .unwrap();
    let refused = cmd(&stack)
        .args(["--file", path.to_str().unwrap(), "-vvv"])
        .output()
        .unwrap();
    let (_, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr.contains("--allow-plaintext-secrets"), "{stderr}");
    assert!(!stderr.contains("hunter2-not-printed"), "{stderr}");

    let allowed = cmd(&stack)
        .args([
            "--file",
            path.to_str().unwrap(),
            "-vvv",
            "--allow-plaintext-secrets",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&allowed);
    assert_eq!(allowed.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("hunter2-not-printed") && !stdout.contains("hunter2-not-printed"));
}

/// `--help`: the step's own flags first under its name, then Output, then AWS.
#[test]
fn help_shows_the_steps_own_flags_first_then_output_then_aws() {
    let (help, headings) =
        ecskit_testkit::help_and_headings(env!("CARGO_BIN_EXE_taskdef-register"));
    assert_eq!(
        headings,
        vec![
            "Options:",
            "taskdef-register:",
            "Output:",
            "AWS:",
            "Examples:"
        ],
        "{help}"
    );
    let at = |s: &str| help.find(s).unwrap_or_else(|| panic!("no {s} in {help}"));
    assert!(at("taskdef-register:") < at("--file <FILE>"));
    assert!(at("--keep <N>") < at("Output:"));
    assert!(at("Output:") < at("--dry-run") && at("--dry-run") < at("AWS:"));
    assert!(at("AWS:") < at("--region <REGION>"));
}

/// A credential-looking variable whose value came from `${VAR}` (and is let through by
/// `--allow-plaintext-secrets`) is sent as written but printed as `***` in the dry run's
/// document, in the `--diff` (where a change shows as `*** (changed)`), and in the json
/// output, at -vvv and with RUST_LOG=trace too.
#[test]
fn secret_values_are_masked_in_the_dry_run_the_diff_and_the_json_output() {
    let stack = ecskit_testkit::local_stack();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("td.json");
    std::fs::write(
        &path,
        r#"{"family": "masked", "containerDefinitions": [{"name": "app", "image": "x", "memory": 128,
            "environment": [{"name": "DB_PASSWORD", "value": "${DB_PASSWORD}"}, {"name": "LANG", "value": "C.UTF-8"}]}]}"#,
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let first = cmd(&stack)
        .args(["--file", file, "--allow-plaintext-secrets"])
        .env("DB_PASSWORD", "first-secret-value")
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first).1);

    for extra in [&["-vvv"][..], &[]] {
        let mut c = cmd(&stack);
        c.args([
            "--file",
            file,
            "--allow-plaintext-secrets",
            "--dry-run",
            "--diff",
        ])
        .args(["--output", "json"])
        .args(extra)
        .env("DB_PASSWORD", "second-secret-value");
        if extra.is_empty() {
            c.env("RUST_LOG", "trace");
        }
        let out = c.output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        for secret in ["first-secret-value", "second-secret-value"] {
            assert!(!stdout.contains(secret), "stdout shows {secret}: {stdout}");
            assert!(!stderr.contains(secret), "stderr shows {secret}");
        }
        // The diff on stderr: the change shows without either value.
        assert!(
            stderr.contains("-          \"value\": \"***\"")
                && stderr.contains("+          \"value\": \"*** (changed)\""),
            "{stderr}"
        );
        // The dry run's document on stderr, and the json output.
        assert!(stderr.contains("\"value\": \"C.UTF-8\""), "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let env = &v["document"]["containerDefinitions"][0]["environment"];
        assert_eq!(env[0]["value"], "***", "{v}");
        assert_eq!(env[1]["value"], "C.UTF-8", "{v}");
        assert!(v["diff"].as_str().unwrap().contains("*** (changed)"), "{v}");
        assert_eq!(v["task_revision"], 2, "{v}");
    }

    // What was registered holds the real value: masking is for printing only.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let doc = rt.block_on(async {
        let ctx = stack.ctx(false).await;
        ecskit::taskdef_register::latest_active(&ctx.ecs(), "masked")
            .await
            .unwrap()
            .unwrap()
            .doc
    });
    assert_eq!(
        doc["containerDefinitions"][0]["environment"][0]["value"],
        "first-secret-value"
    );
}
