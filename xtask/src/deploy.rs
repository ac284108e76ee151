//! `cargo xtask deploy`: the whole chain from one stack file, the way a shell script would run it.
//!
//! The binaries are built once and run as processes, each with `--output env`. Their
//! `ECSKIT_*` lines are parsed and put into the environment of the steps that come after, which
//! is the same contract a user's `eval "$(image-push ... --output env)"` relies on. Steps that do
//! not depend on each other run at the same time (one thread each):
//!
//! ```text
//! stage 0: image-push | role-create | instance-profile | config-upload
//! stage 1: taskdef-register          (reads ECSKIT_IMAGE_URI, ECSKIT_TASK_ROLE_ARN, ...)
//! stage 2: service-run               (reads ECSKIT_TASK_DEFINITION_ARN)
//! ```
//!
//! Every process gets its own `ECSKIT_CALL_LOG` file, where the binaries append one
//! `Service.Operation` line per AWS call: that is how the summary (and the benchmark) counts the
//! calls, and the mutating ones, of processes it cannot look into.
//!
//! The mapping from stack file fields to each binary's flags is in one place, [`step_args`], so
//! that a renamed flag is a one-line change.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::stack::{self, Stack};
use crate::util::{self, Result};

/// One binary of the chain, in the order of the chain.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    ImagePush,
    RoleCreate,
    InstanceProfile,
    ConfigUpload,
    TaskdefRegister,
    ServiceRun,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::ImagePush,
        Step::RoleCreate,
        Step::InstanceProfile,
        Step::ConfigUpload,
        Step::TaskdefRegister,
        Step::ServiceRun,
    ];

    /// The binary's name, which is also the step's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Step::ImagePush => "image-push",
            Step::RoleCreate => "role-create",
            Step::InstanceProfile => "instance-profile",
            Step::ConfigUpload => "config-upload",
            Step::TaskdefRegister => "taskdef-register",
            Step::ServiceRun => "service-run",
        }
    }

    /// Steps of one stage run at the same time; a stage starts when the one before succeeded.
    pub fn stage(self) -> u8 {
        match self {
            Step::ImagePush | Step::RoleCreate | Step::InstanceProfile | Step::ConfigUpload => 0,
            Step::TaskdefRegister => 1,
            Step::ServiceRun => 2,
        }
    }

    /// The outputs the text summary shows (the JSON summary has them all).
    pub fn key_outputs(self) -> &'static [&'static str] {
        match self {
            Step::ImagePush => &["IMAGE_URI"],
            Step::RoleCreate => &["TASK_ROLE_ARN", "EXECUTION_ROLE_ARN"],
            Step::InstanceProfile => &["INSTANCE_PROFILE_ARN"],
            Step::ConfigUpload => &["CONFIG_URI"],
            Step::TaskdefRegister => &["TASK_DEFINITION_ARN"],
            Step::ServiceRun => &["SERVICE_ARN", "DEPLOYMENT_ID"],
        }
    }
}

/// Whether the step deploys or removes what it deployed (`--delete`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Deploy,
    Delete,
}

