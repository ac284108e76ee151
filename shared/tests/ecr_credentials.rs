//! Where the caller's ECR credentials go, seen from the Docker Engine: `DOCKER_HOST` points at a
//! fake engine (`fake_engine`) that records the `X-Registry-Auth` of every request, and verify
//! (the `taskdef-register --verify` step) and the local run (`task-run --local`) run for
//! real against the local stack's emulator. Only ECR's own hosts and the registry the user named
//! (`ECSKIT_REGISTRY_ENDPOINT`) get credentials; lookalikes get none. The same engine answers the
//! registry failures verify must tell apart: no such image (exit 2) from an outage (exit 1).
//!
//! `DOCKER_HOST` is read from the environment by the engine layer, as in production, and the
//! workspace forbids the unsafe `set_var`: so each parent test starts the fake engine and runs
//! this test binary again (the `#[ignore]`d `child_*` functions) with `DOCKER_HOST` set, then
//! judges what the engine received and what the child reported.

mod fake_engine;

use std::process::Command;
use std::sync::{Arc, Mutex};

use fake_engine::{FakeEngine, engine_error, found};
use serde_json::{Value, json};

const REAL: &str = "123456789012.dkr.ecr.us-west-2.amazonaws.com";

/// Every host that looks like ECR's and is not: none may get credentials.
fn lookalikes() -> Vec<String> {
    vec![
        format!("{REAL}.example.net"),
        format!("{REAL}:443"),
        format!("{REAL}."),
        format!("evil.{REAL}"),
        format!("user@{REAL}"),
        "123456789012.dkr.ecr.us-west-2.evil.amazonaws.com".into(),
        "123456789012.DKR.ECR.US-WEST-2.AMAZONAWS.COM".into(),
        "123456789012.dkr.ecr..amazonaws.com".into(),
    ]
}

/// One child run at a time: they share the emulator.
static CHILDREN: Mutex<()> = Mutex::new(());

