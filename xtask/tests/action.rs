//! The GitHub Action's install logic (`.github/install.sh`, which `action.yml` runs), tested
//! against release files served from a local directory through a file:// URL: the archive for
//! this machine is unpacked after its checksum is checked, the binaries land on `$GITHUB_PATH`,
//! a second use is a no-op, and a wrong checksum fails clearly with nothing installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BINARIES: [&str; 8] = [
    "image-push",
    "role-create",
    "instance-profile",
    "capacity-create",
    "config-upload",
    "taskdef-register",
    "service-run",
    "task-run",
];

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join(".github/install.sh")
}

fn target() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => panic!("no release target for {other}"),
    };
    let os = match std::env::consts::OS {
        "linux" => "unknown-linux-musl",
        "macos" => "apple-darwin",
        other => panic!("no release target for {other}"),
    };
    format!("{arch}-{os}")
}

/// A release directory as cargo-dist lays it out: per binary, `BIN-TARGET.tar.xz` holding a
/// folder `BIN-TARGET/` with the binary, and its `.sha256`. `corrupt` names the binary whose
/// checksum file does not match.
fn release(dir: &Path, corrupt: Option<&str>) {
    for b in BINARIES {
        let name = format!("{b}-{}", target());
        let stage = dir.join("stage").join(&name);
        std::fs::create_dir_all(&stage).unwrap();
        std::fs::write(stage.join(b), format!("#!/bin/sh\necho {b} 0.0.0-test\n")).unwrap();
        let archive = dir.join(format!("{name}.tar.xz"));
        let ok = Command::new("tar")
            .arg("-cJf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.join("stage"))
            .arg(&name)
            .status()
            .unwrap();
        assert!(ok.success());
        let sum = Command::new("sha256sum").arg(&archive).output().unwrap();
        let mut line = String::from_utf8(sum.stdout).unwrap();
        if corrupt == Some(b) {
            line = format!("{}{}", "0".repeat(64), &line[64..]);
        }
        std::fs::write(dir.join(format!("{name}.tar.xz.sha256")), line).unwrap();
    }
}

fn install(release_dir: &Path, home: &Path, binaries: &str) -> Output {
    Command::new("bash")
        .arg(script())
        .env("ECSKIT_VERSION", "v0.0.0-test")
        .env(
            "ECSKIT_BASE_URL",
            format!("file://{}", release_dir.display()),
        )
        .env("ECSKIT_BINARIES", binaries)
        .env("ECSKIT_INSTALL_DIR", home.join("tools"))
        .env("GITHUB_PATH", home.join("github_path"))
        .env("GITHUB_OUTPUT", home.join("github_output"))
        .env_remove("RUNNER_TOOL_CACHE")
        .output()
        .unwrap()
}

#[test]
fn installs_the_checked_archive_onto_the_path_once() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = tmp.path().join("release");
    std::fs::create_dir_all(&rel).unwrap();
    release(&rel, None);

    let out = install(&rel, tmp.path(), "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tmp.path().join("tools/v0.0.0-test").join(target());
    for b in BINARIES {
        let ran = Command::new(dir.join(b)).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ran.stdout),
            format!("{b} 0.0.0-test\n")
        );
    }
    let path_lines = std::fs::read_to_string(tmp.path().join("github_path")).unwrap();
    assert_eq!(path_lines, format!("{}\n", dir.display()));
    let outputs = std::fs::read_to_string(tmp.path().join("github_output")).unwrap();
    assert_eq!(outputs, format!("bin-dir={}\n", dir.display()));

    // A second use in the same job: nothing downloaded, PATH not repeated.
    std::fs::remove_dir_all(&rel).unwrap();
    let again = install(&rel, tmp.path(), "");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("is already installed"));
    let path_lines = std::fs::read_to_string(tmp.path().join("github_path")).unwrap();
    assert_eq!(path_lines.lines().count(), 1);
}

#[test]
fn a_subset_of_the_binaries_can_be_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    release(tmp.path(), None);
    let out = install(tmp.path(), tmp.path(), "role-create,service-run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tmp.path().join("tools/v0.0.0-test").join(target());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    assert_eq!(names, ["role-create", "service-run"]);
}

#[test]
fn a_wrong_checksum_fails_clearly_and_installs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    release(tmp.path(), Some("service-run"));
    let out = install(tmp.path(), tmp.path(), "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "checksum mismatch for service-run-{}.tar.xz: expected {}",
            target(),
            "0".repeat(64)
        )),
        "{err}"
    );
    assert!(err.contains("nothing was installed"), "{err}");
    assert!(!tmp.path().join("tools").exists());
    assert!(!tmp.path().join("github_path").exists());
}
