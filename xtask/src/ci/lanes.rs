//! The integration tests in lanes: each lane runs one test binary at a time against its own
//! moto, and the lanes run side by side.
//!
//! `cargo test` runs test binaries one after another, and most of their time is moto's: one
//! Python process answering every call on one core while the other core idles. Two lanes, each
//! with its own emulator, keep both cores busy. The registry and the Docker engine are shared:
//! the tests already name their repositories, containers and networks uniquely, because the
//! tests inside one binary run at once too. A lane's moto is its own, so no test sees another
//! binary's resources (and the managed policies and settings `local up` gives moto are given
//! to each).
//!
//! Each binary's output is held until it ends and then printed whole, so that two binaries'
//! lines never interleave; the stage ends with every binary's time, slowest first.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::local::{self, State};
use crate::util::{self, Result};

/// One integration test binary, as cargo built it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestBinary {
    /// The test target's name (`service`, `deploy`, ...).
    pub name: String,
    pub package: String,
    /// The package's directory: cargo runs tests there, and so does a lane.
    pub dir: PathBuf,
    pub exe: PathBuf,
}

/// The integration test binaries among cargo's `--message-format=json` lines (the `test`
/// targets; unit tests of libraries and binaries are run by `cargo test --lib --bins`).
pub fn integration_binaries(json_lines: &str) -> Vec<TestBinary> {
    let mut found = Vec::new();
    for line in json_lines.lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let is_test = msg["reason"] == "compiler-artifact"
            && msg["profile"]["test"] == true
            && msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "test"));
        let (Some(name), Some(exe), Some(manifest)) = (
            s(&msg["target"], "name"),
            s(&msg, "executable"),
            s(&msg, "manifest_path"),
        ) else {
            continue;
        };
        if !is_test {
            continue;
        }
        let dir = Path::new(&manifest)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let package = s(&msg, "package_id")
            .and_then(|id| package_of(&id, &dir))
            .unwrap_or_default();
        found.push(TestBinary {
            name,
            package,
            dir,
            exe: PathBuf::from(exe),
        });
    }
    found
}

/// The package's name from cargo's package id: `path+file:///w/shared#ecskit@0.1.0`, or
/// `path+file:///w/bins/role-create#0.1.0` when the name is the directory's.
fn package_of(id: &str, dir: &Path) -> Option<String> {
    let (_, fragment) = id.rsplit_once('#')?;
    match fragment.split_once('@') {
        Some((name, _)) => Some(name.to_string()),
        None => Some(dir.file_name()?.to_string_lossy().into_owned()),
    }
}

/// The binaries that took longest in past runs go first, so that the lanes end together
/// rather than one lane starting the slowest binary last. Names are `package/test`.
const SLOWEST_FIRST: &[&str] = &[
    "task-run/local",
    "xtask/before",
    "xtask/many",
    "ecskit/config_upload",
    "xtask/faults",
    "ecskit/image",
    "ecskit/capacity_create",
    "ecskit/taskdef",
    "ecskit/verify",
    "ecskit/service",
    "ecskit/iam_role_create",
    "ecskit/service_day2",
    "image-push/cli",
    "ecskit/iam_instance_profile",
];

/// Binaries that start local tasks on the shared Docker engine: a local task's network takes
/// ECS's 169.254.170.0/24, so the engine runs one at a time (task-run refuses a second one).
/// No two of them run at once; the other lane takes other binaries meanwhile.
const ONE_LOCAL_TASK_AT_A_TIME: &[&str] = &["task-run/local", "ecskit-demo-app/local_run"];

fn runs_local_tasks(b: &TestBinary) -> bool {
    ONE_LOCAL_TASK_AT_A_TIME.contains(&format!("{}/{}", b.package, b.name).as_str())
}

/// The next binary a lane may take: the first in order, passing over one that runs local tasks
/// while another such binary runs. `None` when nothing may start now (or nothing is left).
fn next_allowed(queue: &mut VecDeque<TestBinary>, local_busy: bool) -> Option<TestBinary> {
    let at = queue
        .iter()
        .position(|b| !(local_busy && runs_local_tasks(b)))?;
    queue.remove(at)
}

/// `binaries` in the order the lanes take them.
pub fn ordered(mut binaries: Vec<TestBinary>) -> Vec<TestBinary> {
    let rank = |b: &TestBinary| {
        let name = format!("{}/{}", b.package, b.name);
        SLOWEST_FIRST
            .iter()
            .position(|s| *s == name)
            .unwrap_or(SLOWEST_FIRST.len())
    };
    binaries.sort_by_key(rank);
    binaries
}

