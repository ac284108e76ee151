//! The release workflow's edits: `.github/workflows/release.yml` is cargo-dist's generated file
//! with edits that zizmor asks for and dist has no option for (dist-workspace.toml says
//! `allow-dirty = ["ci"]`, so dist no longer checks the file). A `dist generate` would undo them
//! silently: this test fails then, naming the edit to make again. CI also runs zizmor on it.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn workflow() -> String {
    std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines of each job (`jobs:` children, by indentation), by job name.
fn jobs(text: &str) -> Vec<(String, Vec<String>)> {
    let mut jobs: Vec<(String, Vec<String>)> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if indent(line) == 0 && !line.trim().is_empty() && !line.starts_with('#') {
            inside = line.trim_end() == "jobs:";
            continue;
        }
        if !inside || line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if indent(line) == 2 {
            jobs.push((line.trim().trim_end_matches(':').to_string(), Vec::new()));
        } else if let Some((_, lines)) = jobs.last_mut() {
            lines.push(line.to_string());
        }
    }
    jobs
}

/// Every `run:` script of the file: the inline value, or the block under it.
fn run_scripts(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut scripts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let key = line.trim_start().trim_start_matches("- ");
        let Some(value) = key.strip_prefix("run:") else {
            continue;
        };
        let own = indent(line) + (line.trim_start().len() - key.len());
        let mut script = value.to_string();
        for next in &lines[i + 1..] {
            if !next.trim().is_empty() && indent(next) <= own {
                break;
            }
            script.push('\n');
            script.push_str(next);
        }
        scripts.push(script);
    }
    scripts
}

#[test]
fn no_script_expands_an_expression() {
    let text = workflow();
    let scripts = run_scripts(&text);
    assert!(
        scripts.len() >= 10,
        "the run: scripts were not found: {scripts:?}"
    );
    for s in scripts {
        assert!(
            !s.contains("${{"),
            "release.yml: an expression is expanded into a run: script (pass it through env:):\n{s}"
        );
    }
    // The matrix's install commands are written out and pinned, not run from the matrix.
    for matrix_code in [
        "matrix.install_dist",
        "matrix.install_cargo_auditable",
        "matrix.packages_install",
    ] {
        assert!(
            !text.contains(matrix_code),
            "release.yml runs {matrix_code}"
        );
    }
    assert!(
        !text.contains("/releases/latest/"),
        "release.yml installs a tool from 'latest'"
    );
}

#[test]
fn permissions_are_per_job_and_only_host_writes_contents() {
    let text = workflow();
    assert!(
        text.lines().any(|l| l == "permissions: {}"),
        "release.yml: the workflow level must grant nothing (permissions: {{}})"
    );
    let jobs = jobs(&text);
    let names: Vec<&str> = jobs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "plan",
            "build-local-artifacts",
            "build-global-artifacts",
            "host",
            "announce"
        ]
    );
    for (name, lines) in &jobs {
        let at = lines
            .iter()
            .position(|l| indent(l) == 4 && l.trim() == "permissions:")
            .unwrap_or_else(|| panic!("job {name} says no permissions"));
        let granted: Vec<String> = lines[at + 1..]
            .iter()
            .take_while(|l| indent(l) > 4)
            .map(|l| l.split(" #").next().unwrap().trim().replace('"', ""))
            .collect();
        let want: &[&str] = match name.as_str() {
            "host" => &["contents: write"],
            "build-local-artifacts" => {
                &["attestations: write", "contents: read", "id-token: write"]
            }
            _ => &["contents: read"],
        };
        assert_eq!(granted, want, "job {name}'s permissions");
    }
}

#[test]
fn no_container_and_every_action_pinned_and_the_archives_attested() {
    let text = workflow();
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("container:")),
        "release.yml: a container image from the matrix is unpinned"
    );
    for line in text.lines().filter(|l| l.contains("uses:")) {
        let reference = line.split('@').nth(1).unwrap_or("").trim();
        assert!(
            reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit()),
            "not pinned to a commit: {line}"
        );
    }
    assert!(
        text.contains("uses: actions/attest-build-provenance@"),
        "the archives are not attested"
    );
    assert!(
        text.contains("cargo-auditable-installer.sh"),
        "cargo auditable is not installed"
    );
    let config = std::fs::read_to_string(root().join("dist-workspace.toml")).unwrap();
    for line in [
        "github-attestations = true",
        "cargo-auditable = true",
        "allow-dirty = [\"ci\"]",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "dist-workspace.toml lacks {line}"
        );
    }
}

/// dist-workspace.toml's `include` (the completions and man pages) must exist wherever dist
/// runs: written by `cargo xtask man` before the archive is built, made empty where dist only
/// plans or uploads. A `dist generate` drops these steps.
#[test]
fn every_dist_run_finds_the_included_folders() {
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("dist-workspace.toml")).unwrap())
            .unwrap();
    let include: Vec<&str> = config["dist"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().trim_end_matches('/'))
        .collect();
    let mkdir = format!("mkdir -p {}", include.join(" "));
    let mut runs_dist = Vec::new();
    for (name, lines) in jobs(&workflow()) {
        let Some(first) = lines.iter().position(|l| {
            let l = l.trim_start();
            ["dist build", "dist plan", "dist host"]
                .iter()
                .any(|c| l.starts_with(c))
        }) else {
            continue;
        };
        runs_dist.push(name.clone());
        let before = &lines[..first];
        let made = if name == "build-local-artifacts" {
            before.iter().any(|l| l.trim() == "run: cargo xtask man")
        } else {
            before.iter().any(|l| l.trim() == format!("run: {mkdir}"))
        };
        assert!(
            made,
            "job {name} runs dist before the included folders exist ({include:?})"
        );
    }
    assert_eq!(
        runs_dist,
        [
            "plan",
            "build-local-artifacts",
            "build-global-artifacts",
            "host"
        ]
    );
}

#[test]
fn the_installers_link_every_step_of_the_contract() {
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("dist-workspace.toml")).unwrap())
            .unwrap();
    let aliases: Vec<&str> = config["dist"]["bin-aliases"]["ecskit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let steps: Vec<&str> = ecskit_contract::Step::ALL
        .iter()
        .map(|s| s.binary())
        .collect();
    assert_eq!(aliases, steps, "dist-workspace.toml's bin-aliases");
}

/// One TLS and crypto stack (rustls 0.23 with aws-lc, hyper 1): the SDK crates' default
/// features would add their legacy client (hyper 0.14, rustls 0.21, ring) to every binary.
#[test]
fn the_build_has_one_tls_stack() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--workspace",
            "--target",
            "all",
            "-e",
            "normal,build,dev",
        ])
        .args(["--prefix", "none", "-f", "{p}"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(
        tree.lines().any(|l| l.starts_with("rustls v0.23")),
        "{tree}"
    );
    for second in [
        "ring ",
        "hyper v0.",
        "rustls v0.21",
        "rustls v0.20",
        "hyper-rustls v0.24",
        "openssl ",
        "native-tls ",
    ] {
        let found: Vec<&str> = tree.lines().filter(|l| l.starts_with(second)).collect();
        assert!(found.is_empty(), "a second TLS stack is built: {found:?}");
    }
}