/// Runs the `child` test function of this binary with `DOCKER_HOST` at `engine` and `input`
/// (JSON) for it; returns the JSON lines it reported, one per scenario.
fn run_child(child: &str, engine: &FakeEngine, input: Value) -> Vec<Value> {
    let _turn = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            child,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DOCKER_HOST", &engine.host)
        .env("ECSKIT_TEST_CHILD_INPUT", input.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{child} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("CHILD-RESULT "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The child's input; a child run without its parent is a mistake, said at once.
fn child_input() -> Value {
    let input = std::env::var("ECSKIT_TEST_CHILD_INPUT").expect(
        "a child_* test is run by its parent test, which sets DOCKER_HOST to a fake engine",
    );
    serde_json::from_str(&input).unwrap()
}

fn report(outcome: Result<ecskit::Report, ecskit::Error>) {
    let line = match outcome {
        Ok(r) => json!({"exit": 0, "checks": r.get("checks")}),
        Err(e) => json!({"exit": e.exit_code(), "error": e.to_string()}),
    };
    // On a line of its own: libtest has printed "test NAME ... " without a line end.
    println!("\nCHILD-RESULT {line}");
}

// --- verify ----------------------------------------------------------------------------------

/// `taskdef-register --verify --dry-run` of one task definition per scenario: `{"scenarios":
/// [[IMAGE, ...], ...]}`.
#[tokio::test]
#[ignore = "run by its parent test with DOCKER_HOST at a fake engine"]
async fn child_taskdef_register_verify() {
    let input = child_input();
    let stack = ecskit_testkit::local_stack();
    let dir = tempfile::tempdir().unwrap();
    for (i, images) in input["scenarios"].as_array().unwrap().iter().enumerate() {
        let containers: Vec<Value> = images
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(n, image)| {
                json!({"name": format!("c{n}"), "image": image, "essential": n == 0, "memory": 128})
            })
            .collect();
        let doc =
            json!({"family": format!("ecr-credentials-{i}"), "containerDefinitions": containers});
        let file = dir.path().join(format!("taskdef-{i}.json"));
        std::fs::write(&file, doc.to_string()).unwrap();
        let args: ecskit::taskdef_register::Args = stack.parse(
            "taskdef-register",
            &["--file", file.to_str().unwrap(), "--verify"],
        );
        let ctx = stack.ctx(true).await;
        report(ecskit::step::run::<ecskit::taskdef_register::TaskdefRegister>(&ctx, &args).await);
    }
}

#[test]
fn verify_sends_ecr_credentials_to_ecr_hosts_only() {
    let registry = std::env::var("ECSKIT_REGISTRY_ENDPOINT").expect("the local stack's env");
    let engine = FakeEngine::start(Arc::new(|_: &str| found()));
    let real = format!("{REAL}/web:v1");
    let named = format!("{registry}/web:v1");
    let mut images = vec![json!(real), json!(named)];
    images.extend(lookalikes().iter().map(|h| json!(format!("{h}/web:v1"))));
    let results = run_child(
        "child_taskdef_register_verify",
        &engine,
        json!({"scenarios": [images]}),
    );
    assert_eq!(results[0]["exit"], 0, "{results:?}");
    let mut sent = engine.credentials_sent();
    sent.sort();
    assert_eq!(
        sent,
        [
            (
                format!("/distribution/{REAL}/web:v1/json"),
                REAL.to_string()
            ),
            (format!("/distribution/{named}/json"), registry.clone()),
        ],
        "credentials went only to ECR and the named registry; all requests: {:?}",
        engine.requests()
    );
    // The lookalikes were not even asked about, and the user is told why.
    for host in lookalikes() {
        assert!(
            !engine.requests().iter().any(|r| r.path.contains(&host)),
            "{host} reached the engine"
        );
    }
    let checks = results[0]["checks"].to_string();
    assert!(
        checks.contains(&format!(
            "{REAL}.example.net looks like ECR but is not one of ECR's hosts"
        )),
        "{checks}"
    );
}

/// Item 6: only "no such image" and a refusal are the image's fault (exit 2); an outage is the
/// registry's (exit 1), saying what happened, even beside an image that exists.
#[test]
fn verify_tells_a_missing_image_from_a_registry_outage() {
    let engine = FakeEngine::start(Arc::new(|reference: &str| {
        let repo = reference.rsplit('/').next().unwrap_or(reference);
        match repo.split(':').next().unwrap_or(repo) {
            "there" => found(),
            "missing" => engine_error(404, "manifest unknown: manifest unknown"),
            "gone" => engine_error(
                404,
                "errors:\nname unknown: repository name not known to registry\n",
            ),
            "private" => engine_error(401, "unauthorized: authentication required"),
            "dns" => engine_error(
                500,
                &format!(
                    "Get \"https://{REAL}/v2/\": dial tcp: lookup {REAL} on 10.0.0.2:53: no such host"
                ),
            ),
            "refused" => engine_error(
                500,
                &format!(
                    "Get \"https://{REAL}/v2/\": dial tcp 10.0.0.9:443: connect: connection refused"
                ),
            ),
            "slow" => engine_error(
                500,
                &format!(
                    "Get \"https://{REAL}/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)"
                ),
            ),
            "broken" => engine_error(
                500,
                "received unexpected HTTP status: 503 Service Unavailable",
            ),
            "busy" => engine_error(500, "toomanyrequests: Rate exceeded"),
            other => panic!("no scenario for {other}"),
        }
    }));
    let image = |repo: &str| json!(format!("{REAL}/{repo}:v1"));
    let outages = ["dns", "refused", "slow", "broken", "busy"];
    // The bad images beside an outage: still exit 2, the unchecked image's line a warning.
    let mut scenarios = vec![json!([
        image("missing"),
        image("gone"),
        image("private"),
        image("dns")
    ])];
    scenarios.extend(outages.iter().map(|o| json!([image("there"), image(o)])));
    let results = run_child(
        "child_taskdef_register_verify",
        &engine,
        json!({"scenarios": scenarios}),
    );
    assert_eq!(results.len(), 1 + outages.len(), "{results:?}");

    let bad = &results[0];
    assert_eq!(bad["exit"], 2, "{bad}");
    let text = bad["error"].as_str().unwrap();
    for expected in [
        format!(
            "verify: image {REAL}/missing:v1: does not exist in the registry (no such tag or digest): manifest unknown"
        ),
        format!(
            "verify: image {REAL}/gone:v1: does not exist in the registry (no such tag or digest): errors: name unknown"
        ),
    ] {
        assert!(text.contains(&expected), "missing '{expected}' in:\n{text}");
    }
    assert!(!text.contains("dns:v1"), "{text}");
    // A refusal of the caller's credentials is not a failure: ECS pulls with the execution
    // role, which may read another account's repository that the caller may not.
    assert!(!text.contains("private:v1"), "{text}");

    for (outage, result) in outages.iter().zip(&results[1..]) {
        assert_eq!(result["exit"], 1, "{outage}: {result}");
        let text = result["error"].as_str().unwrap();
        assert!(
            text.contains(&format!("asking the registry about {REAL}/{outage}:v1")),
            "{outage}: {text}"
        );
    }
    let said = |i: usize| results[i]["error"].as_str().unwrap().to_string();
    assert!(said(1).contains("no such host"), "{}", said(1));
    assert!(said(2).contains("connection refused"), "{}", said(2));
    assert!(said(3).contains("Client.Timeout exceeded"), "{}", said(3));
    assert!(said(4).contains("503 Service Unavailable"), "{}", said(4));
    assert!(said(5).contains("toomanyrequests"), "{}", said(5));
}

// --- the local run ----------------------------------------------------------------------------

/// `task-run --local` of a task definition with `{"images": [...]}`. The context has no
/// endpoint URL of its own (its clients still reach the emulator), so the run does not forward
/// the emulator into the task network, which the fake engine does not make.
#[tokio::test]
#[ignore = "run by its parent test with DOCKER_HOST at a fake engine"]
async fn child_local_run() {
    let input = child_input();
    let stack = ecskit_testkit::local_stack();
    let containers: Vec<aws_sdk_ecs::types::ContainerDefinition> = input["images"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(n, image)| {
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name(format!("c{n}"))
                .image(image.as_str().unwrap())
                .essential(n == 0)
                .memory(128)
                .build()
        })
        .collect();
    stack
        .ctx(false)
        .await
        .ecs()
        .register_task_definition()
        .family("ecr-credentials-local")
        .set_container_definitions(Some(containers))
        .send()
        .await
        .unwrap();
    let sdk = ecskit::aws::sdk_config(&stack.aws_args()).await;
    let ctx = ecskit::aws::Ctx::from_sdk_config(sdk, None, false);
    let args: ecskit::task_run::Args = stack.parse(
        "task-run",
        &["--local", "--task-definition", "ecr-credentials-local"],
    );
    let deps = ecskit::task_run::deps_for(ctx, &args);
    report(ecskit::task_run::run_with(&deps, &args).await);
}

#[test]
fn the_local_run_pulls_with_ecr_credentials_from_ecr_hosts_only() {
    let engine = FakeEngine::start(Arc::new(|_: &str| found()));
    let mut images = vec![json!(format!("{REAL}/web:v1"))];
    images.extend(lookalikes().iter().map(|h| json!(format!("{h}/web:v1"))));
    let results = run_child("child_local_run", &engine, json!({"images": images}));
    // The fake engine makes no containers: the run ends after its pulls, as an engine failure.
    assert_eq!(results[0]["exit"], 1, "{results:?}");
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .contains("the fake engine creates no containers"),
        "{results:?}"
    );
    let pulls: Vec<_> = engine
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/images/create"))
        .collect();
    let pulled = |host: &str| {
        pulls
            .iter()
            .find(|r| r.path.contains(&format!("fromImage={host}/web")))
            .unwrap_or_else(|| panic!("{host}/web was not pulled: {pulls:?}"))
    };
    assert_eq!(pulled(REAL).credentials_for().as_deref(), Some(REAL));
    for host in lookalikes() {
        assert_eq!(
            pulled(&host).credentials_for(),
            None,
            "ECR credentials went to {host}"
        );
    }
    assert_eq!(
        engine.credentials_sent().len(),
        1,
        "one pull with credentials: {:?}",
        engine.credentials_sent()
    );
}
