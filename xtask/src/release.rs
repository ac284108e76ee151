//! `cargo xtask man` and `cargo xtask release plan|local`: what a release ships besides the
//! binaries, and the release plan checked without building.
//!
//! Releases are cargo-dist's (dist-workspace.toml; .github/workflows/release.yml on a version
//! tag): one binary, `ecskit` (bins/ecskit), with every step in it. The completions and man
//! pages come from the steps themselves (`ECSKIT_GENERATE_DOCS`, see `ecskit::cli`), so they
//! always match the flags; they go into every archive.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::chain::{self, Step};
use crate::util::{self, Result};

/// The cargo-dist version the release workflow pins (dist-workspace.toml's
/// `cargo-dist-version`); the plan check installs the same one.
const DIST_VERSION: &str = "0.30.3";

#[derive(clap::Subcommand)]
pub enum Action {
    /// Check the release plan (targets, archives, installers) without building: `dist plan`.
    Plan,
    /// Build this machine's own archives into target/distrib (a release build: minutes).
    Local,
}

/// The released package and its binary (bins/ecskit).
const PACKAGE: &str = "ecskit-cli";
const BINARY: &str = "ecskit";

/// Builds the multicall binary and writes every step's completions and man page into `out`
/// (completions/ and man/), as the release archives include them. `ecskit STEP` writes what the
/// step's own binary writes (bins/ecskit/tests/cli.rs checks it), and one binary links once
/// where eight would link eight times.
pub fn man(out: Option<PathBuf>) -> Result<()> {
    let out = out.unwrap_or_else(default_out);
    chain::build(&[], &[PACKAGE], false)?;
    let bin_dir = chain::target_dir().join("debug");
    generate(&bin_dir, &out)?;
    eprintln!("completions and man pages in {}", out.display());
    Ok(())
}

fn default_out() -> PathBuf {
    chain::target_dir().join("dist-extra")
}

/// Runs `ecskit STEP` of `bin_dir` for every step with `ECSKIT_GENERATE_DOCS=out`.
pub fn generate(bin_dir: &Path, out: &Path) -> Result<()> {
    for step in Step::ALL {
        util::run(
            Command::new(bin_dir.join(BINARY))
                .arg(step.binary())
                .env("ECSKIT_GENERATE_DOCS", out),
        )?;
    }
    Ok(())
}

pub fn run(action: Action) -> Result<()> {
    let dist = install_dist(util::run)?;
    match action {
        Action::Plan => {
            // The plan names every archive the include paths go into: they must exist.
            std::fs::create_dir_all(default_out().join("completions"))
                .and_then(|_| std::fs::create_dir_all(default_out().join("man")))
                .map_err(|e| e.to_string())?;
            util::run(
                Command::new(&dist)
                    .current_dir(util::workspace_root())
                    .args(["plan", "--output-format=human"]),
            )
        }
        Action::Local => {
            man(None)?;
            util::run(
                Command::new(&dist)
                    .current_dir(util::workspace_root())
                    .args(["build", "--artifacts=local"]),
            )?;
            report_archives()
        }
    }
}

/// The archives `dist build` wrote and their sizes (the figure docs/release.md reports).
fn report_archives() -> Result<()> {
    let dir = chain::target_dir().join("distrib");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.to_string_lossy().ends_with(".tar.xz") {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            eprintln!("{}: {:.1} MiB", path.display(), size as f64 / 1048576.0);
        }
    }
    Ok(())
}

/// `dist`, installed once with cargo into a directory the xtask owns (the cached tools of the
/// local stack) when it is not on PATH.
pub fn install_dist(run: util::Run) -> Result<PathBuf> {
    if let Some(p) = util::which("dist") {
        return Ok(p);
    }
    let root = util::cache_dir().join(format!("cargo-dist-{DIST_VERSION}"));
    let bin = root.join("bin/dist");
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!(
        "installing cargo-dist {DIST_VERSION} into {} (once)",
        root.display()
    );
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "install",
                "--locked",
                "--quiet",
                // An unoptimised build: `dist plan` runs in a moment either way, and the build
                // from a clean machine takes under 3 minutes on 2 cores instead of most of 10.
                "--debug",
                "cargo-dist",
                "--version",
                DIST_VERSION,
            ])
            .arg("--root")
            .arg(&root),
    )?;
    Ok(bin)
}