/// THE mapping from the stack file to each binary's flags, for deploying and for deleting.
///
/// Values that another step produces are not here: they travel as `ECSKIT_*` variables (the
/// image URI and role ARNs into taskdef-register, the task definition ARN into service-run).
/// `--output` and `--dry-run` are added by the runner.
pub fn step_args(step: Step, s: &Stack, mode: Mode) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    fn kv(a: &mut Vec<String>, flag: &str, value: &str) {
        a.push(flag.to_string());
        a.push(value.to_string());
    }
    match step {
        Step::ImagePush => {
            // image-push SOURCE --repository NAME [--tag T]... [--pull]; the registry endpoint
            // comes from ECSKIT_REGISTRY_ENDPOINT when the environment sets it (local stack).
            kv(&mut a, "--repository", &s.repository);
            match mode {
                Mode::Deploy => {
                    for t in &s.tags {
                        kv(&mut a, "--tag", t);
                    }
                    a.insert(0, s.image_source.clone());
                    if s.image_pull {
                        a.push("--pull".into());
                    }
                }
                // --force: the repository still holds the images this stack pushed.
                Mode::Delete => a.extend(["--delete".into(), "--force".into()]),
            }
        }
        Step::RoleCreate => {
            kv(&mut a, "--name", &s.app);
            kv(&mut a, "--bucket", &s.bucket);
            kv(&mut a, "--prefix", &s.prefix);
            kv(&mut a, "--access", &s.access);
            if let Some(n) = &s.task_role_name {
                kv(&mut a, "--task-role-name", n);
            }
            if let Some(n) = &s.execution_role_name {
                kv(&mut a, "--execution-role-name", n);
            }
            if mode == Mode::Delete {
                a.push("--delete".into());
            }
        }
        Step::InstanceProfile => {
            let p = s.instance_profile.clone().unwrap_or_default();
            if let Some(n) = &p.role_name {
                kv(&mut a, "--role-name", n);
            }
            if let Some(n) = &p.profile_name {
                kv(&mut a, "--profile-name", n);
            }
            match mode {
                Mode::Deploy => {
                    if p.s3_read {
                        kv(&mut a, "--s3-read", &format!("{}/{}", s.bucket, s.prefix));
                    }
                    if p.cloudwatch_logs {
                        a.push("--cloudwatch-logs".into());
                    }
                }
                Mode::Delete => a.push("--delete".into()),
            }
        }
        Step::ConfigUpload => {
            kv(&mut a, "--bucket", &s.bucket);
            kv(&mut a, "--prefix", &s.prefix);
            match mode {
                Mode::Deploy => {
                    if s.config_delete_stale {
                        a.push("--delete".into());
                    }
                    a.extend(s.config_files.iter().map(|p| p.display().to_string()));
                }
                // --delete-bucket removes the bucket (tagged managed-by=ecskit) and its objects.
                Mode::Delete => a.push("--delete-bucket".into()),
            }
        }
        Step::TaskdefRegister => match mode {
            // --image, --task-role-arn and --execution-role-arn read ECSKIT_IMAGE_URI,
            // ECSKIT_TASK_ROLE_ARN and ECSKIT_EXECUTION_ROLE_ARN from the environment.
            Mode::Deploy => {
                kv(&mut a, "--file", &s.taskdef_file.display().to_string());
                kv(&mut a, "--family", &s.family);
            }
            // Deregisters every revision of the family (no --keep).
            Mode::Delete => {
                kv(&mut a, "--family", &s.family);
                a.push("--delete".into());
            }
        },
        Step::ServiceRun => {
            // --task-definition reads ECSKIT_TASK_DEFINITION_ARN.
            kv(&mut a, "--cluster", &s.cluster);
            kv(&mut a, "--service", &s.service);
            match mode {
                Mode::Deploy => {
                    kv(&mut a, "--desired-count", &s.count.to_string());
                    kv(&mut a, "--launch-type", &s.launch_type);
                    for subnet in &s.network.subnets {
                        kv(&mut a, "--subnets", subnet);
                    }
                    for sg in &s.network.security_groups {
                        kv(&mut a, "--security-groups", sg);
                    }
                    // Passed both ways: service-run's default depends on whether it uses the
                    // default VPC, and the stack file's `false` must win over it.
                    if let Some(public) = s.network.assign_public_ip {
                        a.push(format!("--assign-public-ip={public}"));
                    }
                    if !s.wait {
                        a.push("--no-wait".into());
                    }
                    if let Some(t) = s.timeout {
                        kv(&mut a, "--timeout", &t.to_string());
                    }
                }
                Mode::Delete => a.extend(["--delete".into(), "--delete-cluster".into()]),
            }
        }
    }
    a
}

