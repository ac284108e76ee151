//! The GitHub Action's install logic (`.github/install.sh`, which `action.yml` runs), tested
//! against release files served from a local directory through a file:// URL: the archive for
//! this machine is unpacked after its checksum is checked, `ecskit` and a link per step land on
//! `$GITHUB_PATH`, a second use is a no-op, a wrong checksum fails clearly with nothing
//! installed, and a name that is not a step is refused before anything is downloaded.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ecskit_contract::Step;

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

/// A release directory as cargo-dist lays it out: `ecskit-cli-TARGET.tar.xz` holding a folder
/// `ecskit-cli-TARGET/` with the binary `ecskit` (here a script that says the name it was run
/// as, as the multicall binary dispatches on it), and its `.sha256`, correct or not.
fn release(dir: &Path, corrupt: bool) {
    let name = format!("ecskit-cli-{}", target());
    let stage = dir.join("stage").join(&name);
    std::fs::create_dir_all(&stage).unwrap();
    let bin = stage.join("ecskit");
    std::fs::write(&bin, "#!/bin/sh\necho \"$(basename \"$0\") 0.0.0-test\"\n").unwrap();
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
    if corrupt {
        line = format!("{}{}", "0".repeat(64), &line[64..]);
    }
    std::fs::write(dir.join(format!("{name}.tar.xz.sha256")), line).unwrap();
}

/// The files of the install directory (links included), sorted.
fn installed(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
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
        .current_dir(home)
        .output()
        .unwrap()
}

#[test]
fn installs_the_checked_archive_and_a_link_per_step_onto_the_path_once() {
    let tmp = tempfile::tempdir().unwrap();
    let rel = tmp.path().join("release");
    std::fs::create_dir_all(&rel).unwrap();
    release(&rel, false);

    let out = install(&rel, tmp.path(), "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tmp.path().join("tools/v0.0.0-test").join(target());
    // Every step of the contract, no more: the script's own list is the contract's.
    let mut want: Vec<String> = Step::ALL.iter().map(|s| s.binary().to_string()).collect();
    want.push("ecskit".into());
    want.sort();
    assert_eq!(installed(&dir), want);
    for step in Step::ALL {
        let link = dir.join(step.binary());
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("ecskit"));
        let ran = Command::new(&link).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ran.stdout),
            format!("{step} 0.0.0-test\n")
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
    assert_eq!(installed(&dir), want);
}

#[test]
fn a_subset_of_the_steps_can_be_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    release(tmp.path(), false);
    let out = install(tmp.path(), tmp.path(), "role-create,service-run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tmp.path().join("tools/v0.0.0-test").join(target());
    assert_eq!(installed(&dir), ["ecskit", "role-create", "service-run"]);
}

#[test]
fn a_name_that_is_not_a_step_is_refused_before_any_download() {
    let tmp = tempfile::tempdir().unwrap();
    // No release files at all: a download would fail with exit 1. `*` is not a file pattern
    // either (the script runs here, beside a file named after a step).
    std::fs::write(tmp.path().join("task-run"), "").unwrap();
    for names in [
        "role-create ../../evil",
        "ecskit",
        "role-create,task_run",
        "*",
    ] {
        let out = install(tmp.path(), tmp.path(), names);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{names}: {err}");
        assert!(
            err.contains("is not a step: one of image-push, role-create"),
            "{err}"
        );
        assert!(err.contains("nothing was installed"), "{err}");
        assert!(!tmp.path().join("tools").exists());
        assert!(!tmp.path().join("github_path").exists());
    }
}

#[test]
fn a_wrong_checksum_fails_clearly_and_installs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    release(tmp.path(), true);
    let out = install(tmp.path(), tmp.path(), "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "checksum mismatch for ecskit-cli-{}.tar.xz: expected {}",
            target(),
            "0".repeat(64)
        )),
        "{err}"
    );
    assert!(err.contains("nothing was installed"), "{err}");
    assert!(!tmp.path().join("tools").exists());
    assert!(!tmp.path().join("github_path").exists());
}
