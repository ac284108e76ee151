//! The whole chain through a fault-injecting proxy in front of the emulator, as a network
//! breaks it in production (see `ecskit_testkit::fault_proxy`):
//! - every distinct request first fails with a 503;
//! - 30% of the mutating requests are applied and their answer replaced by a 500.
//!
//! Each run must succeed; a re-run afterwards (straight to the emulator) makes zero mutating
//! calls, and there is one service, not two. Run it through `cargo xtask test` (the local
//! stack), like tests/deploy.rs.

mod support;

use ecskit_testkit::fault_proxy::{self, Faults};
use support::{aws, build_image, local_env, xtask, xtask_with};

fn chain_through(faults: Faults, name: &str) {
    let id = std::process::id();
    let app = format!("{name}-{id}");
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{app}:1");
    build_image(&image, dir.path());
    let stack = support::stack_file(dir.path(), &app, &image);

    let proxy = fault_proxy::start(&local_env("AWS_ENDPOINT_URL"), faults);
    let (code, first, stderr) = xtask_with(
        &["deploy", "--stack", &stack, "--output", "json"],
        &[("AWS_ENDPOINT_URL", &proxy.url)],
    );
    assert_eq!(
        code, 0,
        "the deploy through the fault proxy ({faults:?}) failed:\n{first:#}\n{stderr}"
    );
    assert!(
        proxy.injected() > 0,
        "the proxy injected no fault ({} forwarded)",
        proxy.forwarded()
    );
    for step in first["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "ok", "{step:#}");
    }
    drop(proxy);

    // A re-run changes nothing: the faults left nothing half-done.
    let (code, second, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 0, "the re-run failed:\n{second:#}\n{stderr}");
    assert_eq!(
        second["aws_calls"]["mutating"], 0,
        "the re-run after {faults:?} made mutating calls:\n{second:#}"
    );
    let services = aws(&["ecs", "list-services", "--cluster", &app]).unwrap();
    assert_eq!(
        services["serviceArns"].as_array().map(Vec::len),
        Some(1),
        "{services:#}"
    );

    let (code, gone, stderr) = xtask(&["destroy", "--stack", &stack, "--yes", "--output", "json"]);
    assert_eq!(code, 0, "destroy failed:\n{gone:#}\n{stderr}");
}

/// The tests of this file share the emulator: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn every_first_attempt_fails_with_503_and_the_chain_still_deploys() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    chain_through(Faults::FirstAttemptUnavailable, "faults503");
}

#[test]
fn lost_answers_of_mutating_calls_converge_without_duplicates() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    chain_through(Faults::LostAnswers { percent: 30 }, "faultslost");
}
