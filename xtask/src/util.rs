//! Small helpers the tasks share: running commands, the workspace root, tiny HTTP checks.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub type Result<T> = std::result::Result<T, String>;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Runs a command in the foreground, inheriting stdio, and fails with its name on non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", show(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("could not run {}: {e}", show(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", show(cmd)))
    }
}

/// Runs a command with its stderr shown and its stdout returned (a tool's machine-readable
/// answer).
pub fn stdout_of(cmd: &mut Command) -> Result<String> {
    eprintln!("$ {}", show(cmd));
    let out = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run {}: {e}", show(cmd)))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("`{}` failed ({})", show(cmd), out.status))
    }
}

/// How a command is run: [`run`] in the foreground, or [`run_captured`] while something else
/// owns the terminal.
pub type Run = fn(&mut Command) -> Result<()>;

/// Runs a command with its output held back, for work done in the background (installs while
/// CI compiles): the output is shown only when it fails, as the end of the error.
pub fn run_captured(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {} (in the background)", show(cmd));
    let out = cmd
        .output()
        .map_err(|e| format!("could not run {}: {e}", show(cmd)))?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    Err(format!("`{}` failed ({}):\n{tail}", show(cmd), out.status))
}

/// Runs a command and returns its stdout; stderr is shown only when it fails.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| format!("could not run {}: {e}", show(cmd)))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A command line as the user reads it on stderr. A before task's `--env=K=V` value and
/// `--command=` words may hold secrets (a password, a URL with one): they are shown as `***`.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        s.push(' ');
        if let Some(kv) = a.strip_prefix("--env=") {
            let name = kv.split_once('=').map_or(kv, |(k, _)| k);
            s.push_str(&format!("--env={name}=***"));
        } else if a.starts_with("--command=") {
            s.push_str("--command=***");
        } else {
            s.push_str(&a);
        }
    }
    s
}

/// A `GET path` over TCP or a unix socket; returns the status code and body.
pub fn http_get(target: &HttpTarget, path: &str) -> Option<(u16, String)> {
    http(target, "GET", path, "", "")
}

pub fn http(
    target: &HttpTarget,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> Option<(u16, String)> {
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut response = Vec::new();
    match target {
        HttpTarget::Tcp(addr) => {
            let addr = addr.parse().ok()?;
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
            s.write_all(request.as_bytes()).ok()?;
            s.read_to_end(&mut response).ok()?;
        }
        HttpTarget::Unix(path) => {
            let mut s = std::os::unix::net::UnixStream::connect(path).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
            s.write_all(request.as_bytes()).ok()?;
            s.read_to_end(&mut response).ok()?;
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

pub enum HttpTarget {
    Tcp(String),
    Unix(PathBuf),
}

/// Polls `check` every 100 ms until it is true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// A free TCP port on 127.0.0.1 (bound and released: the caller starts its server on it).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Stops a process we started, by its pid: TERM, then KILL after `grace`.
pub fn stop_pid(pid: u32, grace: Duration) {
    if !alive(pid) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    if !wait_for(grace, || !alive(pid)) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        wait_for(Duration::from_secs(5), || !alive(pid));
    }
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Where the xtask keeps the tools it installs (moto's venv, zizmor, cargo-dist): the user's
/// cache, so clones and worktrees share them.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("ecskit")
}

#[cfg(test)]
mod show_tests {
    #[test]
    fn a_before_tasks_env_values_and_command_are_not_shown() {
        let mut cmd = std::process::Command::new("task-run");
        cmd.args([
            "--cluster",
            "app",
            "--command=[\"migrate\",\"postgres://u:pw@db\"]",
            "--env=DB_PASSWORD=hunter2",
        ]);
        let shown = super::show(&cmd);
        assert_eq!(
            shown,
            "task-run --cluster app --command=*** --env=DB_PASSWORD=***"
        );
    }
}
