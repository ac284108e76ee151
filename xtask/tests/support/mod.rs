//! What the xtask tests share: the local stack's variables, the binaries cargo built beside
//! them, the aws CLI of the stack's venv (independent of the binaries under test), a
//! from-scratch image, and the xtask itself as a process.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

const BINARIES: [&str; 5] = [
    "image-push",
    "role-create",
    "config-upload",
    "taskdef-register",
    "service-run",
];

pub fn local_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run this test through `cargo xtask test -- -p xtask --test deploy`"
        )
    })
}

pub fn bin_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_xtask"))
        .parent()
        .unwrap()
        .to_path_buf();
    for b in BINARIES {
        assert!(
            dir.join(b).exists(),
            "{} is missing: cargo build -p {b}",
            dir.join(b).display()
        );
    }
    dir
}

pub fn aws_cli() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
    std::fs::read_dir(cache.join("ecskit"))
        .expect("the local stack's venv")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/aws"))
        .find(|p| p.exists())
        .expect("the aws CLI in the local stack's venv")
}

/// One aws CLI call against the emulator: Ok(json) or Err(stderr).
pub fn aws(args: &[&str]) -> Result<Value, String> {
    let out = Command::new(aws_cli())
        .args(["--endpoint-url", &local_env("AWS_ENDPOINT_URL")])
        .args(["--region", "us-west-2", "--output", "json"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A from-scratch image (nothing from the internet): a tarball imported into the engine.
pub fn build_image(tag: &str, dir: &std::path::Path) {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("version"), tag).unwrap();
    let tar = dir.join("rootfs.tar");
    let ok = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .unwrap();
    assert!(ok.success());
    let out = Command::new("docker")
        .env("DOCKER_HOST", local_env("DOCKER_HOST"))
        .arg("import")
        .arg(&tar)
        .arg(tag)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn xtask(args: &[&str]) -> (i32, Value, String) {
    xtask_with(args, &[])
}

/// [`xtask`] with more environment (`AWS_ENDPOINT_URL` of a proxy, say).
pub fn xtask_with(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let (code, stdout, stderr) = xtask_text(args, env);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("stdout is not the JSON summary ({e}):\n{stdout}\nstderr:\n{stderr}")
    });
    (code, json, stderr)
}

/// `cargo xtask ARGS` with the binaries built beside the tests: (exit code, stdout, stderr).
pub fn xtask_text(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("ECSKIT_BIN_DIR", bin_dir())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The summary's entry of a step (the first, with several services).
pub fn step<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {summary:#}"))
}

/// A stack file in `dir` for `app` (the example task definition and config files), deploying
/// the local image `image` to a Fargate service of the same name.
pub fn stack_file(dir: &std::path::Path, app: &str, image: &str) -> String {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let stack = dir.join("ecskit.toml");
    std::fs::write(
        &stack,
        format!(
            r#"[app]
name = "{app}"
region = "us-west-2"
[image]
source = "{image}"
repository = "{app}"
tags = ["1"]
[roles]
bucket = "{app}-config"
prefix = "{app}/config"
access = "read"
[config]
files = ["{config}"]
[task_definition]
file = "{taskdef}"
family = "{app}"
[service]
cluster = "{app}"
name = "{app}"
count = 1
launch_type = "FARGATE"
"#,
            config = examples.join("config").display(),
            taskdef = examples.join("taskdef.json").display(),
        ),
    )
    .unwrap();
    stack.display().to_string()
}
