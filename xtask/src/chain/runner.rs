//! Running the binaries as processes: one per step, each with its own call log, the steps of a
//! stage at the same time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::{Condvar, Mutex};

use crate::stack::Stacks;
use crate::util::{self, Result};

use super::Step;
use super::outputs::parse_env_lines;
use super::plan::Unit;
use ecskit_contract::env::VERIFY_SHARED;

/// AWS calls counted from a call log file (`Service.Operation` per line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Calls {
    pub total: usize,
    pub mutating: usize,
}

impl std::ops::Add for Calls {
    type Output = Calls;
    fn add(self, o: Calls) -> Calls {
        Calls {
            total: self.total + o.total,
            mutating: self.mutating + o.mutating,
        }
    }
}

/// The calls of a call-log file, counted by the contract's mutating-call rule.
pub fn count_calls(log: &str) -> Calls {
    let c = ecskit_contract::calls::count(log);
    Calls {
        total: c.total,
        mutating: c.mutating,
    }
}

/// What one step did.
#[derive(Clone, Debug, PartialEq)]
pub struct StepResult {
    pub step: Step,
    /// The process's exit code (1 when it could not start or was killed).
    pub code: u8,
    pub changed: Option<bool>,
    /// `ECSKIT_*` outputs without `ECSKIT_CHANGED`, in printed order.
    pub outputs: Vec<(String, String)>,
    pub calls: Calls,
    pub time: Duration,
    /// The last lines of stderr when the step failed.
    pub error: Option<String>,
}

impl StepResult {
    /// A step that failed before it could report anything: no outputs, no calls counted.
    fn failed(step: Step, code: u8, error: String, time: Duration) -> StepResult {
        StepResult {
            step,
            code,
            changed: None,
            outputs: Vec::new(),
            calls: Calls::default(),
            time,
            error: Some(error),
        }
    }
}

/// The stderr lines kept of a running step, for its failure's excerpt.
const KEPT_STDERR_LINES: usize = 60;

/// What the summary shows of a failed step's stderr: service-run's failure report from the last
/// stopped task on (its containers' exit codes and their last log lines, then the error), or
/// else the last 12 lines.
pub fn failure_excerpt(stderr: &[String]) -> &[String] {
    let report = stderr
        .iter()
        .rposition(|l| l.starts_with("task ") && l.contains(" stopped: "));
    match report {
        Some(i) => &stderr[i..],
        None => &stderr[stderr.len().saturating_sub(12)..],
    }
}

/// Where in the log directory the steps share verify's answers: what several services share
/// (roles, an image, a log group, the network) is checked once per deploy.
const VERIFY_DIR: &str = "verify";

/// Runs binaries of the chain as processes.
pub struct Runner {
    pub bin_dir: PathBuf,
    pub log_dir: PathBuf,
    pub region: String,
    pub dry_run: bool,
    /// Do not pass the steps' stderr through (the benchmark).
    pub quiet: bool,
    /// Pass --verify to taskdef-register and capacity-create, --verify=network to service-run.
    pub verify: bool,
    /// Added to every step's environment (the local stack's endpoints for the demo).
    pub base_env: Vec<(String, String)>,
    /// Removed from every step's environment (credentials that would mix into a local run).
    pub remove_env: Vec<String>,
}

impl Runner {
    /// Builds the binaries of `steps` (once) unless `ECSKIT_BIN_DIR` names prebuilt ones.
    pub fn new(steps: &[Step], region: &str, dry_run: bool) -> Result<Runner> {
        Runner::new_with(steps, &[], region, dry_run)
    }

