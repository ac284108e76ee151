//! `cargo xtask ci` and `cargo xtask test`: the checks CI runs, in the order that fails fastest.

use std::process::Command;

use crate::local::{self, State};
use crate::util::{self, Result};

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(util::workspace_root());
    c
}

/// fmt, clippy, unit tests, then the integration tests against the local stack, which is
/// started for the run and stopped at the end (even on failure) when this run started it.
pub fn ci() -> Result<()> {
    step("cargo fmt --check")?;
    util::run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    step("workflows and action.yml: zizmor, schema")?;
    workflows()?;
    step("release plan (cargo-dist, no build)")?;
    crate::release::run(crate::release::Action::Plan)?;
    step("clippy, warnings denied")?;
    util::run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("unit tests")?;
    util::run(cargo().args(["test", "--workspace", "--lib", "--bins"]))?;
    step("integration tests against the local stack")?;
    // Build the test binaries before starting the stack: the build is the slow part.
    util::run(cargo().args(["test", "--workspace", "--test", "*", "--no-run"]))?;
    with_stack(|state| {
        util::run(with_env(
            cargo().args(["test", "--workspace", "--test", "*"]),
            state,
        ))
    })?;
    eprintln!("\nci: all checks passed");
    Ok(())
}

/// The GitHub workflows and the action: zizmor's security audit (a deploy workflow holds an AWS
/// role: unpinned actions, persisted credentials and broad permissions are failures, not
/// warnings) and a schema check against GitHub's own schemas, vendored in check-jsonschema.
fn workflows() -> Result<()> {
    let venv = tools_venv()?;
    let root = util::workspace_root();
    util::run(
        Command::new(venv.join("bin/zizmor"))
            .current_dir(&root)
            .args([
                "--offline",
                "--min-severity",
                "low",
                // release.yml is cargo-dist's own (`dist generate`; `dist plan` fails when it
                // is out of date): what zizmor says of it is in docs/release.md.
                ".github/workflows/ci.yml",
                ".github/workflows/deploy.yml",
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
fn tools_venv() -> Result<std::path::PathBuf> {
    const TOOLS: &[&str] = &["zizmor==1.32.0", "check-jsonschema==0.33.2"];
    let venv = util::cache_dir().join(format!("venv-ci-tools-{}", TOOLS.join("-")));
    let marker = venv.join(".ecskit-installed");
    if marker.exists() {
        return Ok(venv);
    }
    let python =
        util::which("python3").ok_or("python3 is needed for zizmor and check-jsonschema")?;
    util::run(
        Command::new(python)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    util::run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(TOOLS),
    )?;
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

fn step(name: &str) -> Result<()> {
    eprintln!("\n=== {name}");
    Ok(())
}
