//! The orchestrator itself, run as a process over stand-in binaries (`ECSKIT_BIN_DIR`): shell
//! scripts that keep the binaries' contract (`--output env` lines, `ECSKIT_CALL_LOG` lines,
//! exit codes) and write down the flags and environment they were given. These tests need no
//! AWS: what they check is the chaining, the concurrency, the failure rule, `--only` with the
//! saved outputs, `--dry-run`, the stack file check and destroy's question.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

mod support;

use support::step;

const STEPS: [&str; 7] = [
    "image-push",
    "role-create",
    "instance-profile",
    "config-upload",
    "taskdef-register",
    "task-run",
    "service-run",
];

/// A stand-in for every binary. Stage-0 steps wait at a barrier until all of them have
/// started: run one after another they would time out, so a pass proves they ran together.
const FAKE: &str = r#"#!/bin/bash
name=$(basename "$0")
echo "$name args: $*" >> "$FAKE_LOG"
echo "$name env: image=${ECSKIT_IMAGE_URI:-} role=${ECSKIT_TASK_ROLE_ARN:-} config=${ECSKIT_CONFIG_URI:-} td=${ECSKIT_TASK_DEFINITION_ARN:-} region=${AWS_REGION:-}" >> "$FAKE_LOG"
echo "Fake.Describe${name//-/}" >> "$ECSKIT_CALL_LOG"
echo "progress of $name on stderr" >&2
case "$name" in
  image-push|role-create|config-upload)
    if [[ " $* " != *" --delete"* ]]; then
      touch "$FAKE_DIR/started-$name"
      for i in $(seq 1 100); do
        [ "$(ls "$FAKE_DIR" | grep -c '^started-')" -ge 3 ] && break
        sleep 0.05
      done
      [ "$(ls "$FAKE_DIR" | grep -c '^started-')" -ge 3 ] || { echo "error: $name ran alone" >&2; exit 1; }
    fi ;;
esac
if [ "${FAKE_FAIL:-}" = "$name" ]; then
  [ -n "${FAKE_STDERR:-}" ] && cat "$FAKE_STDERR" >&2
  echo "error: $name failed on purpose" >&2; exit 3
fi
changed=false
if [ ! -e "$FAKE_DIR/done-$name" ]; then
  changed=true; touch "$FAKE_DIR/done-$name"; echo "Fake.Create${name//-/}" >> "$ECSKIT_CALL_LOG"
fi
case "$name" in
  image-push) echo "ECSKIT_IMAGE_URI='127.0.0.1:5000/app@sha256:abc'" ;;
  role-create) echo "ECSKIT_TASK_ROLE_ARN='arn:aws:iam::123456789012:role/app-task'" ;;
  config-upload) echo "ECSKIT_CONFIG_URI='s3://app-config/app/'"; echo "ECSKIT_KEYS='a b,it'\''s'" ;;
  taskdef-register) echo "ECSKIT_TASK_DEFINITION_ARN='td-of:${ECSKIT_IMAGE_URI:-none}'" ;;
  service-run) echo "ECSKIT_SERVICE_ARN='arn:aws:ecs:us-west-2:123456789012:service/app/app'" ;;
  task-run) echo "ECSKIT_TASK_ARN='arn:aws:ecs:us-west-2:123456789012:task/app/0f3c'"; echo "ECSKIT_EXIT_CODE=0" ;;
esac
echo "ECSKIT_CHANGED=$changed"
"#;

struct Fixture {
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    fn new() -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ecskit-chain-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::create_dir_all(dir.join("config")).unwrap();
        for step in STEPS {
            let p = dir.join("bin").join(step);
            std::fs::write(&p, FAKE).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.join("config/global.properties"), "a=1\n").unwrap();
        std::fs::write(dir.join("taskdef.json"), r#"{"family": "app"}"#).unwrap();
        std::fs::write(
            dir.join("ecskit.toml"),
            r#"[app]
name = "app"
region = "eu-central-1"
[image]
source = "app:1"
[roles]
bucket = "app-config"
[config]
files = ["config"]
[task_definition]
file = "taskdef.json"
[service]
count = 2
"#,
        )
        .unwrap();
        Fixture { dir }
    }

    fn xtask(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
        c.args(args)
            .env("ECSKIT_BIN_DIR", self.dir.join("bin"))
            .env("FAKE_LOG", self.log_path())
            .env("FAKE_DIR", self.dir.join("state"))
            .env_remove("ECSKIT_IMAGE_URI")
            .env_remove("ECSKIT_TASK_DEFINITION_ARN")
            .stdin(Stdio::null());
        c
    }

    fn stack(&self) -> String {
        self.dir.join("ecskit.toml").display().to_string()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn deploy(&self, extra: &[&str]) -> (Output, Value) {
        let stack = self.stack();
        let mut args = vec!["deploy", "--stack", &stack, "--output", "json"];
        args.extend(extra);
        let out = self.xtask(&args).output().unwrap();
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not the JSON summary ({e}):\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out, json)
    }