/// The steps a stack has, in chain order: instance-profile only when configured, config-upload
/// only when there are config files.
pub fn stack_steps(s: &Stack) -> Vec<Step> {
    Step::ALL
        .into_iter()
        .filter(|step| match step {
            Step::InstanceProfile => s.instance_profile.is_some(),
            Step::ConfigUpload => !s.config_files.is_empty(),
            _ => true,
        })
        .collect()
}

/// The steps to run: all of the stack's, or `--only` these, or `--from` this one on.
pub fn select(available: &[Step], only: &[Step], from: Option<Step>) -> Result<Vec<Step>> {
    for step in only.iter().chain(from.iter()) {
        if !available.contains(step) {
            return Err(format!(
                "{} is not part of this stack ({}): add its section to the stack file",
                step.name(),
                match step {
                    Step::InstanceProfile => "no [instance_profile]",
                    Step::ConfigUpload => "no [config] files",
                    _ => "not configured",
                }
            ));
        }
    }
    Ok(available
        .iter()
        .copied()
        .filter(|s| only.is_empty() || only.contains(s))
        .filter(|s| from.is_none_or(|f| *s >= f))
        .collect())
}

/// Groups steps into the stages that run one after another.
pub fn stages(steps: &[Step]) -> Vec<Vec<Step>> {
    let mut out: Vec<Vec<Step>> = Vec::new();
    for step in steps {
        match out.last_mut() {
            Some(stage) if stage[0].stage() == step.stage() => stage.push(*step),
            _ => out.push(vec![*step]),
        }
    }
    out
}

// --- parsing what the binaries print --------------------------------------------------------

/// Parses `--output env` lines into `(ECSKIT_NAME, value)` pairs with the contract's env codec,
/// the same one the binaries wrote them with.
pub fn parse_env_lines(text: &str) -> Result<Vec<(String, String)>> {
    ecskit_contract::env::parse_lines(text)
}

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

// --- running --------------------------------------------------------------------------------

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

/// Runs binaries of the chain as processes.
pub struct Runner {
    pub bin_dir: PathBuf,
    pub log_dir: PathBuf,
    pub region: String,
    pub dry_run: bool,
    /// Do not pass the steps' stderr through (the benchmark).
    pub quiet: bool,
    /// Pass --verify to taskdef-register.
    pub verify: bool,
    /// Added to every step's environment (the local stack's endpoints for the demo).
    pub base_env: Vec<(String, String)>,
    /// Removed from every step's environment (credentials that would mix into a local run).
    pub remove_env: Vec<String>,
}