/// How one binary ended.
struct Ended {
    label: String,
    took: Duration,
    ok: bool,
}

/// A moto of a lane's own, stopped (by its pid) when the lane is done.
struct OwnMoto {
    pid: u32,
    port: u16,
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        util::stop_pid(self.pid, Duration::from_secs(5));
    }
}

/// Runs every binary, `lanes` at a time, each lane against its own moto (the first lane
/// uses the stack's). Every binary runs even when another failed; the error names those that
/// failed.
pub fn run(binaries: Vec<TestBinary>, state: &State, lanes: usize) -> Result<()> {
    let lanes = lanes.clamp(1, binaries.len().max(1));
    let work_dir = tempfile::Builder::new()
        .prefix("ecskit-ci-lanes-")
        .tempdir()
        .map_err(|e| format!("a temporary directory for the lanes: {e}"))?;
    let mut motos = Vec::new();
    for lane in 1..lanes {
        let dir = work_dir.path().join(format!("lane{lane}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (pid, port) = local::start_moto(&local::moto_venv(), &dir)?;
        motos.push(OwnMoto { pid, port });
    }
    let ports: Vec<u16> = std::iter::once(state.moto_port)
        .chain(motos.iter().map(|m| m.port))
        .collect();
    let queue = Mutex::new(ordered(binaries).into_iter().collect::<VecDeque<_>>());
    // Whether a binary that runs local tasks is running, and the lanes waiting for that to end.
    let local_busy = Mutex::new(false);
    let local_done = std::sync::Condvar::new();
    let ended = Mutex::new(Vec::new());
    let print = Mutex::new(());
    std::thread::scope(|scope| {
        for (lane, port) in ports.iter().enumerate() {
            let (queue, ended, print) = (&queue, &ended, &print);
            let (local_busy, local_done) = (&local_busy, &local_done);
            let out_dir = work_dir.path().to_path_buf();
            scope.spawn(move || {
                loop {
                    // Lock order: local_busy, then the queue.
                    let mut busy = local_busy.lock().unwrap_or_else(|e| e.into_inner());
                    let bin = loop {
                        let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                        if q.is_empty() {
                            return;
                        }
                        if let Some(bin) = next_allowed(&mut q, *busy) {
                            break bin;
                        }
                        // Only local-task binaries are left and one runs: wait for it.
                        drop(q);
                        busy = local_done.wait(busy).unwrap_or_else(|e| e.into_inner());
                    };
                    let local = runs_local_tasks(&bin);
                    if local {
                        *busy = true;
                    }
                    drop(busy);
                    let result = run_one(&bin, state, *port, lane, &out_dir);
                    if local {
                        *local_busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
                        local_done.notify_all();
                    }
                    let _turn = print.lock().unwrap_or_else(|e| e.into_inner());
                    eprintln!(
                        "\n--- {} (lane {lane}): {} in {:.1}s",
                        result.0.label,
                        if result.0.ok { "ok" } else { "FAILED" },
                        result.0.took.as_secs_f64()
                    );
                    eprint!("{}", result.1);
                    ended
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(result.0);
                }
            });
        }
    });
    let mut ended = ended.into_inner().unwrap_or_else(|e| e.into_inner());
    ended.sort_by_key(|e| std::cmp::Reverse(e.took));
    eprintln!("\nintegration test binaries, slowest first:");
    for e in &ended {
        eprintln!(
            "  {:>7.1}s  {}{}",
            e.took.as_secs_f64(),
            e.label,
            if e.ok { "" } else { "  FAILED" }
        );
    }
    let failed: Vec<&str> = ended
        .iter()
        .filter(|e| !e.ok)
        .map(|e| e.label.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "integration tests failed in: {} (their output is above; run one alone with `cargo xtask test -p PACKAGE --test NAME`)",
            failed.join(", ")
        ))
    }
}