    fn clear_barrier(&self) {
        for step in STEPS {
            let _ = std::fs::remove_file(self.dir.join("state").join(format!("started-{step}")));
        }
        let _ = std::fs::remove_file(self.log_path());
    }
}

fn line<'a>(log: &'a str, prefix: &str) -> &'a str {
    log.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{log}"))
}

#[test]
fn the_chain_passes_outputs_on_and_runs_stage_zero_together() {
    let f = Fixture::new();
    let (out, summary) = f.deploy(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(summary["exit_code"], 0);
    let log = f.log();
    // Each stage-0 step waited for the others: they ran at the same time.
    for s in ["image-push", "role-create", "config-upload"] {
        assert_eq!(step(&summary, s)["status"], "ok", "{summary:#}");
    }
    // taskdef-register saw the outputs of stage 0, service-run that of taskdef-register.
    let td_env = line(&log, "taskdef-register env:");
    assert!(
        td_env.contains("image=127.0.0.1:5000/app@sha256:abc"),
        "{td_env}"
    );
    assert!(
        td_env.contains("role=arn:aws:iam::123456789012:role/app-task"),
        "{td_env}"
    );
    assert!(td_env.contains("config=s3://app-config/app/"), "{td_env}");
    assert!(
        line(&log, "service-run env:").contains("td=td-of:127.0.0.1:5000/app@sha256:abc"),
        "{log}"
    );
    // The stack file's region reaches every step; flags come from the stack file.
    assert!(td_env.contains("region=eu-central-1"), "{td_env}");
    assert!(
        line(&log, "service-run args:")
            .contains("--cluster app --service app --desired-count 2 --launch-type FARGATE"),
        "{log}"
    );
    assert!(
        line(&log, "image-push args:").contains("app:1 --repository app --tag latest --output env"),
        "{log}"
    );
    // No [instance_profile]: that step is not part of this stack.
    assert!(!log.contains("instance-profile"), "{log}");
    // Calls counted from the call logs: two per step on a first run, one of them mutating.
    assert_eq!(
        summary["aws_calls"],
        serde_json::json!({"total": 10, "mutating": 5})
    );
    assert_eq!(
        step(&summary, "config-upload")["outputs"]["keys"],
        "a b,it's"
    );
    assert_eq!(step(&summary, "image-push")["changed"], true);
    // The steps' stderr is passed through, named.
    assert!(
        stderr.contains("[role-create] progress of role-create on stderr"),
        "{stderr}"
    );

    // Second run: every step unchanged, no mutating call.
    f.clear_barrier();
    let (out, summary) = f.deploy(&[]);
    assert!(out.status.success());
    for s in summary["steps"].as_array().unwrap() {
        assert_eq!(s["changed"], false, "{s:#}");
    }
    assert_eq!(summary["aws_calls"]["mutating"], 0);
    assert_eq!(summary["changed"], false);
}

#[test]
fn the_first_failing_step_stops_the_chain_with_its_exit_code() {
    let f = Fixture::new();
    let stack = f.stack();
    let out = f
        .xtask(&["deploy", "--stack", &stack])
        .env("FAKE_FAIL", "role-create")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let log = f.log();
    assert!(!log.contains("taskdef-register"), "{log}");
    assert!(!log.contains("service-run"), "{log}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exit 3"), "{text}");
    assert!(
        text.contains("| error: role-create failed on purpose"),
        "{text}"
    );
    assert!(text.contains("taskdef-register  not run"), "{text}");
}

#[test]
fn only_takes_the_skipped_steps_outputs_from_the_last_run() {
    let f = Fixture::new();
    let (out, _) = f.deploy(&[]);
    assert!(out.status.success());
    f.clear_barrier();
    let (out, summary) = f.deploy(&["--only", "taskdef-register"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary["steps"].as_array().unwrap().len(), 1);
    let log = f.log();
    assert!(!log.contains("image-push"), "{log}");
    assert!(
        line(&log, "taskdef-register env:").contains("image=127.0.0.1:5000/app@sha256:abc"),
        "{log}"
    );

    // --from runs that step and the ones after it.
    f.clear_barrier();
    let (out, summary) = f.deploy(&["--from", "taskdef-register"]);
    assert!(out.status.success());
    let names: Vec<&str> = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["taskdef-register", "service-run"]);
}

#[test]
fn dry_run_reaches_every_step_and_saves_nothing() {
    let f = Fixture::new();
    let (out, summary) = f.deploy(&["--dry-run"]);
    assert!(out.status.success());
    assert_eq!(summary["dry_run"], true);
    let log = f.log();
    let args: Vec<&str> = log.lines().filter(|l| l.contains(" args: ")).collect();
    assert_eq!(args.len(), 5, "{log}");
    assert!(args.iter().all(|l| l.ends_with("--dry-run")), "{log}");
    assert!(!f.dir.join(".ecskit").exists());
}

