//! The demo's second half: the deployed task definition run for real on the local Docker
//! Engine (`task-run --local`), with the emulator's IAM enforcement on, so the container's
//! own lines show the seeds' whole story: the task role's credentials from the endpoint, its
//! config files read from its prefix, and refusals everywhere else.
//!
//! The image holds a real program (`examples/demo-app`, built in this workspace), copied with
//! the shared libraries `ldd` names into a from-scratch image: nothing comes from the internet.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::local::{self, State};
use crate::util::{self, HttpTarget, Result};

use super::docker;

/// The package of the demo's program.
pub const APP_PACKAGE: &str = "ecskit-demo-app";
/// A pause image built here (the default one would be pulled from registry.k8s.io).
pub const PAUSE_IMAGE: &str = "ecskit-demo/pause:local";
/// The IAM user the local run's own calls are signed as while enforcement is on.
const ADMIN_USER: &str = "ecskit-demo-admin";

/// Builds `image` from scratch holding the demo program at `/app` (with the libraries it links
/// and the CA bundle, for real AWS) and `version` at `/etc/app/version`.
pub fn build_app_image(state: &State, image: &str, version: &str) -> Result<()> {
    let binary = crate::chain::target_dir().join("debug").join(APP_PACKAGE);
    let dir = tempfile_dir("ecskit-demo-image")?;
    let root = dir.join("rootfs");
    let copy = |from: &Path, to_rel: &Path| -> Result<()> {
        let to = root.join(to_rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::copy(from, &to)
            .map(|_| ())
            .map_err(|e| format!("copying {} into the image: {e}", from.display()))
    };
    copy(&binary, Path::new("app"))?;
    for lib in linked_libraries(&binary)? {
        copy(&lib, lib.strip_prefix("/").unwrap_or(&lib))?;
    }
    let ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if ca.exists() {
        copy(ca, Path::new("etc/ssl/certs/ca-certificates.crt"))?;
    }
    std::fs::create_dir_all(root.join("etc/app")).map_err(|e| e.to_string())?;
    std::fs::write(root.join("etc/app/version"), version).map_err(|e| e.to_string())?;
    import(
        state,
        &dir,
        &root,
        image,
        &["CMD [\"/app\"]", "EXPOSE 8080"],
    )
}

/// The pause image: the host's static busybox, sleeping.
pub fn build_pause_image(state: &State) -> Result<()> {
    if super::image_exists(state, PAUSE_IMAGE) {
        return Ok(());
    }
    let dir = tempfile_dir("ecskit-demo-pause")?;
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).map_err(|e| e.to_string())?;
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).map_err(|e| {
        format!("/bin/busybox (busybox-static; `cargo xtask local up` installs it): {e}")
    })?;
    import(
        state,
        &dir,
        &root,
        PAUSE_IMAGE,
        &["CMD [\"/bin/busybox\", \"sleep\", \"2147483647\"]"],
    )
}

/// A private directory for an image's files (a random name, 0700: no other user can plant
/// files in it first); [`import`] removes it.
pub(crate) fn tempfile_dir(prefix: &str) -> Result<PathBuf> {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir()
        .map(|d| d.keep())
        .map_err(|e| format!("a private temporary directory: {e}"))
}

/// Tars `root` and imports it as `image` with these Dockerfile `changes`; removes `dir`.
pub(crate) fn import(
    state: &State,
    dir: &Path,
    root: &Path,
    image: &str,
    changes: &[&str],
) -> Result<()> {
    let tarball = dir.join("rootfs.tar");
    let result = util::run(
        Command::new("tar")
            .args([
                "--sort=name",
                "--mtime=@0",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "-cf",
            ])
            .arg(&tarball)
            .arg("-C")
            .arg(root)
            .arg("."),
    )
    .and_then(|()| {
        let mut cmd = docker(state);
        cmd.arg("import");
        for c in changes {
            cmd.args(["--change", c]);
        }
        util::run(cmd.arg(&tarball).arg(image))
    });
    let _ = std::fs::remove_dir_all(dir);
    result
}