impl Runner {
    /// Builds the binaries of `steps` (once) unless `ECSKIT_BIN_DIR` names prebuilt ones.
    pub fn new(steps: &[Step], region: &str, dry_run: bool) -> Result<Runner> {
        let bin_dir = match std::env::var_os("ECSKIT_BIN_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                build(steps)?;
                target_dir().join("debug")
            }
        };
        let log_dir =
            std::env::temp_dir().join(format!("ecskit-deploy-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
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
            .join(format!("{}-{}.calls", step.name(), nanos()));
        let mut cmd = Command::new(self.bin_dir.join(step.name()));
        for var in &self.remove_env {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .args(["--output", "env"])
            .envs(self.base_env.iter().map(|(k, v)| (k, v)))
            .envs(env)
            .env("AWS_REGION", &self.region)
            .env("ECSKIT_CALL_LOG", &log)
            .env_remove("ECSKIT_OUTPUT")
            .env_remove("ECSKIT_DRY_RUN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.dry_run {
            cmd.arg("--dry-run");
        }
        if !self.quiet {
            eprintln!("[{}] $ {}", step.name(), util::show(&cmd));
        }
        let failed = |code: u8, error: String| StepResult {
            step,
            code,
            changed: None,
            outputs: Vec::new(),
            calls: Calls::default(),
            time: start.elapsed(),
            error: Some(error),
        };
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return failed(
                    1,
                    format!(
                        "could not run {}: {e}",
                        self.bin_dir.join(step.name()).display()
                    ),
                );
            }
        };
        let stderr = child.stderr.take();
        let name = step.name();
        let quiet = self.quiet;
        let tail = std::thread::spawn(move || {
            let mut tail: Vec<String> = Vec::new();
            if let Some(err) = stderr {
                for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                    if !quiet {
                        eprintln!("[{name}] {line}");
                    }
                    tail.push(line);
                    if tail.len() > 12 {
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
            let mut r = failed(code, tail.join("\n"));
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

/// `cargo build -p image-push -p role-create ...`: one build for all the binaries.
pub fn build(steps: &[Step]) -> Result<()> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(util::workspace_root()).arg("build");
    if steps.is_empty() {
        return Ok(());
    }
    for s in steps {
        cmd.args(["-p", s.name()]);
    }
    util::run(&mut cmd)
}

/// Runs `steps` stage by stage, the steps of a stage at the same time. `env` starts with the
/// outputs known before the run and gains each step's outputs. Stops after the first stage
/// with a failing step; the steps after it are returned as not run.
pub fn run_chain(
    runner: &Runner,
    stack: &Stack,
    steps: &[Step],
    env: &mut BTreeMap<String, String>,
) -> Vec<StepResult> {
    let mut results: Vec<StepResult> = Vec::new();
    for stage in stages(steps) {
        let mut env_now = env.clone();
        // Without taskdef-register in this run and no output from an earlier one, service-run
        // takes the family's latest ACTIVE revision; an exported ECSKIT_TASK_DEFINITION_ARN
        // (the processes inherit it) wins over both.
        if std::env::var_os("ECSKIT_TASK_DEFINITION_ARN").is_none() {
            env_now
                .entry("ECSKIT_TASK_DEFINITION_ARN".into())
                .or_insert_with(|| stack.family.clone());
        }
        let stage_results: Vec<StepResult> = std::thread::scope(|scope| {
            let handles: Vec<_> = stage
                .iter()
                .map(|step| {
                    let mut args = step_args(*step, stack, Mode::Deploy);
                    // verify runs where the task definition is about to be registered: its
                    // roles, image, secrets and log groups exist by then (stage 0 made them).
                    if *step == Step::TaskdefRegister && runner.verify {
                        args.push("--verify".into());
                    }
                    let env_now = &env_now;
                    scope.spawn(move || runner.run(*step, &args, env_now))
                })
                .collect();
            handles
                .into_iter()
                .zip(&stage)
                .map(|(h, step)| {
                    h.join().unwrap_or_else(|_| StepResult {
                        step: *step,
                        code: 1,
                        changed: None,
                        outputs: Vec::new(),
                        calls: Calls::default(),
                        time: Duration::ZERO,
                        error: Some("the thread running it panicked".into()),
                    })
                })
                .collect()
        });
        let failed = stage_results.iter().any(|r| r.code != 0);
        for r in &stage_results {
            for (k, v) in &r.outputs {
                env.insert(k.clone(), v.clone());
            }
        }
        results.extend(stage_results);
        if failed {
            break;
        }
    }
    results
}

/// The exit code of a chain: that of the first failing step in chain order, else 0.
pub fn exit_code(results: &[StepResult]) -> u8 {
    results
        .iter()
        .find(|r| r.code != 0)
        .map(|r| r.code)
        .unwrap_or(0)
}

// --- outputs saved between runs --------------------------------------------------------------

/// Where the outputs of the last successful steps are kept, so that `--only` and `--from` can
/// give the steps they run the outputs of the steps they skip.
pub fn outputs_file(stack: &Stack) -> PathBuf {
    stack
        .path
        .parent()
        .unwrap_or(Path::new("."))
        .join(".ecskit")
        .join(format!("{}.outputs.env", stack.app))
}

pub fn load_outputs(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| parse_env_lines(&t).ok())
        .map(|pairs| pairs.into_iter().collect())
        .unwrap_or_default()
}

pub fn save_outputs(path: &Path, outputs: &BTreeMap<String, String>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let text: String = outputs
        .iter()
        .filter(|(k, _)| k.starts_with("ECSKIT_"))
        .map(|(k, v)| format!("{k}='{}'\n", v.replace('\'', "'\\''")))
        .collect();
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

// --- the summary -----------------------------------------------------------------------------

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

pub struct Summary<'a> {
    pub title: &'a str,
    pub stack: &'a Stack,
    pub planned: &'a [Step],
    pub results: &'a [StepResult],
    pub time: Duration,
    pub dry_run: bool,
}

impl Summary<'_> {
    pub fn calls(&self) -> Calls {
        self.results
            .iter()
            .fold(Calls::default(), |acc, r| acc + r.calls)
    }

    fn result(&self, step: Step) -> Option<&StepResult> {
        self.results.iter().find(|r| r.step == step)
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.text(),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&self.json()).unwrap_or_default();
                s.push('\n');
                s
            }
        }
    }

