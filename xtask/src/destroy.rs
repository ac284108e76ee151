//! `cargo xtask destroy`: removes what the stack created (every service of it), in the reverse
//! order of the chain, through each binary's `--delete` (which touches only resources tagged
//! `managed-by=ecskit`).
//!
//! It asks first. Without `--yes` it reads the answer from stdin, and a closed or empty stdin
//! (CI) is a refusal: nothing is deleted by accident.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::chain::{self, DEFAULT_JOBS, Format, Runner, Step, Summary, Unit, plan};
use crate::stack::Stacks;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stack file.
    #[arg(long, default_value = "ecskit.toml")]
    pub stack: PathBuf,
    /// Do not ask.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show what each step would delete; nothing is deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// At most this many removals at once (default 8, as deploy's).
    #[arg(long, default_value_t = DEFAULT_JOBS as u32, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    /// How to print the summary on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// What one removal deletes, for the question.
fn what(stacks: &Stacks, unit: &Unit) -> String {
    let stack = &stacks.services[unit.services[0]];
    match unit.step {
        // Not a stage of the chain: a stack's removal has no task-run unit.
        Step::TaskRun => "nothing (task-run is not a step of a stack)".into(),
        Step::ServiceRun => {
            if unit.args.iter().any(|a| a == "--delete-cluster") {
                format!(
                    "service {} and cluster {} (if empty)",
                    stack.service, stack.cluster
                )
            } else {
                format!("service {} in cluster {}", stack.service, stack.cluster)
            }
        }
        Step::TaskdefRegister => {
            format!("every revision of task definition family {}", stack.family)
        }
        Step::ConfigUpload => format!(
            "bucket {} with the config under {}/",
            stack.bucket, stack.prefix
        ),
        Step::InstanceProfile => "the instance profile and its role".into(),
        Step::CapacityCreate => {
            let name = stack
                .capacity
                .as_ref()
                .map(|c| c.provider_name(&stack.app))
                .unwrap_or_default();
            format!(
                "capacity provider, Auto Scaling group (and its instances) and launch template {name}, then cluster {} (if ecskit made it and it is empty)",
                stack.cluster
            )
        }
        Step::RoleCreate => {
            let (task, execution) = stack.role_names();
            format!("roles {task} and {execution}")
        }
        Step::ImagePush => format!("ECR repository {} and its images", stack.repository),
    }
}

/// What the stack's removal deletes, in an order it may happen in, for the question.
pub fn plan(stacks: &Stacks, units: &[Unit]) -> Vec<String> {
    plan::in_order(units)
        .into_iter()
        .map(|u| format!("{:<17} {}", units[u].step.binary(), what(stacks, &units[u])))
        .collect()
}

/// Whether the answer is yes. EOF (a closed stdin) is no.
pub fn confirmed(input: &mut dyn BufRead) -> bool {
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) | Err(_) => false,
        Ok(_) => matches!(line.trim().to_lowercase().as_str(), "y" | "yes"),
    }
}

pub fn main(args: Args) -> ExitCode {
    let stacks = match chain::load_stack(&args.stack) {
        Ok(s) => s,
        Err((msg, code)) => {
            eprintln!("xtask destroy: error: {msg}");
            return ExitCode::from(code);
        }
    };
    eprintln!(
        "destroy {} (app {} in {}) removes, in this order, what ecskit created and tagged managed-by=ecskit:",
        args.stack.display(),
        stacks.app,
        stacks.region
    );
    for line in plan(&stacks, &plan::destroy(&stacks)) {
        eprintln!("  {line}");
    }
    if !args.yes && !args.dry_run {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprint!("Delete all of this? [y/N] ");
            let _ = std::io::stderr().flush();
        }
        if !confirmed(&mut stdin.lock()) {
            eprintln!(
                "\nxtask destroy: nothing deleted (not confirmed; in CI or scripts pass --yes)"
            );
            return ExitCode::from(2);
        }
    }
    destroy(&stacks, args.dry_run, args.output, args.jobs as usize, None)
}

/// Runs every removal (`--delete` of each step), each after what must go before it, up to
/// `jobs` at once. A removal that fails keeps what waits for it (the roles a failed service
/// removal still uses); a re-run carries on where it stopped, because deleting what is gone is
/// not an error for the steps. `local` points the steps at the local stack and runs the
/// binaries of the directory given (the benchmark's own clean-up, with its release binaries);
/// otherwise they are built and run in this process's environment.
pub fn destroy(
    stacks: &Stacks,
    dry_run: bool,
    output: Format,
    jobs: usize,
    local: Option<(&crate::local::State, &std::path::Path)>,
) -> ExitCode {
    let units = plan::destroy(stacks);
    let steps = plan::steps(&units);
    let runner = match local {
        // The benchmark's own binaries (release), not a debug build of them.
        Some((_, bin_dir)) => Runner::at(bin_dir.to_path_buf(), &stacks.region, dry_run),
        None => Runner::new(&steps, &stacks.region, dry_run),
    };
    let runner = match runner {
        Ok(mut r) => {
            if let Some((state, _)) = local {
                crate::demo::local_runner(&mut r, state);
            }
            r
        }
        Err(e) => {
            eprintln!("xtask destroy: error: {e}");
            return ExitCode::from(1);
        }
    };
    let start = Instant::now();
    let results = chain::run_units(&runner, &units, jobs, &|_, _| BTreeMap::new());
    let _ = std::fs::remove_dir_all(&runner.log_dir);
    let code = chain::exit_code(&results);
    if !dry_run && code == 0 {
        for s in &stacks.services {
            let _ = std::fs::remove_file(chain::outputs_file(s));
        }
    }
    let summary = Summary {
        title: "destroy",
        stacks,
        units: &units,
        results: &results,
        time: start.elapsed(),
        dry_run,
    };
    for f in summary.failures() {
        eprintln!("xtask destroy: failed: {f}");
    }
    print!("{}", summary.render(output));
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_yes_confirms() {
        assert!(confirmed(&mut &b"y\n"[..]));
        assert!(confirmed(&mut &b"YES\n"[..]));
        assert!(!confirmed(&mut &b"\n"[..]));
        assert!(!confirmed(&mut &b"no\n"[..]));
        // A closed stdin, as in CI.
        assert!(!confirmed(&mut &b""[..]));
    }

    #[test]
    fn the_service_goes_first_and_the_image_last() {
        let path = crate::util::workspace_root().join("examples/ecskit.toml");
        let stacks = crate::stack::load(&path).unwrap();
        let units = plan::destroy(&stacks);
        let order = plan::in_order(&units);
        assert_eq!(units[order[0]].step, Step::ServiceRun);
        assert_eq!(units[*order.last().unwrap()].step, Step::ImagePush);
        let plan = plan(&stacks, &units);
        assert_eq!(plan.len(), units.len());
        assert!(plan[0].contains(&stacks.services[0].service), "{plan:?}");
    }
}
