//! `cargo xtask verify [--stack F]`: the stack's verify checks (roles and their trust, images
//! and their architecture, secrets, env files, log groups, the roles' permissions, the
//! service's network, the `[capacity]`'s instance profile and AMI parameter) without a deploy. For each service it runs `taskdef-register --verify
//! --dry-run` on the task definition, then `service-run --verify=network --dry-run` on the
//! revision that would be deployed, with the outputs of the last deploy
//! (`.ecskit/APP.outputs.env`) where the environment does not give them, so `${ECSKIT_*}` in
//! the files resolve as they would in a deploy. A dry run makes no mutating call; the checks
//! only read.
//!
//! Every check is a line on stdout (`--output json`: `{"ok": ..., "checks": [...]}`); a failed
//! check is exit 2. The binary's own stderr (the dry run's document) is shown only when it
//! failed before checking (bad input, an AWS failure).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use ecskit_contract::env::VERIFY_SHARED;
use serde_json::{Value, json};

use crate::chain::runner::verify_flag;
use crate::chain::{
    Format, Mode, Step, build, load_outputs, load_stack, outputs_file, step_args, target_dir,
};
use crate::stack::Stack;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stack file.
    #[arg(long, default_value = "ecskit.toml")]
    pub stack: PathBuf,
    /// How to print the checks on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

pub fn main(args: Args) -> ExitCode {
    match verify(&args) {
        Ok((text, code)) => {
            print!("{text}");
            ExitCode::from(code)
        }
        Err((msg, code)) => {
            eprintln!("xtask verify: error: {msg}");
            ExitCode::from(code)
        }
    }
}

fn verify(args: &Args) -> Result<(String, u8), (String, u8)> {
    let stacks = load_stack(&args.stack)?;
    let bin_dir = match std::env::var_os("ECSKIT_BIN_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            build(
                &[
                    Step::CapacityCreate,
                    Step::TaskdefRegister,
                    Step::ServiceRun,
                ],
                &[],
                false,
            )
            .map_err(|e| (e, 1))?;
            target_dir().join("debug")
        }
    };
    // Each service's task definition, with its own saved outputs; in a [services] file each
    // check names its service.
    let mut checks: Vec<Value> = Vec::new();
    let mut code = 0;
    // What the services share (roles, an image, a log group, the network) is checked once:
    // the steps keep their answers here for the next service's (private, removed at the end).
    let shared = tempfile::Builder::new()
        .prefix("ecskit-verify-")
        .tempdir()
        .map_err(|e| (format!("a private directory for verify's answers: {e}"), 1))?;
    // The stack's EC2 capacity, once (its services share it): the instance profile its
    // instances launch with, and the AMI parameter.
    if let Some(stack) = stacks.services.iter().find(|s| s.capacity.is_some()) {
        let env = load_outputs(&outputs_file(stack))
            .into_iter()
            .filter(|(k, _)| std::env::var_os(k).is_none())
            .collect();
        let (answer, c) = dry_run_checks(&bin_dir, stack, Step::CapacityCreate, &env)?;
        checks.extend(answer["checks"].as_array().cloned().unwrap_or_default());
        code = code.max(c);
    }
    for stack in &stacks.services {
        let (mut mine, c) = service_checks(&bin_dir, stack, shared.path())?;
        if let Some(key) = &stack.key {
            for check in &mut mine {
                check["service"] = json!(key);
            }
        }
        checks.extend(mine);
        code = code.max(c);
    }
    let failed = checks.iter().filter(|c| c["level"] == "failure").count();
    let text = match args.output {
        Format::Json => {
            serde_json::to_string_pretty(&json!({"ok": failed == 0, "checks": checks}))
                .unwrap_or_default()
                + "\n"
        }
        Format::Text => {
            let mut t = String::new();
            for c in &checks {
                t.push_str(&format!(
                    "{:<8} {}{} {}: {}\n",
                    c["level"].as_str().unwrap_or_default(),
                    c["service"]
                        .as_str()
                        .map(|s| format!("[{s}] "))
                        .unwrap_or_default(),
                    c["kind"].as_str().unwrap_or_default(),
                    c["resource"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default()
                ));
            }
            t.push_str(&format!(
                "verify: {} check(s), {failed} failed\n",
                checks.len()
            ));
            t
        }
    };
    Ok((text, if failed > 0 { 2 } else { code }))
}

/// One service's checks: taskdef-register --verify --dry-run on its task definition, then
/// service-run --verify=network --dry-run on the revision that would be deployed (the network
/// the deploy would use), with the outputs of its last deploy where the environment does not
/// give them.
fn service_checks(
    bin_dir: &Path,
    stack: &Stack,
    shared: &Path,
) -> Result<(Vec<Value>, u8), (String, u8)> {
    let mut env: BTreeMap<String, String> = load_outputs(&outputs_file(stack))
        .into_iter()
        .filter(|(k, _)| std::env::var_os(k).is_none())
        .collect();
    env.insert(VERIFY_SHARED.into(), shared.display().to_string());
    let (answer, code) = dry_run_checks(bin_dir, stack, Step::TaskdefRegister, &env)?;
    let mut checks = answer["checks"].as_array().cloned().unwrap_or_default();
    // The revision taskdef-register would register (or the unchanged one it would keep): a
    // failed check above leaves none, and the network is still worth checking on the last one.
    if let Some(arn) = answer["task_definition_arn"].as_str() {
        env.insert(TASK_DEFINITION_ARN.into(), arn.into());
    }
    let (answer, c) = dry_run_checks(bin_dir, stack, Step::ServiceRun, &env)?;
    checks.extend(answer["checks"].as_array().cloned().unwrap_or_default());
    Ok((checks, code.max(c)))
}

const TASK_DEFINITION_ARN: &str = "ECSKIT_TASK_DEFINITION_ARN";

/// One step's `--verify --dry-run --output json` answer and exit code; an error when it failed
/// before checking (its own stderr says why).
fn dry_run_checks(
    bin_dir: &Path,
    stack: &Stack,
    step: Step,
    env: &BTreeMap<String, String>,
) -> Result<(Value, u8), (String, u8)> {
    let out = Command::new(bin_dir.join(step.binary()))
        .args(step_args(step, stack, Mode::Deploy))
        .args(verify_flag(step))
        .args(["--dry-run", "--output", "json"])
        .envs(env)
        .env("AWS_REGION", &stack.region)
        .env_remove("ECSKIT_OUTPUT")
        .env_remove("ECSKIT_DRY_RUN")
        .env_remove("ECSKIT_VERIFY")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| (format!("running {}: {e}", step.binary()), 1))?;
    let code = out
        .status
        .code()
        .map(|c| c.clamp(0, 255) as u8)
        .unwrap_or(1);
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if answer["checks"].as_array().is_none() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        return Err((
            format!(
                "{} --verify failed before checking {} (exit {code})",
                step.binary(),
                stack.label()
            ),
            code.max(1),
        ));
    }
    Ok((answer, code))
}