    /// [`Runner::new`], building `extra` packages in the same `cargo build` (one feature
    /// resolution, so the SDK is built once).
    pub fn new_with(steps: &[Step], extra: &[&str], region: &str, dry_run: bool) -> Result<Runner> {
        let bin_dir = match std::env::var_os("ECSKIT_BIN_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                build(steps, extra, false)?;
                target_dir().join("debug")
            }
        };
        Runner::at(bin_dir, region, dry_run)
    }

    /// A runner of the binaries in `bin_dir` (built already).
    pub fn at(bin_dir: PathBuf, region: &str, dry_run: bool) -> Result<Runner> {
        // Private (random name, 0700); removed by the caller when the run is over.
        let log_dir = tempfile::Builder::new()
            .prefix("ecskit-deploy-")
            .tempdir()
            .map_err(|e| format!("a private temporary directory for the call logs: {e}"))?
            .keep();
        // verify's answers, shared by the steps of this run (private like the logs).
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(log_dir.join(VERIFY_DIR))
            .map_err(|e| format!("a private directory for verify's answers: {e}"))?;
        Ok(Runner {
            bin_dir,
            log_dir,
            region: region.to_string(),
            dry_run,
            quiet: false,
            verify: false,
            base_env: Vec::new(),
            remove_env: Vec::new(),
        })
    }

    /// Runs one step with `env` added to the inherited environment.
    pub fn run(&self, step: Step, args: &[String], env: &BTreeMap<String, String>) -> StepResult {
        let start = Instant::now();
        let log = self
            .log_dir
            .join(format!("{}-{}.calls", step.binary(), nanos()));
        let mut cmd = Command::new(self.bin_dir.join(step.binary()));
        for var in &self.remove_env {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .args(["--output", "env"])
            .envs(self.base_env.iter().map(|(k, v)| (k, v)))
            .envs(env)
            .env("AWS_REGION", &self.region)
            .env("ECSKIT_CALL_LOG", &log)
            .env(VERIFY_SHARED, self.log_dir.join(VERIFY_DIR))
            .env_remove("ECSKIT_OUTPUT")
            .env_remove("ECSKIT_DRY_RUN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.dry_run {
            cmd.arg("--dry-run");
        }
        if !self.quiet {
            eprintln!("[{}] $ {}", step.binary(), util::show(&cmd));
        }
        let failed =
            |code: u8, error: String| StepResult::failed(step, code, error, start.elapsed());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return failed(
                    1,
                    format!(
                        "could not run {}: {e}",
                        self.bin_dir.join(step.binary()).display()
                    ),
                );
            }
        };
        let stderr = child.stderr.take();
        let name = step.binary();
        let quiet = self.quiet;
        let tail = std::thread::spawn(move || {
            let mut tail: Vec<String> = Vec::new();
            if let Some(err) = stderr {
                for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                    if !quiet {
                        eprintln!("[{name}] {line}");
                    }
                    tail.push(line);
                    if tail.len() > KEPT_STDERR_LINES {
                        tail.remove(0);
                    }
                }
            }
            tail
        });
        let mut stdout = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        let status = child.wait();
        let tail = tail.join().unwrap_or_default();
        let calls = count_calls(&std::fs::read_to_string(&log).unwrap_or_default());
        let code = match status {
            Ok(s) => s.code().map(|c| c.clamp(0, 255) as u8).unwrap_or(1),
            Err(_) => 1,
        };
        if code != 0 {
            let mut r = failed(code, failure_excerpt(&tail).join("\n"));
            r.calls = calls;
            return r;
        }
        match parse_env_lines(&stdout) {
            Ok(pairs) => {
                let mut changed = None;
                let mut outputs = Vec::new();
                for (k, v) in pairs {
                    if k == "ECSKIT_CHANGED" {
                        changed = Some(v == "true");
                    } else {
                        outputs.push((k, v));
                    }
                }
                StepResult {
                    step,
                    code,
                    changed,
                    outputs,
                    calls,
                    time: start.elapsed(),
                    error: None,
                }
            }
            Err(e) => {
                let mut r = failed(1, format!("its --output env could not be read: {e}"));
                r.calls = calls;
                r
            }
        }
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::workspace_root().join("target"))
}

