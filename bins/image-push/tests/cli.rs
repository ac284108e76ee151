//! The image-push binary as a user runs it: exit codes, stdout (results only) and stderr
//! (logs, errors) kept apart, `--output env`, and the ECR token kept out of every output and
//! every Docker config file, even at -vvv.

#[path = "../../../shared/tests/image_support/mod.rs"]
mod image_support;

use std::process::{Command, Output};

use image_support::*;

/// Runs the binary with HOME and DOCKER_CONFIG pointed at an empty directory, so any Docker
/// config file it wrote would be found there.
fn image_push(args: &[&str], home: &std::path::Path, extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_image-push"));
    cmd.args(args)
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env_remove("RUST_LOG")
        .env_remove("ECSKIT_OUTPUT");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("run image-push")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir`, with its contents.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push((p.clone(), std::fs::read_to_string(&p).unwrap_or_default()));
            }
        }
    }
    out
}

#[tokio::test]
async fn push_prints_env_lines_and_never_the_token_even_at_vvv() {
    let stack = ecskit_testkit::local_stack();
    let source = build_scratch_image(&unique("ecskit-cli-push"), "v1").await;
    let repo = unique("cli");
    let (token, user_password) = ecr_token(&stack).await;
    let password = user_password.split_once(':').unwrap().1.to_string();
    let home = tempfile::tempdir().unwrap();

    let out = image_push(
        &[&source, "--repository", &repo, "--output", "env", "-vvv"],
        home.path(),
        &[],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // stdout: only ECSKIT_ lines, with the outputs the next step reads.
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with("ECSKIT_") || l.starts_with("export ECSKIT_")),
        "{stdout}"
    );
    let value = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("ECSKIT_{name}=")))
            .map(|v| v.trim_matches('\'').to_string())
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
    };
    let digest = value("IMAGE_DIGEST");
    assert_eq!(
        value("IMAGE_URI"),
        format!("{}/{repo}@{digest}", stack.registry)
    );
    assert_eq!(
        value("IMAGE_TAG_URI"),
        format!("{}/{repo}:v1", stack.registry)
    );
    assert_eq!(
        value("REPOSITORY_URI"),
        format!("{}/{repo}", stack.registry)
    );
    assert_eq!(value("CHANGED"), "true");
    assert_eq!(
        registry_manifest_digest(&stack.registry, &repo, "v1", &user_password),
        Ok(digest)
    );
    // stderr: the log, with the per-layer lines of a non-terminal.
    assert!(stderr.contains("layer pushed"), "{stderr}");
    assert!(
        stderr.contains("GetAuthorizationToken"),
        "-vvv shows the calls: {stderr}"
    );

    // The token, and the password it decodes to, are nowhere.
    for secret in [&token, &password] {
        assert!(!stdout.contains(secret.as_str()), "stdout leaks a secret");
        assert!(!stderr.contains(secret.as_str()), "stderr leaks a secret");
        for (path, body) in files_under(home.path()) {
            assert!(
                !body.contains(secret.as_str()),
                "{} holds a secret",
                path.display()
            );
        }
        if let Some(real_home) = std::env::var_os("HOME") {
            let config = std::path::Path::new(&real_home).join(".docker/config.json");
            let body = std::fs::read_to_string(&config).unwrap_or_default();
            assert!(
                !body.contains(secret.as_str()),
                "{} holds a secret",
                config.display()
            );
        }
    }
    assert!(
        files_under(home.path()).is_empty(),
        "nothing is written under HOME or DOCKER_CONFIG"
    );

    // Second run: converged, and says so.
    let again = image_push(
        &[&source, "--repository", &repo, "--output", "env"],
        home.path(),
        &[],
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("ECSKIT_CHANGED=false"));
    assert!(!text(&again.stderr).contains("layer pushed"));
    remove_image(&source).await;
}

#[tokio::test]
async fn refused_credentials_exit_1_with_the_registrys_message() {
    let stack = ecskit_testkit::local_stack();
    let source = build_scratch_image(&unique("ecskit-cli-refused"), "v1").await;
    let home = tempfile::tempdir().unwrap();
    let out = image_push(
        &[
            &source,
            "--repository",
            &unique("refused"),
            "--registry-id",
            "111111111111",
            "-vvv",
        ],
        home.path(),
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    let error_line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        error_line.contains("unauthorized: authentication required"),
        "{error_line}"
    );
    assert!(stderr.contains("  hint: "), "{stderr}");
    assert!(!stderr.contains("111111111111-auth-token"), "{stderr}");
    drop(stack);
    remove_image(&source).await;
}

#[tokio::test]
async fn unreachable_engine_exits_1_with_a_hint() {
    let _stack = ecskit_testkit::local_stack();
    let home = tempfile::tempdir().unwrap();
    let sock = format!("unix://{}/no-docker.sock", home.path().display());
    for host in [sock.as_str(), "tcp://127.0.0.1:1"] {
        let out = image_push(
            &["app:1", "--repository", "app"],
            home.path(),
            &[("DOCKER_HOST", host)],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("cannot reach the Docker Engine at {host}")),
            "{stderr}"
        );
        assert!(
            stderr.contains("hint: ") && stderr.contains("DOCKER_HOST"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn bad_input_exits_2_and_changes_nothing() {
    let stack = ecskit_testkit::local_stack();
    let home = tempfile::tempdir().unwrap();
    let missing = format!("{}:v1", unique("ecskit-cli-missing"));
    let cases: [(&[&str], &str); 3] = [
        (&[&missing, "--repository", "app"], "no such local image"),
        (&["app:1", "--repository", "Bad/Name"], "--repository"),
        (
            &["app:1", "--repository", "app", "--tag", "no:colons"],
            "--tag",
        ),
    ];
    for (args, expected) in cases {
        let out = image_push(args, home.path(), &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.contains("hint: "), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let ctx = stack.ctx(false).await;
    let repos = ctx.ecr().describe_repositories().send().await.unwrap();
    assert!(repos.repositories().is_empty(), "{repos:?}");
}

/// `--help`: the step's own flags first under its name, then Output, then AWS; and it says
/// what `--delete --force` removes.
#[test]
fn help_shows_the_steps_own_flags_first_then_output_then_aws() {
    let (help, headings) = ecskit_testkit::help_and_headings(env!("CARGO_BIN_EXE_image-push"));
    assert_eq!(
        headings,
        vec!["Options:", "image-push:", "Output:", "AWS:", "Examples:"],
        "{help}"
    );
    let at = |s: &str| help.find(s).unwrap_or_else(|| panic!("no {s} in {help}"));
    assert!(at("\nimage-push:\n      --repository <REPOSITORY>") > at("\nOptions:"));
    assert!(at("--force") < at("Output:"));
    assert!(at("AWS:") < at("--region <REGION>"));
    assert!(
        help.contains(
            "--delete --force also removes every image in it, all tags, whoever pushed them"
        ),
        "{help}"
    );
}

/// RUST_LOG=trace (and a span-wide `[invoke]=trace`) would print the SDK's request and
/// response bodies, GetAuthorizationToken's answer among them: the logging filter keeps
/// those levels out, so neither the token nor what it decodes to is printed.
#[tokio::test]
async fn rust_log_trace_never_prints_the_token() {
    let stack = ecskit_testkit::local_stack();
    let source = build_scratch_image(&unique("ecskit-cli-trace"), "v1").await;
    let (token, user_password) = ecr_token(&stack).await;
    let password = user_password.split_once(':').unwrap().1.to_string();
    let home = tempfile::tempdir().unwrap();
    for rust_log in [
        "trace",
        "[invoke]=trace",
        "aws_smithy_runtime::client::orchestrator::http=trace",
    ] {
        let out = image_push(
            &[
                &source,
                "--repository",
                &unique("trace"),
                "--output",
                "json",
                "-vvv",
            ],
            home.path(),
            &[("RUST_LOG", rust_log)],
        );
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{rust_log}: {stderr}");
        if rust_log == "trace" {
            // The trace is really on: the SDK's own lifecycle lines are there.
            assert!(stderr.contains("GetAuthorizationToken"), "{stderr}");
        }
        for secret in [&token, &user_password, &password] {
            assert!(
                !stdout.contains(secret.as_str()),
                "{rust_log}: stdout leaks a secret"
            );
            assert!(
                !stderr.contains(secret.as_str()),
                "{rust_log}: stderr leaks a secret"
            );
        }
    }
    remove_image(&source).await;
}