#[test]
fn a_bad_stack_file_runs_nothing_and_names_every_problem() {
    let f = Fixture::new();
    let text = std::fs::read_to_string(f.dir.join("ecskit.toml"))
        .unwrap()
        .replace(
            "count = 2",
            "count = 2\ncuont = 3\n[service.network]\nsubnet = \"x\"",
        )
        .replace("bucket = \"app-config\"", "bucket = \"App_Config\"");
    std::fs::write(f.dir.join("ecskit.toml"), text).unwrap();
    let stack = f.stack();
    let out = f.xtask(&["deploy", "--stack", &stack]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown key `service.cuont`"), "{stderr}");
    assert!(
        stderr.contains("unknown key `service.network.subnet`"),
        "{stderr}"
    );
    assert!(stderr.contains("roles.bucket"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(!f.log_path().exists(), "a step ran: {}", f.log());
}

#[test]
fn destroy_asks_and_a_closed_stdin_is_a_no() {
    let f = Fixture::new();
    let stack = f.stack();
    let out = f.xtask(&["destroy", "--stack", &stack]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--yes"), "{stderr}");
    assert!(!f.log_path().exists(), "a step ran: {}", f.log());

    let out = f
        .xtask(&["destroy", "--stack", &stack, "--yes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = f.log();
    let order: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" args: "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    // The service, then its task definition; what the task definition named (config, roles,
    // image) goes after it, those three at the same time.
    assert_eq!(order[..2], ["service-run", "taskdef-register"]);
    let mut rest = order[2..].to_vec();
    rest.sort();
    assert_eq!(rest, ["config-upload", "image-push", "role-create"]);
    for l in log.lines().filter(|l| l.contains(" args: ")) {
        assert!(l.contains("--delete"), "{l}");
    }
}

#[test]
fn a_failed_deploys_log_lines_are_in_the_summary() {
    let f = Fixture::new();
    let stack = f.stack();
    // What service-run prints when a deployment fails: progress, then the failure report with
    // the failing container's last log lines.
    let mut report: Vec<String> = (1..=30)
        .map(|i| format!("waiting for deployment ({i})"))
        .collect();
    report.extend(
        [
            "task 0f3c9a1e stopped: Essential container in task exited",
            "  container app: exit code 1",
            "  last 2 log lines of app:",
            "    | starting snaplex jcc",
            "    | FATAL: cannot read s3://cfg/app/global.properties: AccessDenied",
        ]
        .map(String::from),
    );
    let file = f.dir.join("service-run.stderr");
    std::fs::write(&file, report.join("\n") + "\n").unwrap();
    let out = f
        .xtask(&["deploy", "--stack", &stack])
        .env("FAKE_FAIL", "service-run")
        .env("FAKE_STDERR", &file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "      | task 0f3c9a1e stopped: Essential container in task exited",
        "      |   container app: exit code 1",
        "      |     | FATAL: cannot read s3://cfg/app/global.properties: AccessDenied",
        "      | error: service-run failed on purpose",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("waiting for deployment (30)"), "{text}");
}

#[test]
fn a_failing_before_task_stops_its_services_rollout_with_the_containers_lines() {
    let f = Fixture::new();
    let stack = f.stack();
    let mut text = std::fs::read_to_string(&stack).unwrap();
    text.push_str("[before]\ncommand = [\"bin/migrate\", \"--up\"]\n");
    std::fs::write(&stack, text).unwrap();
    // What task-run prints when the task's essential container fails.
    let report = [
        "task 0f3c stopped: Essential container in task exited",
        "  container app: exit code 4",
        "  last 1 log lines of app:",
        "    | migration 7 failed: duplicate column",
        "error: task arn:aws:ecs:us-west-2:123456789012:task/app/0f3c failed: essential container app exited with code 4",
    ];
    let file = f.dir.join("task-run.stderr");
    std::fs::write(&file, report.join("\n") + "\n").unwrap();
    let out = f
        .xtask(&["deploy", "--stack", &stack])
        .env("FAKE_FAIL", "task-run")
        .env("FAKE_STDERR", &file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    for l in [
        "  failed: task-run (exit 3)",
        "      |   container app: exit code 4",
        "      |     | migration 7 failed: duplicate column",
    ] {
        assert!(text.contains(l), "missing {l:?} in:\n{text}");
    }
    let log = f.log();
    // It ran the task definition taskdef-register just registered, with the stack's command;
    // the service was not touched.
    assert!(
        line(&log, "task-run env:").contains("td=td-of:127.0.0.1:5000/app@sha256:abc"),
        "{log}"
    );
    assert!(
        line(&log, "task-run args:").contains(r#"--command=["bin/migrate","--up"]"#),
        "{log}"
    );
    assert!(!log.contains("service-run args:"), "{log}");
}