/// `cargo build [--release] -p image-push -p role-create ...`: one build for all the binaries
/// (and the `extra` packages).
pub fn build(steps: &[Step], extra: &[&str], release: bool) -> Result<()> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(util::workspace_root()).arg("build");
    if release {
        cmd.arg("--release");
    }
    if steps.is_empty() && extra.is_empty() {
        return Ok(());
    }
    for p in steps
        .iter()
        .map(|s| s.binary())
        .chain(extra.iter().copied())
    {
        cmd.args(["-p", p]);
    }
    util::run(&mut cmd)
}

/// A unit's environment when it starts, from the results so far.
pub type EnvFor<'a> = dyn Fn(usize, &[Option<StepResult>]) -> BTreeMap<String, String> + Sync + 'a;

/// Runs the units, at most `jobs` at a time, each as soon as the units it waits for have ended
/// well. A unit whose wait ended in a failure is not run (`None`), nor is anything that waits
/// for it; every other unit runs, so one service's failure leaves the others' steps going.
/// `env_for(unit, results so far)` gives a unit its environment when it starts.
pub fn run_units(
    runner: &Runner,
    units: &[Unit],
    jobs: usize,
    env_for: &EnvFor<'_>,
) -> Vec<Option<StepResult>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Waiting,
        Running,
        Done,
        NotRun,
    }
    struct Board {
        state: Vec<State>,
        results: Vec<Option<StepResult>>,
    }
    let board = Mutex::new(Board {
        state: vec![State::Waiting; units.len()],
        results: vec![None; units.len()],
    });
    let turn = Condvar::new();
    let failed = |b: &Board, u: usize| {
        b.state[u] == State::NotRun || b.results[u].as_ref().is_some_and(|r| r.code != 0)
    };
    let work = || {
        loop {
            let (u, env) = {
                let mut b = board.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    // What waits for a failure is not run (in order, so chains of waits follow).
                    for (u, unit) in units.iter().enumerate() {
                        if b.state[u] == State::Waiting && unit.after.iter().any(|a| failed(&b, *a))
                        {
                            b.state[u] = State::NotRun;
                        }
                    }
                    let ready = (0..units.len()).find(|&u| {
                        b.state[u] == State::Waiting
                            && units[u].after.iter().all(|a| b.state[*a] == State::Done)
                    });
                    if let Some(u) = ready {
                        b.state[u] = State::Running;
                        break (u, env_for(u, &b.results));
                    }
                    if !b.state.contains(&State::Waiting) {
                        return;
                    }
                    b = turn.wait(b).unwrap_or_else(|e| e.into_inner());
                }
            };
            let unit = &units[u];
            let mut args = unit.args.clone();
            // verify runs where the task definition is about to be registered: its roles,
            // image, secrets and log groups exist by then (the units it waited for made them).
            // service-run checks only the network it will use: the task definition was checked.
            if let Some(flag) = runner.verify.then(|| verify_flag(unit.step)).flatten() {
                args.push(flag.into());
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                runner.run(unit.step, &args, &env)
            }))
            .unwrap_or_else(|_| {
                StepResult::failed(
                    unit.step,
                    1,
                    "the thread running it panicked".into(),
                    Duration::ZERO,
                )
            });
            let mut b = board.lock().unwrap_or_else(|e| e.into_inner());
            b.results[u] = Some(result);
            b.state[u] = State::Done;
            turn.notify_all();
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, units.len().max(1)) {
            scope.spawn(work);
        }
    });
    board
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .results
}

