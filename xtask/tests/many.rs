//! Many services from one stack file (examples/fleet/ecskit.toml, twenty services) on the local
//! stack: deployed, re-deployed as a no-op, destroyed; ten of them deployed through a proxy
//! that throttles a fifth of all requests; and one service's failure leaving the other's steps
//! running. Run through `cargo xtask test` (the local stack), like tests/deploy.rs.

mod support;

use std::path::{Path, PathBuf};

use ecskit_testkit::fault_proxy::{self, Faults};
use serde_json::Value;
use support::{aws, build_image, local_env, xtask, xtask_with};

/// The fleet example under this test's names, with its first `services` services.
fn fleet(dir: &Path, app: &str, image: &str, services: usize) -> String {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let text = std::fs::read_to_string(examples.join("fleet/ecskit.toml")).unwrap();
    let mut kept = String::new();
    let mut seen = 0;
    for block in text.split("\n[services.") {
        if !kept.is_empty() {
            seen += 1;
            if seen > services {
                break;
            }
            kept.push_str("\n[services.");
        }
        kept.push_str(block);
    }
    let text = kept
        .replace("name = \"fleet\"", &format!("name = \"{app}\""))
        .replace("cluster = \"fleet\"", &format!("cluster = \"{app}\""))
        .replace("\"fleet-config\"", &format!("\"{app}-config\""))
        .replace("source = \"fleet:1\"", &format!("source = \"{image}\""))
        .replace("family = \"fleet-", &format!("family = \"{app}-"))
        .replace(
            "\"../config\"",
            &format!("\"{}\"", examples.join("config").display()),
        )
        .replace(
            "\"../taskdef.json\"",
            &format!("\"{}\"", examples.join("taskdef.json").display()),
        );
    let path = dir.join("ecskit.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The cluster's ACTIVE services (moto lists deleted ones too, as INACTIVE).
fn services_of(cluster: &str) -> usize {
    let arns: Vec<String> = aws(&["ecs", "list-services", "--cluster", cluster])
        .map(|v| {
            v["serviceArns"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default();
    arns.chunks(10)
        .map(|chunk| {
            let mut args = vec![
                "ecs",
                "describe-services",
                "--cluster",
                cluster,
                "--services",
            ];
            args.extend(chunk.iter().map(String::as_str));
            let v = aws(&args).unwrap();
            v["services"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["status"] == "ACTIVE")
                .count()
        })
        .sum()
}

fn revisions(family: &str) -> usize {
    let v = aws(&[
        "ecs",
        "list-task-definitions",
        "--family-prefix",
        family,
        "--status",
        "ACTIVE",
    ])
    .unwrap();
    let needle = format!("task-definition/{family}:");
    v["taskDefinitionArns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a.as_str().is_some_and(|a| a.contains(&needle)))
        .count()
}

fn all_ok(summary: &Value) {
    for step in summary["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "ok", "{step:#}");
    }
}

/// The tests of this file share the emulator: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn twenty_services_deploy_redeploy_as_a_no_op_and_are_destroyed() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("fleet{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{app}:1");
    build_image(&image, dir.path());
    let stack = fleet(dir.path(), &app, &image, 20);

    let (code, first, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 0, "the first deploy failed:\n{first:#}\n{stderr}");
    all_ok(&first);
    assert_eq!(first["services"].as_array().unwrap().len(), 20);
    // One image-push, one config-upload and one role-create each for the shared part and for
    // the API's own: 2 + 2 + 1 + 20 task definitions + 20 services.
    let steps = first["steps"].as_array().unwrap();
    let count = |step: &str| steps.iter().filter(|s| s["step"] == step).count();
    assert_eq!(
        (
            count("image-push"),
            count("role-create"),
            count("config-upload"),
            count("taskdef-register"),
            count("service-run")
        ),
        (1, 2, 2, 20, 20)
    );
    assert_eq!(services_of(&app), 20);
    // verify ran once per shared thing, not once per service: nineteen services share the
    // roles and all twenty the image, so one taskdef-register asks those questions and the
    // others read its answers. Each step's calls beyond the fewest any made are verify's
    // questions: without the sharing, all twenty would ask about as many as the busiest.
    let calls: Vec<u64> = steps
        .iter()
        .filter(|s| s["step"] == "taskdef-register")
        .map(|s| s["aws_calls"]["total"].as_u64().unwrap())
        .collect();
    let (fewest, busiest) = (*calls.iter().min().unwrap(), *calls.iter().max().unwrap());
    let asked: u64 = calls.iter().map(|c| c - fewest).sum();
    assert!(
        busiest > fewest && asked <= 2 * (busiest - fewest),
        "taskdef-register's calls per service: {calls:?} (verify's questions asked {asked} times in all)"
    );
    // Outputs are each service's own: web's service-run names web's service.
    let web = steps
        .iter()
        .find(|s| s["step"] == "service-run" && s["services"] == serde_json::json!(["web"]))
        .unwrap();
    assert!(
        web["outputs"]["service_arn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{app}/web")),
        "{web:#}"
    );

    let (code, second, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 0, "the re-deploy failed:\n{second:#}\n{stderr}");
    assert_eq!(
        second["aws_calls"]["mutating"], 0,
        "the no-change re-deploy made mutating calls:\n{second:#}"
    );
    assert_eq!(second["changed"], false);

    // --only a service: that service's steps and the shared ones it needs, nothing else.
    let (code, one, stderr) = xtask(&[
        "deploy", "--stack", &stack, "--only", "node-07", "--output", "json",
    ]);
    assert_eq!(code, 0, "{one:#}\n{stderr}");
    let names: Vec<&Value> = one["services"].as_array().unwrap().iter().collect();
    assert_eq!(names.len(), 1, "{one:#}");
    assert_eq!(names[0]["name"], "node-07");

    let (code, gone, stderr) = xtask(&["destroy", "--stack", &stack, "--yes", "--output", "json"]);
    assert_eq!(code, 0, "destroy failed:\n{gone:#}\n{stderr}");
    all_ok(&gone);
    assert_eq!(services_of(&app), 0);
    let clusters = aws(&["ecs", "describe-clusters", "--clusters", &app]).unwrap();
    let active = clusters["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "ACTIVE")
        .count();
    assert_eq!(
        active, 0,
        "the cluster outlived its last service:\n{clusters:#}"
    );
}

#[test]
fn ten_services_deploy_through_throttling_without_duplicates() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("throttled{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{app}:1");
    build_image(&image, dir.path());
    let stack = fleet(dir.path(), &app, &image, 10);

    let proxy = fault_proxy::start(
        &local_env("AWS_ENDPOINT_URL"),
        Faults::Throttle { percent: 20 },
    );
    let (code, first, stderr) = xtask_with(
        &["deploy", "--stack", &stack, "--output", "json"],
        &[("AWS_ENDPOINT_URL", &proxy.url)],
    );
    assert_eq!(
        code, 0,
        "the deploy through 20% throttling failed:\n{first:#}\n{stderr}"
    );
    all_ok(&first);
    let (injected, forwarded) = (proxy.injected(), proxy.forwarded());
    assert!(
        injected * 100 >= (injected + forwarded) * 10,
        "the proxy throttled only {injected} of {} requests",
        injected + forwarded
    );
    drop(proxy);

    // No duplicates: ten services, one revision of each family.
    assert_eq!(services_of(&app), 10);
    for family in ["web", "api", "node-01", "node-08"] {
        assert_eq!(revisions(&format!("{app}-{family}")), 1, "{family}");
    }
    // A re-run, counted at the wire, changes nothing.
    let counting = fault_proxy::start(&local_env("AWS_ENDPOINT_URL"), Faults::None);
    let (code, second, stderr) = xtask_with(
        &["deploy", "--stack", &stack, "--output", "json"],
        &[("AWS_ENDPOINT_URL", &counting.url)],
    );
    assert_eq!(code, 0, "the re-run failed:\n{second:#}\n{stderr}");
    assert_eq!(counting.mutating(), Vec::<String>::new());
    assert_eq!(second["aws_calls"]["mutating"], 0);
    drop(counting);

    let (code, gone, stderr) = xtask(&["destroy", "--stack", &stack, "--yes", "--output", "json"]);
    assert_eq!(code, 0, "destroy failed:\n{gone:#}\n{stderr}");
}

#[test]
fn one_services_failure_leaves_the_others_steps_running_and_names_it() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("halffail{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{app}:1");
    build_image(&image, dir.path());
    let stack = fleet(dir.path(), &app, &image, 2);
    // The API's task definition asks for a value nobody gives: taskdef-register refuses it
    // (exit 2); web's steps go on.
    let broken = dir.path().join("api.json");
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let td = std::fs::read_to_string(examples.join("taskdef.json"))
        .unwrap()
        .replace("\"256\"", "\"${API_CPU}\"");
    std::fs::write(&broken, td).unwrap();
    let text = std::fs::read_to_string(&stack).unwrap().replace(
        &format!("task_definition = {{ family = \"{app}-api\" }}"),
        &format!(
            "task_definition = {{ family = \"{app}-api\", file = \"{}\" }}",
            broken.display()
        ),
    );
    std::fs::write(&stack, text).unwrap();

    let (code, summary, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 2, "{summary:#}\n{stderr}");
    let services = summary["services"].as_array().unwrap();
    assert_eq!(services[0]["name"], "web");
    assert_eq!(services[0]["exit_code"], 0, "{summary:#}");
    assert_eq!(services[1]["name"], "api");
    assert_eq!(services[1]["exit_code"], 2, "{summary:#}");
    assert!(
        stderr.contains("xtask deploy: failed: api: taskdef-register (exit 2)"),
        "{stderr}"
    );
    assert_eq!(services_of(&app), 1, "web's service was not deployed");
    let (code, gone, stderr) = xtask(&["destroy", "--stack", &stack, "--yes", "--output", "json"]);
    assert_eq!(code, 0, "destroy failed:\n{gone:#}\n{stderr}");
}
