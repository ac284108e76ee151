//! A stack's before task (`[before]`, task-run) against the local stack, with the real
//! binaries: it runs after taskdef-register and before service-run, and a failing one stops
//! the service's rollout (exit 3), leaving the service on its previous revision.
//!
//! moto never gives a container a non-zero exit code (its containers always stop with 0), so
//! the failing task here is one that does not stop within its `timeout`: task-run's other
//! "ran but failed" (exit 3). That the summary shows a failed container's exit code and last
//! lines is chain.rs's, on task-run's own report.
//!
//! Run it through `cargo xtask test -- -p xtask --test before` (and `cargo build -p task-run`
//! beside the other binaries).

mod support;

use support::{aws, bin_dir, build_image, local_env, step, xtask};

/// The tests of this file share the emulator: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A stack of `app` in a fresh directory, its image built; returns (dir, stack file).
fn fixture(app: &str) -> (std::path::PathBuf, String) {
    for var in [
        "AWS_ENDPOINT_URL",
        "ECSKIT_REGISTRY_ENDPOINT",
        "DOCKER_HOST",
    ] {
        local_env(var);
    }
    assert!(
        bin_dir().join("task-run").exists(),
        "task-run is missing: cargo build -p task-run"
    );
    let dir = std::env::temp_dir().join(format!("ecskit-before-it-{app}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let image = format!("{app}:1");
    build_image(&image, &dir);
    let stack = support::stack_file(&dir, app, &image);
    (dir, stack)
}

fn add(stack: &str, text: &str) {
    let mut s = std::fs::read_to_string(stack).unwrap();
    s.push_str(text);
    std::fs::write(stack, s).unwrap();
}

/// The task definition the service runs, as ECS says.
fn service_taskdef(app: &str) -> String {
    let out = aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        app,
        "--services",
        app,
    ])
    .unwrap();
    out["services"][0]["taskDefinition"]
        .as_str()
        .unwrap()
        .to_string()
}

fn destroy(stack: &str) {
    let (code, _, stderr) = xtask(&["destroy", "--stack", stack, "--yes", "--output", "json"]);
    assert_eq!(code, 0, "destroy failed:\n{stderr}");
}

#[test]
fn a_stack_with_a_before_task_runs_it_then_rolls_out() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("before-ok-{}", std::process::id());
    let (_dir, stack) = fixture(&app);
    add(
        &stack,
        "[before]\ncommand = [\"bin/migrate\", \"--up\"]\nenv = { MODE = \"once\" }\n",
    );

    let (code, plan, stderr) =
        xtask(&["deploy", "--stack", &stack, "--dry-run", "--output", "json"]);
    assert_eq!(code, 0, "dry run failed:\n{plan:#}\n{stderr}");
    assert_eq!(step(&plan, "task-run")["status"], "ok", "{plan:#}");

    let (code, out, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 0, "deploy failed:\n{out:#}\n{stderr}");
    let names: Vec<&str> = out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("taskdef-register") < pos("task-run") && pos("task-run") < pos("service-run"));
    let task = step(&out, "task-run");
    assert_eq!(task["status"], "ok", "{task:#}");
    assert_eq!(task["outputs"]["exit_code"], "0", "{task:#}");
    // The task ran the registered revision, with the command and env of the stack file.
    let arn = task["outputs"]["task_arn"].as_str().unwrap();
    let described = aws(&["ecs", "describe-tasks", "--cluster", &app, "--tasks", arn]).unwrap();
    let t = &described["tasks"][0];
    let registered = step(&out, "taskdef-register")["outputs"]["task_definition_arn"].clone();
    assert_eq!(t["taskDefinitionArn"], registered, "{t:#}");
    let o = &t["overrides"]["containerOverrides"][0];
    assert_eq!(
        o["command"],
        serde_json::json!(["bin/migrate", "--up"]),
        "{t:#}"
    );
    assert_eq!(o["environment"][0]["name"], "MODE", "{t:#}");
    assert_eq!(service_taskdef(&app), registered.as_str().unwrap());
    destroy(&stack);
}

#[test]
fn a_failing_before_task_leaves_the_service_on_its_previous_revision() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("before-fail-{}", std::process::id());
    let (dir, stack) = fixture(&app);
    let (code, first, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 0, "first deploy failed:\n{first:#}\n{stderr}");
    let revision1 = service_taskdef(&app);
    assert!(revision1.ends_with(":1"), "{revision1}");

    // A new task definition (another environment value) and a before task that does not
    // stop within its second.
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let td = std::fs::read_to_string(examples.join("taskdef.json"))
        .unwrap()
        .replace("en_US.UTF-8", "C.UTF-8");
    let td_file = dir.join("taskdef-2.json");
    std::fs::write(&td_file, td).unwrap();
    let text = std::fs::read_to_string(&stack).unwrap().replace(
        &examples.join("taskdef.json").display().to_string(),
        &td_file.display().to_string(),
    );
    std::fs::write(&stack, text).unwrap();
    add(
        &stack,
        "[before]\ncommand = [\"bin/migrate\"]\ntimeout = 1\n",
    );

    let (code, out, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 3, "{out:#}\n{stderr}");
    assert_eq!(step(&out, "taskdef-register")["changed"], true, "{out:#}");
    let task = step(&out, "task-run");
    assert_eq!(task["status"], "failed", "{task:#}");
    assert!(
        task["error"]
            .as_str()
            .unwrap()
            .contains("did not stop within 1s"),
        "{task:#}"
    );
    assert_eq!(step(&out, "service-run")["status"], "not run", "{out:#}");
    assert_eq!(service_taskdef(&app), revision1);
    destroy(&stack);
}