/// Runs a deploy's units. `base[i]` is service i's environment before the run (the outputs of
/// its steps this run skips); each unit also gets the outputs of the units before it that
/// serve its (first) service, and nothing of another service's.
pub fn run_chain(
    runner: &Runner,
    stacks: &Stacks,
    units: &[Unit],
    base: &[BTreeMap<String, String>],
    jobs: usize,
) -> Vec<Option<StepResult>> {
    let env_for = |u: usize, results: &[Option<StepResult>]| {
        let service = units[u].services[0];
        let mut env = base.get(service).cloned().unwrap_or_default();
        for (unit, result) in units.iter().zip(results) {
            if let Some(r) = result.as_ref().filter(|r| r.code == 0)
                && unit.services.contains(&service)
            {
                env.extend(r.outputs.iter().cloned());
            }
        }
        // Without taskdef-register in this run and no output from an earlier one, service-run
        // takes the family's latest ACTIVE revision; an exported ECSKIT_TASK_DEFINITION_ARN
        // (the processes inherit it) wins over both.
        if std::env::var_os(ecskit_contract::outputs::env::TASK_DEFINITION_ARN).is_none() {
            env.entry(ecskit_contract::outputs::env::TASK_DEFINITION_ARN.into())
                .or_insert_with(|| stacks.services[service].family.clone());
        }
        env
    };
    run_units(runner, units, jobs, &env_for)
}

/// The exit code of a chain: that of the first failing step in chain order, else 0.
pub fn exit_code(results: &[Option<StepResult>]) -> u8 {
    results
        .iter()
        .flatten()
        .find(|r| r.code != 0)
        .map(|r| r.code)
        .unwrap_or(0)
}

/// The verify flag a step takes in the chain: taskdef-register checks what the task definition
/// names, service-run the network, capacity-create the instance profile and the AMI parameter
/// (`cargo xtask verify` passes the same).
pub fn verify_flag(step: Step) -> Option<&'static str> {
    match step {
        Step::TaskdefRegister | Step::CapacityCreate => Some("--verify"),
        Step::ServiceRun => Some("--verify=network"),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn result(step: Step, code: u8, changed: Option<bool>, ms: u64) -> StepResult {
        StepResult {
            step,
            code,
            changed,
            outputs: vec![(
                "ECSKIT_IMAGE_URI".into(),
                "127.0.0.1:5000/web@sha256:ab".into(),
            )],
            calls: Calls {
                total: 4,
                mutating: if changed == Some(true) { 2 } else { 0 },
            },
            time: Duration::from_millis(ms),
            error: (code != 0).then(|| "error: no such image web:1".to_string()),
        }
    }

    #[test]
    fn calls_are_counted_by_operation_verb() {
        let log = "IAM.GetRole\nIAM.CreateRole\nS3.HeadBucket\nS3.PutObject\nECS.DescribeServices\n\
                   ECR.BatchGetImage\nECR.BatchDeleteImage\nSTS.GetCallerIdentity\n\n";
        assert_eq!(
            count_calls(log),
            Calls {
                total: 8,
                mutating: 3
            }
        );
    }

    #[test]
    fn a_failed_deploys_report_with_its_log_lines_is_what_the_summary_shows() {
        let mut stderr: Vec<String> = (1..=30).map(|i| format!("waiting {i}")).collect();
        let report = [
            "task 0f3c9a1e stopped: Essential container in task exited",
            "  container app: exit code 1",
            "  last 2 log lines of app:",
            "    | starting snaplex jcc",
            "    | FATAL: cannot read s3://cfg/app/global.properties: AccessDenied",
            "error: deployment ecs-svc/1234 of service web failed and was rolled back",
            "  hint: the stopped tasks and events above say why",
        ];
        stderr.extend(report.iter().map(|l| l.to_string()));
        assert_eq!(failure_excerpt(&stderr), report);
        // Without a failure report: the last 12 lines.
        let plain: Vec<String> = (1..=20).map(|i| format!("line {i}")).collect();
        assert_eq!(failure_excerpt(&plain), &plain[8..]);
    }

    #[test]
    fn the_exit_code_is_the_first_failing_step_in_chain_order() {
        let rs = vec![
            Some(result(Step::ImagePush, 0, Some(true), 10)),
            None,
            Some(result(Step::RoleCreate, 2, None, 10)),
            Some(result(Step::ConfigUpload, 1, None, 10)),
        ];
        assert_eq!(exit_code(&rs), 2);
        assert_eq!(exit_code(&rs[..1]), 0);
    }
}
