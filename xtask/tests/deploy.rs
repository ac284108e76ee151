//! The whole chain against the local stack, with the real binaries: deploy, deploy again (no
//! step changes anything and no mutating call is made), then destroy, after which none of the
//! stack's resources is left.
//!
//! Run it through `cargo xtask test -- -p xtask --test deploy`, which starts the local stack
//! and sets AWS_ENDPOINT_URL, ECSKIT_REGISTRY_ENDPOINT, DOCKER_HOST and ECSKIT_LOCAL_MOTO_URL.
//! The binaries are the ones cargo built beside this test (`cargo test --workspace` builds
//! them; otherwise `cargo build -p image-push -p role-create -p config-upload
//! -p taskdef-register -p service-run`). What is left afterwards is checked with the aws CLI
//! of the stack's venv, independent of the binaries under test.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

mod support;

use support::{aws, bin_dir, build_image, local_env, xtask};

/// The tests of this file share the emulator: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn deploy_twice_then_destroy_leaves_nothing() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for var in [
        "ECSKIT_LOCAL_MOTO_URL",
        "AWS_ENDPOINT_URL",
        "ECSKIT_REGISTRY_ENDPOINT",
        "DOCKER_HOST",
    ] {
        local_env(var);
    }
    let id = std::process::id();
    let app = format!("chain-{id}");
    let dir = std::env::temp_dir().join(format!("ecskit-deploy-it-{id}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let image = format!("{app}:1");
    build_image(&image, &dir);
    let stack = support::stack_file(&dir, &app, &image);

    // A dry run of the new stack: the whole plan, every step ok (service-run plans with the
    // revision taskdef-register would register), nothing changed.
    let (code, planned, stderr) =
        xtask(&["deploy", "--stack", &stack, "--dry-run", "--output", "json"]);
    assert_eq!(code, 0, "dry run failed:\n{planned:#}\n{stderr}");
    for step in planned["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "ok", "{step:#}");
    }
    assert_eq!(planned["aws_calls"]["mutating"], 0, "{planned:#}");
    assert!(
        stderr.contains(
            "is not registered yet (the revision taskdef-register's dry run would register)"
        ),
        "{stderr}"
    );

    // First run: everything is created.
    let (code, first, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 0, "first deploy failed:\n{first:#}\n{stderr}");
    assert_eq!(first["changed"], true, "{first:#}");
    for step in first["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "ok", "{step:#}");
        assert_eq!(step["changed"], true, "a first run creates: {step:#}");
    }
    assert!(first["aws_calls"]["mutating"].as_u64().unwrap() > 0);

    // Second run: nothing changes, and no mutating call is made.
    let (code, second, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 0, "second deploy failed:\n{second:#}\n{stderr}");
    for step in second["steps"].as_array().unwrap() {
        assert_eq!(step["changed"], false, "second run changed: {step:#}");
        assert_eq!(step["aws_calls"]["mutating"], 0, "{step:#}");
    }
    assert_eq!(second["aws_calls"]["mutating"], 0, "{second:#}");
    assert!(second["aws_calls"]["total"].as_u64().unwrap() > 0);

    // The deployed service runs the registered task definition, whose task role is the one
    // role-create made.
    let td_arn = second["steps"][3]["outputs"]["task_definition_arn"]
        .as_str()
        .unwrap()
        .to_string();
    let td = aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        &td_arn,
    ])
    .unwrap();
    assert!(
        td["taskDefinition"]["taskRoleArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("role/{app}-task")),
        "{td:#}"
    );

    // destroy, then nothing of the stack is left.
    let (code, gone, stderr) = xtask(&["destroy", "--stack", &stack, "--yes", "--output", "json"]);
    assert_eq!(code, 0, "destroy failed:\n{gone:#}\n{stderr}");

    for role in [format!("{app}-task"), format!("{app}-execution")] {
        let r = aws(&["iam", "get-role", "--role-name", &role]);
        assert!(
            r.as_ref().is_err_and(|e| e.contains("NoSuchEntity")),
            "role {role} is left: {r:?}"
        );
    }
    let bucket = aws(&["s3api", "head-bucket", "--bucket", &format!("{app}-config")]);
    assert!(bucket.is_err(), "bucket is left: {bucket:?}");
    let repo = aws(&["ecr", "describe-repositories", "--repository-names", &app]);
    assert!(
        repo.as_ref()
            .is_err_and(|e| e.contains("RepositoryNotFound")),
        "repository is left: {repo:?}"
    );
    let tds = aws(&[
        "ecs",
        "list-task-definitions",
        "--family-prefix",
        &app,
        "--status",
        "ACTIVE",
    ])
    .unwrap();
    assert_eq!(
        tds["taskDefinitionArns"],
        serde_json::json!([]),
        "active task definitions are left"
    );
    let services = aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &app,
        "--services",
        &app,
    ]);
    if let Ok(v) = &services {
        for s in v["services"].as_array().into_iter().flatten() {
            assert_eq!(s["status"], "INACTIVE", "service is left: {s:#}");
        }
    }
    let clusters = aws(&["ecs", "describe-clusters", "--clusters", &app]).unwrap();
    for c in clusters["clusters"].as_array().into_iter().flatten() {
        assert_eq!(c["status"], "INACTIVE", "cluster is left: {c:#}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// examples/Makefile, as a user runs it: `make deploy`, again (nothing changes), then
/// `make destroy`, against the local stack with the binaries this build made.
#[test]
fn the_example_makefile_deploys_twice_and_destroys() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let id = std::process::id();
    let app = format!("make-{id}");
    let tmp = tempfile::tempdir().unwrap();
    // The Makefile keeps its state beside itself: run a copy, not the repository's file.
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for f in ["Makefile", "taskdef.json"] {
        std::fs::copy(examples.join(f), tmp.path().join(f)).unwrap();
    }
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    for entry in std::fs::read_dir(examples.join("config")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), config.join(entry.file_name())).unwrap();
    }
    let image = format!("{app}:1");
    build_image(&image, tmp.path());
    let make = |target: &str| {
        let out = Command::new("make")
            .arg("-C")
            .arg(tmp.path())
            .arg(target)
            .arg(format!("APP={app}"))
            .arg(format!("IMAGE={image}"))
            .arg(format!("BUCKET={app}-config"))
            .arg(format!("BIN={}", bin_dir().display()))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make {target} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let changed = |step: &str| {
        let env = std::fs::read_to_string(tmp.path().join(format!(".ecskit/{step}.env"))).unwrap();
        env.lines()
            .find_map(|l| l.strip_prefix("ECSKIT_CHANGED="))
            .unwrap()
            .to_string()
    };
    make("deploy");
    assert_eq!(changed("service-run"), "true");
    make("deploy");
    for step in [
        "image-push",
        "role-create",
        "config-upload",
        "taskdef-register",
        "service-run",
    ] {
        assert_eq!(
            changed(step),
            "false",
            "{step} changed on the second make deploy"
        );
    }
    make("destroy");
    assert!(!tmp.path().join(".ecskit").exists());
    assert!(aws(&["iam", "get-role", "--role-name", &format!("{app}-task")]).is_err());
    let services = aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &app,
        "--services",
        &app,
    ])
    .unwrap_or(Value::Null);
    let live = services["services"]
        .as_array()
        .map(|l| l.iter().filter(|s| s["status"] == "ACTIVE").count())
        .unwrap_or(0);
    assert_eq!(live, 0, "{services}");
}