/// The shared libraries (and the loader) `ldd` says the binary needs.
fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let text = util::output(Command::new("ldd").arg(binary))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// The aws CLI of the stack's venv, at the emulator.
fn aws(state: &State) -> Command {
    let mut c = Command::new(local::moto_venv().join("bin/aws"));
    c.args(["--endpoint-url", &state.moto_url(), "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", local::REGION);
    c
}

/// An IAM user that may do anything, with a fresh access key: the local run's own calls
/// (reading the task definition, assuming the roles) are signed as it once enforcement is on.
/// Returns the key and the user's ARN.
fn admin_keys(state: &State) -> Result<(String, String, String)> {
    let _ = aws(state)
        .args(["iam", "create-user", "--user-name", ADMIN_USER])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let user: serde_json::Value = serde_json::from_str(&util::output(aws(state).args([
        "iam",
        "get-user",
        "--user-name",
        ADMIN_USER,
    ]))?)
    .map_err(|e| e.to_string())?;
    let arn = user["User"]["Arn"].as_str().unwrap_or_default().to_string();
    util::run(aws(state).args([
        "iam",
        "put-user-policy",
        "--user-name",
        ADMIN_USER,
        "--policy-name",
        "everything",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ]))?;
    let listed: serde_json::Value = serde_json::from_str(&util::output(aws(state).args([
        "iam",
        "list-access-keys",
        "--user-name",
        ADMIN_USER,
    ]))?)
    .map_err(|e| e.to_string())?;
    for k in listed["AccessKeyMetadata"].as_array().into_iter().flatten() {
        if let Some(id) = k["AccessKeyId"].as_str() {
            util::run(aws(state).args([
                "iam",
                "delete-access-key",
                "--user-name",
                ADMIN_USER,
                "--access-key-id",
                id,
            ]))?;
        }
    }
    let key: serde_json::Value = serde_json::from_str(&util::output(aws(state).args([
        "iam",
        "create-access-key",
        "--user-name",
        ADMIN_USER,
    ]))?)
    .map_err(|e| e.to_string())?;
    let id = key["AccessKey"]["AccessKeyId"].as_str().unwrap_or_default();
    let secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .unwrap_or_default();
    Ok((id.to_string(), secret.to_string(), arn))
}

/// A copy of the task role's S3 policy on a role that trusts `principal`. The deployed task role
/// trusts ecs-tasks.amazonaws.com, and the emulator's IAM enforcement cannot evaluate a Service
/// principal (moto 5.2.5 fails in access_control._check_principal): the local run assumes this
/// role instead, as a developer assumes a role whose trust policy names them. Returns its ARN.
fn local_task_role(state: &State, task_role: &str, principal: &str) -> Result<String> {
    let name = format!("{task_role}-local");
    let policy: serde_json::Value = serde_json::from_str(&util::output(aws(state).args([
        "iam",
        "get-role-policy",
        "--role-name",
        task_role,
        "--policy-name",
        "ecskit-s3",
    ]))?)
    .map_err(|e| e.to_string())?;
    let document = match &policy["PolicyDocument"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]});
    for args in [
        vec![
            "iam",
            "delete-role-policy",
            "--role-name",
            &name,
            "--policy-name",
            "ecskit-s3",
        ],
        vec!["iam", "delete-role", "--role-name", &name],
    ] {
        let _ = aws(state)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let created: serde_json::Value = serde_json::from_str(&util::output(aws(state).args([
        "iam",
        "create-role",
        "--role-name",
        &name,
        "--assume-role-policy-document",
        &trust.to_string(),
    ]))?)
    .map_err(|e| e.to_string())?;
    util::run(aws(state).args([
        "iam",
        "put-role-policy",
        "--role-name",
        &name,
        "--policy-name",
        "ecskit-s3",
        "--policy-document",
        &document,
    ]))?;
    Ok(created["Role"]["Arn"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Switches the emulator's IAM enforcement on (`true`) or off.
fn enforce(state: &State, on: bool) -> Result<()> {
    let target = HttpTarget::Tcp(format!("127.0.0.1:{}", state.moto_port));
    match util::http(
        &target,
        "POST",
        "/moto-api/reset-auth",
        "text/plain",
        if on { "0" } else { "inf" },
    ) {
        Some((200, _)) => Ok(()),
        other => Err(format!(
            "switching the emulator's IAM enforcement: {other:?}"
        )),
    }
}

/// Runs the task definition locally until the program serves (or a minute passes), passing the
/// container's lines through, then stops it with Ctrl-C as a user would. Returns the lines.
pub fn run_task(
    state: &State,
    bin: &Path,
    task_definition: &str,
    task_role: &str,
) -> Result<Vec<String>> {
    let (key, secret, admin) = admin_keys(state)?;
    let role = local_task_role(state, task_role, &admin)?;
    enforce(state, true)?;
    let result = (|| {
        let mut child = Command::new(bin.join("task-run"))
            .args(["--local", "--task-definition", task_definition])
            .args(["--task-role-arn", &role])
            .envs(state.env())
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("ECSKIT_LOCAL_PAUSE_IMAGE", PAUSE_IMAGE)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running task-run --local: {e}"))?;
        let pid = child.id();
        // The run is stopped after a minute whatever it printed.
        let watchdog = std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) && util::alive(pid) {
                std::thread::sleep(Duration::from_millis(200));
            }
            if util::alive(pid) {
                let _ = Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status();
            }
        });
        let mut lines = Vec::new();
        if let Some(err) = child.stderr.take() {
            for line in std::io::BufReader::new(err).lines().map_while(|l| l.ok()) {
                eprintln!("[task-run --local] {line}");
                let serving = line.contains("[app] serving on port");
                lines.push(line);
                if serving {
                    let _ = Command::new("kill")
                        .args(["-INT", &pid.to_string()])
                        .status();
                }
            }
        }
        let _ = child.wait();
        let _ = watchdog.join();
        Ok(lines)
    })();
    enforce(state, false)?;
    result
}
