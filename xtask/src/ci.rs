//! `cargo xtask ci` and `cargo xtask test`: the checks CI runs, in the order that fails fastest.

use std::process::Command;
use std::time::Instant;

use crate::local::{self, State};
use crate::util::{self, Result};

mod lanes;

/// How many integration test binaries run at once, each against its own moto (see [`lanes`]);
/// `ECSKIT_CI_LANES` overrides it (1 is `cargo test`'s order, one binary at a time).
const LANES: usize = 2;

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(util::workspace_root());
    c
}

/// `cargo` with clippy as the compiler of the workspace's own crates, warnings denied. This is
/// what `cargo clippy` does (clippy-driver as RUSTC_WORKSPACE_WRAPPER, its arguments in
/// CLIPPY_ARGS), with `test --no-run` in place of `check`: one build lints every target and
/// makes the test binaries, where `cargo clippy` and then `cargo test` would compile every
/// dependency twice (the SDK crates are most of the time on 2 cores). Dependencies are built
/// as plain `cargo test` builds them, so a later `cargo test` recompiles only the workspace.
fn cargo_linting() -> Result<Command> {
    let mut c = cargo();
    let beside = std::path::Path::new(c.get_program()).with_file_name("clippy-driver");
    let driver = if beside.is_file() {
        beside
    } else {
        util::which("clippy-driver").ok_or("clippy is needed: rustup component add clippy")?
    };
    c.env("RUSTC_WORKSPACE_WRAPPER", driver).env(
        "CLIPPY_ARGS",
        "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
    );
    Ok(c)
}

/// fmt, then one build that lints (clippy, warnings denied) and makes every test binary, the
/// unit tests, the workflows and release plan, then the integration tests against the local
/// stack, which is started for the run and stopped at the end (even on failure) when this run
/// started it. What only downloads and installs (moto, the registry and dockerd, the workflow
/// linters, cargo-dist) runs in the background from the start, while the build keeps both cores
/// busy; its output is shown only if it fails.
pub fn ci() -> Result<()> {
    let start = Instant::now();
    let at = || {
        let t = start.elapsed().as_secs();
        format!("{}m{:02}s", t / 60, t % 60)
    };
    let stage = |name: &str| eprintln!("\n=== {name} (at {})", at());
    let stack_installed = std::thread::spawn(|| local::install(util::run_captured));
    let tools_installed = std::thread::spawn(|| -> Result<()> {
        tools_venv(util::run_captured)?;
        crate::release::install_dist(util::run_captured).map(drop)
    });
    let joined = |h: std::thread::JoinHandle<Result<()>>| {
        h.join()
            .unwrap_or_else(|_| Err("a background install panicked".into()))
    };

    stage("cargo fmt --check");
    util::run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    stage("build and clippy, warnings denied (every target, test binaries included)");
    // cargo's messages (json on stdout) name every test binary it built; the diagnostics are
    // rendered on stderr as usual.
    let built = util::stdout_of(cargo_linting()?.args([
        "test",
        "--workspace",
        "--lib",
        "--bins",
        "--tests",
        "--no-run",
        // every lint and error of the change in one run, not only the first crate's (for a
        // build, cargo test's no-fail-fast is keep-going)
        "--no-fail-fast",
        "--message-format=json-render-diagnostics",
    ]))?;
    let integration = lanes::integration_binaries(&built);
    if integration.is_empty() {
        return Err("cargo built no integration test binaries (its messages named none)".into());
    }
    stage("unit tests");
    util::run(cargo_linting()?.args(["test", "--workspace", "--lib", "--bins"]))?;
    joined(tools_installed)?;
    stage("workflows and action.yml: zizmor, schema");
    workflows()?;
    stage("release plan (cargo-dist, no build)");
    crate::release::run(crate::release::Action::Plan)?;
    joined(stack_installed)?;
    let lanes = std::env::var("ECSKIT_CI_LANES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(LANES);
    stage(&format!(
        "integration tests against the local stack: {} test binaries, {lanes} at a time, each lane with its own moto",
        integration.len()
    ));
    with_stack(|state| lanes::run(integration, state, lanes))?;
    eprintln!("\nci: all checks passed in {}", at());
    Ok(())
}

/// The GitHub workflows and the action: zizmor's security audit (a deploy workflow holds an AWS
/// role: unpinned actions, persisted credentials and broad permissions are failures, not
/// warnings) and a schema check against GitHub's own schemas, vendored in check-jsonschema.
fn workflows() -> Result<()> {
    let venv = tools_venv(util::run)?;
    let root = util::workspace_root();
    util::run(
        Command::new(venv.join("bin/zizmor"))
            .current_dir(&root)
            .args([
                "--offline",
                "--min-severity",
                "low",
                // release.yml is cargo-dist's generated file with our edits (docs/release.md).
                ".github/workflows/ci.yml",
                ".github/workflows/deploy.yml",
                ".github/workflows/release.yml",
                "action.yml",
            ]),
    )?;
    util::run(
        Command::new(venv.join("bin/check-jsonschema"))
            .current_dir(&root)
            .args(["--builtin-schema", "vendor.github-workflows"])
            .args([
                ".github/workflows/ci.yml",
                ".github/workflows/deploy.yml",
                ".github/workflows/release.yml",
            ]),
    )?;
    util::run(
        Command::new(venv.join("bin/check-jsonschema"))
            .current_dir(&root)
            .args(["--builtin-schema", "vendor.github-actions", "action.yml"]),
    )
}

/// zizmor and check-jsonschema in a venv the xtask owns, installed once from PyPI.
fn tools_venv(run: util::Run) -> Result<std::path::PathBuf> {
    const TOOLS: &[&str] = &["zizmor==1.32.0", "check-jsonschema==0.33.2"];
    let venv = util::cache_dir().join(format!("venv-ci-tools-{}", TOOLS.join("-")));
    let marker = venv.join(".ecskit-installed");
    if marker.exists() {
        return Ok(venv);
    }
    let python =
        util::which("python3").ok_or("python3 is needed for zizmor and check-jsonschema")?;
    run(Command::new(python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(TOOLS))?;
    std::fs::write(&marker, "").map_err(|e| e.to_string())?;
    Ok(venv)
}

/// All tests (unit and integration) against the local stack, with extra `cargo test` args.
pub fn test(args: &[String]) -> Result<()> {
    with_stack(|state| {
        util::run(with_env(
            cargo().args(["test", "--workspace"]).args(args),
            state,
        ))
    })
}

/// Runs `f` with the stack up; stops it afterwards only if this call started it.
fn with_stack(f: impl FnOnce(&State) -> Result<()>) -> Result<()> {
    let (state, started) = local::up()?;
    let result = f(&state);
    if started {
        local::down()?;
    }
    result
}

pub fn with_env<'a>(cmd: &'a mut Command, state: &State) -> &'a mut Command {
    for var in State::env_removed() {
        cmd.env_remove(var);
    }
    cmd.envs(state.env())
}