    pub fn json(&self) -> Value {
        let steps: Vec<Value> = self
            .planned
            .iter()
            .map(|step| match self.result(*step) {
                Some(r) => {
                    let outputs: serde_json::Map<String, Value> = r
                        .outputs
                        .iter()
                        .map(|(k, v)| (k.trim_start_matches("ECSKIT_").to_lowercase(), json!(v)))
                        .collect();
                    json!({
                        "step": step.name(),
                        "status": if r.code == 0 { "ok" } else { "failed" },
                        "exit_code": r.code,
                        "changed": r.changed,
                        "seconds": secs(r.time),
                        "aws_calls": r.calls,
                        "outputs": outputs,
                        "error": r.error,
                    })
                }
                None => json!({"step": step.name(), "status": "not run"}),
            })
            .collect();
        json!({
            "task": self.title,
            "stack": self.stack.path.display().to_string(),
            "app": self.stack.app,
            "region": self.stack.region,
            "dry_run": self.dry_run,
            "exit_code": exit_code(self.results),
            "changed": self.results.iter().any(|r| r.changed == Some(true)),
            "seconds": secs(self.time),
            "aws_calls": self.calls(),
            "steps": steps,
        })
    }

    fn text(&self) -> String {
        let mut out = format!(
            "{} {}: app {} in {}{}\n",
            self.title,
            self.stack.path.display(),
            self.stack.app,
            self.stack.region,
            if self.dry_run {
                " (dry run: nothing was changed)"
            } else {
                ""
            }
        );
        out.push_str(&format!(
            "  {:<17} {:<8} {:<8} {:>6} {:>9} {:>8}\n",
            "step", "result", "changed", "calls", "mutating", "time"
        ));
        for step in self.planned {
            match self.result(*step) {
                Some(r) => {
                    let result = if r.code == 0 {
                        "ok".to_string()
                    } else {
                        format!("exit {}", r.code)
                    };
                    let changed = match r.changed {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "-",
                    };
                    out.push_str(&format!(
                        "  {:<17} {:<8} {:<8} {:>6} {:>9} {:>7.2}s\n",
                        step.name(),
                        result,
                        changed,
                        r.calls.total,
                        r.calls.mutating,
                        secs(r.time)
                    ));
                    for key in step.key_outputs() {
                        let name = format!("ECSKIT_{key}");
                        if let Some((_, v)) = r.outputs.iter().find(|(k, _)| *k == name) {
                            out.push_str(&format!("      {}: {v}\n", key.to_lowercase()));
                        }
                    }
                    if let Some(e) = &r.error {
                        for line in e.lines() {
                            out.push_str(&format!("      | {line}\n"));
                        }
                    }
                }
                None => out.push_str(&format!("  {:<17} not run\n", step.name())),
            }
        }
        let calls = self.calls();
        out.push_str(&format!(
            "  {:<17} {:<8} {:<8} {:>6} {:>9} {:>7.2}s\n",
            "total",
            if exit_code(self.results) == 0 && self.results.len() == self.planned.len() {
                "ok"
            } else {
                "FAILED"
            },
            if self.results.iter().any(|r| r.changed == Some(true)) {
                "yes"
            } else {
                "no"
            },
            calls.total,
            calls.mutating,
            secs(self.time)
        ));
        out
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

// --- the command -----------------------------------------------------------------------------

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stack file.
    #[arg(long, default_value = "ecskit.toml")]
    pub stack: PathBuf,
    /// Run only these steps (repeat or separate with commas). Outputs of the others come from
    /// the environment or from the last run (.ecskit/APP.outputs.env beside the stack file).
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "from")]
    pub only: Vec<Step>,
    /// Run this step and every step after it.
    #[arg(long, value_enum)]
    pub from: Option<Step>,
    /// Show every step's plan; nothing is changed.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip verify (taskdef-register --verify: roles, image, secrets, env files, log groups and
    /// permissions are checked before the task definition is registered). A dry run of a new
    /// stack skips it too: nothing it would check exists yet.
    #[arg(long)]
    pub no_verify: bool,
    /// How to print the summary on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// Exit codes: those of the binaries (0 ok, 1 AWS/Docker failure, 2 bad input, 3 deployment