/// Runs one binary the way `cargo test` does (in its package's directory, with the variables
/// cargo sets), pointed at the lane's moto; its output (stdout and stderr) comes back whole.
fn run_one(
    bin: &TestBinary,
    state: &State,
    moto_port: u16,
    lane: usize,
    out_dir: &Path,
) -> (Ended, String) {
    let label = format!("{}/{}", bin.package, bin.name);
    let log = out_dir.join(format!("{}-{}.log", bin.package, bin.name));
    let start = Instant::now();
    let moto = format!("http://127.0.0.1:{moto_port}");
    let ok = (|| -> std::io::Result<bool> {
        let file = std::fs::File::create(&log)?;
        let mut cmd = Command::new(&bin.exe);
        crate::ci::with_env(&mut cmd, state);
        cmd.current_dir(&bin.dir)
            .env("AWS_ENDPOINT_URL", &moto)
            .env("ECSKIT_LOCAL_MOTO_URL", &moto)
            .env("ECSKIT_CI_LANE", lane.to_string())
            .env("CARGO_MANIFEST_DIR", &bin.dir)
            .env("CARGO_PKG_NAME", &bin.package)
            .env(
                "CARGO",
                std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        Ok(cmd.status()?.success())
    })();
    let took = start.elapsed();
    let mut output = std::fs::read_to_string(&log).unwrap_or_default();
    let ok = match ok {
        Ok(ok) => ok,
        Err(e) => {
            output.push_str(&format!("could not run {}: {e}\n", bin.exe.display()));
            false
        }
    };
    (Ended { label, took, ok }, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_binaries_are_the_test_targets_of_cargos_messages() {
        let lines = [
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/shared#ecskit@0.1.0","manifest_path":"/w/shared/Cargo.toml","target":{"kind":["test"],"name":"service"},"profile":{"test":true},"executable":"/w/target/debug/deps/service-1"}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/w/shared/Cargo.toml","target":{"kind":["lib"],"name":"ecskit"},"profile":{"test":true},"executable":"/w/target/debug/deps/ecskit-2"}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/w/bins/role-create/Cargo.toml","target":{"kind":["bin"],"name":"role-create"},"profile":{"test":false},"executable":"/w/target/debug/role-create"}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/w/shared/Cargo.toml","target":{"kind":["lib"],"name":"ecskit"},"profile":{"test":false},"executable":null}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/bins/task-run#0.1.0","manifest_path":"/w/bins/task-run/Cargo.toml","target":{"kind":["test"],"name":"local"},"profile":{"test":true},"executable":"/w/target/debug/deps/local-3"}"#,
            r#"{"reason":"build-finished","success":true}"#,
            "not json",
        ]
        .join("\n");
        let found = integration_binaries(&lines);
        assert_eq!(
            found,
            vec![
                TestBinary {
                    name: "service".into(),
                    package: "ecskit".into(),
                    dir: PathBuf::from("/w/shared"),
                    exe: PathBuf::from("/w/target/debug/deps/service-1"),
                },
                TestBinary {
                    name: "local".into(),
                    package: "task-run".into(),
                    dir: PathBuf::from("/w/bins/task-run"),
                    exe: PathBuf::from("/w/target/debug/deps/local-3"),
                }
            ]
        );
    }

    #[test]
    fn two_binaries_that_run_local_tasks_never_start_together() {
        let bin = |package: &str, name: &str| TestBinary {
            name: name.into(),
            package: package.into(),
            dir: PathBuf::new(),
            exe: PathBuf::new(),
        };
        let mut queue: VecDeque<TestBinary> = [
            bin("task-run", "local"),
            bin("ecskit-demo-app", "local_run"),
            bin("ecskit", "help"),
        ]
        .into();
        let first = next_allowed(&mut queue, false).unwrap();
        assert_eq!(first.name, "local");
        // While it runs, the other lane passes over the demo's local run.
        let second = next_allowed(&mut queue, true).unwrap();
        assert_eq!(second.name, "help");
        assert!(next_allowed(&mut queue, true).is_none(), "must wait");
        assert_eq!(next_allowed(&mut queue, false).unwrap().name, "local_run");
    }

    #[test]
    fn the_slowest_known_binaries_go_first() {
        let bin = |package: &str, name: &str| TestBinary {
            name: name.into(),
            package: package.into(),
            dir: PathBuf::new(),
            exe: PathBuf::new(),
        };
        let order = ordered(vec![
            bin("ecskit", "help"),
            bin("xtask", "deploy"),
            bin("ecskit", "image"),
            bin("ecskit", "iam_role_create"),
        ]);
        let names: Vec<&str> = order.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["image", "iam_role_create", "help", "deploy"]);
    }
}