/// failed); a bad stack file is 2, a failed build 1.
pub fn main(args: Args) -> ExitCode {
    match deploy(&args) {
        Ok((summary_text, code)) => {
            print!("{summary_text}");
            ExitCode::from(code)
        }
        Err((msg, code)) => {
            eprintln!("xtask deploy: error: {msg}");
            ExitCode::from(code)
        }
    }
}

pub fn load_stack(path: &Path) -> std::result::Result<Stack, (String, u8)> {
    stack::load(path).map_err(|problems| {
        (
            format!(
                "the stack file has {} problem(s); nothing was run:\n  {}",
                problems.len(),
                problems.join("\n  ")
            ),
            2,
        )
    })
}

fn deploy(args: &Args) -> std::result::Result<(String, u8), (String, u8)> {
    let stack = load_stack(&args.stack)?;
    let planned = select(&stack_steps(&stack), &args.only, args.from).map_err(|e| (e, 2))?;
    let mut runner = Runner::new(&planned, &stack.region, args.dry_run).map_err(|e| (e, 1))?;
    runner.verify = !args.no_verify && !args.dry_run;
    let saved = outputs_file(&stack);
    // Outputs of the steps this run skips: the environment first (as for the binaries), then
    // what the last run saved.
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    if planned.len() < stack_steps(&stack).len() {
        for (k, v) in load_outputs(&saved) {
            if std::env::var_os(&k).is_none() {
                env.insert(k, v);
            }
        }
    }
    let start = Instant::now();
    let results = run_chain(&runner, &stack, &planned, &mut env);
    let time = start.elapsed();
    if !args.dry_run {
        let mut keep = load_outputs(&saved);
        for r in results.iter().filter(|r| r.code == 0) {
            keep.extend(r.outputs.iter().cloned());
        }
        if let Err(e) = save_outputs(&saved, &keep) {
            eprintln!("xtask deploy: warning: could not save the outputs: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(&runner.log_dir);
    let summary = Summary {
        title: "deploy",
        stack: &stack,
        planned: &planned,
        results: &results,
        time,
        dry_run: args.dry_run,
    };
    Ok((summary.render(args.output), exit_code(&results)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> Stack {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let d = std::env::temp_dir().join(format!("ecskit-deploy-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("td.json"), r#"{"family": "web"}"#).unwrap();
        std::fs::write(d.join("a.properties"), "a=1").unwrap();
        let text = r#"
[app]
name = "web"
region = "eu-west-1"
[image]
source = "web:1"
tags = ["1", "latest"]
[roles]
bucket = "web-config"
prefix = "web"
[config]
files = ["a.properties"]
[task_definition]
file = "td.json"
[service]
wait = false
[service.network]
subnets = ["subnet-a", "subnet-b"]
assign_public_ip = true
"#;
        let mut s = crate::stack::parse(text, &d).unwrap();
        s.path = d.join("ecskit.toml");
        s
    }

    #[test]
    fn args_map_the_stack_file_to_flags() {
        let s = stack();
        assert_eq!(
            step_args(Step::ImagePush, &s, Mode::Deploy),
            [
                "web:1",
                "--repository",
                "web",
                "--tag",
                "1",
                "--tag",
                "latest"
            ]
        );
        assert_eq!(
            step_args(Step::RoleCreate, &s, Mode::Deploy),
            [
                "--name",
                "web",
                "--bucket",
                "web-config",
                "--prefix",
                "web",
                "--access",
                "read"
            ]
        );
        let cfg = step_args(Step::ConfigUpload, &s, Mode::Deploy);
        assert_eq!(&cfg[..4], ["--bucket", "web-config", "--prefix", "web"]);
        assert!(cfg[4].ends_with("a.properties"), "{cfg:?}");
        assert_eq!(
            step_args(Step::ServiceRun, &s, Mode::Deploy),
            [
                "--cluster",
                "web",
                "--service",
                "web",
                "--desired-count",
                "1",
                "--launch-type",
                "FARGATE",
                "--subnets",
                "subnet-a",
                "--subnets",
                "subnet-b",
                "--assign-public-ip=true",
                "--no-wait"
            ]
        );
    }

    #[test]
    fn delete_args_name_the_same_resources() {
        let s = stack();
        for step in Step::ALL {
            let a = step_args(step, &s, Mode::Delete);
            assert!(
                a.iter().any(|f| f.starts_with("--delete")),
                "{}: {a:?}",
                step.name()
            );
        }
        assert_eq!(
            step_args(Step::TaskdefRegister, &s, Mode::Delete),
            ["--family", "web", "--delete"]
        );
        assert_eq!(
            step_args(Step::ServiceRun, &s, Mode::Delete),
            [
                "--cluster",
                "web",
                "--service",
                "web",
                "--delete",
                "--delete-cluster"
            ]
        );
    }

    #[test]
    fn steps_follow_the_stack_file() {
        let mut s = stack();
        assert_eq!(
            stack_steps(&s),
            [
                Step::ImagePush,
                Step::RoleCreate,
                Step::ConfigUpload,
                Step::TaskdefRegister,
                Step::ServiceRun
            ]
        );
        s.config_files.clear();
        s.instance_profile = Some(Default::default());
        assert!(stack_steps(&s).contains(&Step::InstanceProfile));
        assert!(!stack_steps(&s).contains(&Step::ConfigUpload));
    }

    #[test]
    fn only_and_from_select_in_chain_order() {
        let all = Step::ALL.to_vec();
        assert_eq!(select(&all, &[], None).unwrap(), all);
        assert_eq!(
            select(&all, &[Step::ServiceRun, Step::ImagePush], None).unwrap(),
            [Step::ImagePush, Step::ServiceRun]
        );
        assert_eq!(
            select(&all, &[], Some(Step::ConfigUpload)).unwrap(),
            [Step::ConfigUpload, Step::TaskdefRegister, Step::ServiceRun]
        );
        let without_profile: Vec<Step> = all
            .iter()
            .copied()
            .filter(|s| *s != Step::InstanceProfile)
            .collect();
        let err = select(&without_profile, &[Step::InstanceProfile], None).unwrap_err();
        assert!(err.contains("instance_profile"), "{err}");
    }

    #[test]
    fn independent_steps_share_a_stage() {
        assert_eq!(
            stages(&Step::ALL),
            vec![
                vec![
                    Step::ImagePush,
                    Step::RoleCreate,
                    Step::InstanceProfile,
                    Step::ConfigUpload
                ],
                vec![Step::TaskdefRegister],
                vec![Step::ServiceRun],
            ]
        );
        assert_eq!(
            stages(&[Step::RoleCreate, Step::ServiceRun]),
            vec![vec![Step::RoleCreate], vec![Step::ServiceRun]]
        );
    }

    #[test]
    fn env_lines_are_unquoted() {
        let text = "ECSKIT_TASK_ROLE_ARN='arn:aws:iam::123456789012:role/web-task'\n\
                    ECSKIT_KEYS='a b,it'\\''s'\n\
                    ECSKIT_PLAIN=value\n\
                    ECSKIT_EMPTY=''\n\
                    export ECSKIT_DQ=\"x \\\"y\\\" \\$z\"\n\
                    \n\
                    ECSKIT_CHANGED=false\n";
        assert_eq!(
            parse_env_lines(text).unwrap(),
            vec![
                (
                    "ECSKIT_TASK_ROLE_ARN".to_string(),
                    "arn:aws:iam::123456789012:role/web-task".to_string()
                ),
                ("ECSKIT_KEYS".into(), "a b,it's".into()),
                ("ECSKIT_PLAIN".into(), "value".into()),
                ("ECSKIT_EMPTY".into(), "".into()),
                ("ECSKIT_DQ".into(), "x \"y\" $z".into()),
                ("ECSKIT_CHANGED".into(), "false".into()),
            ]
        );
        assert!(parse_env_lines("ECSKIT_X='open\n").is_err());
        assert!(parse_env_lines("just some text\n").is_err());
        assert!(parse_env_lines("lower=x\n").is_err());
    }

    #[test]
    fn saved_outputs_round_trip() {
        let s = stack();
        let path = s.path.parent().unwrap().join("saved/web.outputs.env");
        let outputs = BTreeMap::from([
            (
                "ECSKIT_IMAGE_URI".to_string(),
                "r/web@sha256:ab".to_string(),
            ),
            ("ECSKIT_ODD".to_string(), "it's $HOME".to_string()),
        ]);
        save_outputs(&path, &outputs).unwrap();
        assert_eq!(load_outputs(&path), outputs);
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

    fn result(step: Step, code: u8, changed: Option<bool>, ms: u64) -> StepResult {
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
    fn the_exit_code_is_the_first_failing_step_in_chain_order() {
        let rs = vec![
            result(Step::ImagePush, 0, Some(true), 10),
            result(Step::RoleCreate, 2, None, 10),
            result(Step::ConfigUpload, 1, None, 10),
        ];
        assert_eq!(exit_code(&rs), 2);
        assert_eq!(exit_code(&rs[..1]), 0);
    }

    #[test]
    fn summary_shows_each_step_and_the_totals() {
        let s = stack();
        let planned = [Step::ImagePush, Step::RoleCreate, Step::TaskdefRegister];
        let results = vec![
            result(Step::ImagePush, 0, Some(false), 120),
            result(Step::RoleCreate, 1, None, 80),
        ];
        let summary = Summary {
            title: "deploy",
            stack: &s,
            planned: &planned,
            results: &results,
            time: Duration::from_millis(200),
            dry_run: false,
        };
        let text = summary.render(Format::Text);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("step") && lines[1].contains("mutating"));
        assert!(lines[2].starts_with("  image-push") && lines[2].contains(" ok "));
        assert!(lines[2].contains(" no ") && lines[2].ends_with("0.12s"));
        assert_eq!(lines[3], "      image_uri: 127.0.0.1:5000/web@sha256:ab");
        assert!(lines[4].starts_with("  role-create") && lines[4].contains("exit 1"));
        assert_eq!(lines[5], "      | error: no such image web:1");
        assert_eq!(lines[6].trim(), "taskdef-register  not run");
        assert!(lines[7].contains("FAILED") && lines[7].contains("8"));

        let v = summary.json();
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["aws_calls"], json!({"total": 8, "mutating": 0}));
        assert_eq!(v["steps"][0]["changed"], false);
        assert_eq!(
            v["steps"][0]["outputs"]["image_uri"],
            "127.0.0.1:5000/web@sha256:ab"
        );
        assert_eq!(v["steps"][1]["status"], "failed");
        assert_eq!(v["steps"][2]["status"], "not run");
    }
}
