//! `cargo xtask destroy`: removes what the stack created, in the reverse order of the chain,
//! through each binary's `--delete` (which touches only resources tagged `managed-by=ecskit`).
//!
//! It asks first. Without `--yes` it reads the answer from stdin, and a closed or empty stdin
//! (CI) is a refusal: nothing is deleted by accident.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::chain::{self, Format, Mode, Runner, Step, Summary};
use crate::stack::Stack;

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
    /// How to print the summary on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// The steps in the order they are undone: the service before the task definition it runs,
/// the task definition before the roles and image it names.
pub fn order(stack: &Stack) -> Vec<Step> {
    let mut steps = chain::stack_steps(stack);
    steps.reverse();
    steps
}

/// What the stack's steps delete, for the question.
pub fn plan(stack: &Stack) -> Vec<String> {
    order(stack)
        .into_iter()
        .map(|step| {
            let what = match step {
                Step::ServiceRun => format!(
                    "service {} and cluster {} (if empty)",
                    stack.service, stack.cluster
                ),
                Step::TaskdefRegister => {
                    format!("every revision of task definition family {}", stack.family)
                }
                Step::ConfigUpload => format!(
                    "bucket {} with the config under {}/",
                    stack.bucket, stack.prefix
                ),
                Step::InstanceProfile => "the instance profile and its role".into(),
                Step::RoleCreate => format!(
                    "roles {} and {}",
                    stack
                        .task_role_name
                        .clone()
                        .unwrap_or_else(|| format!("{}-task", stack.app)),
                    stack
                        .execution_role_name
                        .clone()
                        .unwrap_or_else(|| format!("{}-execution", stack.app))
                ),
                Step::ImagePush => {
                    format!("ECR repository {} and its images", stack.repository)
                }
            };
            format!("{:<17} {what}", step.binary())
        })
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
    let stack = match chain::load_stack(&args.stack) {
        Ok(s) => s,
        Err((msg, code)) => {
            eprintln!("xtask destroy: error: {msg}");
            return ExitCode::from(code);
        }
    };
    eprintln!(
        "destroy {} (app {} in {}) removes, in this order, what ecskit created and tagged managed-by=ecskit:",
        args.stack.display(),
        stack.app,
        stack.region
    );
    for line in plan(&stack) {
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
    destroy(&stack, args.dry_run, args.output, None)
}

/// Runs every step's `--delete`, one after another. Stops at the first failure: a re-run
/// carries on where it stopped, because deleting what is gone is not an error for the steps.
/// Removes the stack's resources. `local` points the steps at the local stack (the benchmark's
/// own clean-up); otherwise they run in this process's environment.
pub fn destroy(
    stack: &Stack,
    dry_run: bool,
    output: Format,
    local: Option<&crate::local::State>,
) -> ExitCode {
    let steps = order(stack);
    let runner = match Runner::new(&steps, &stack.region, dry_run) {
        Ok(mut r) => {
            if let Some(state) = local {
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
    let mut results = Vec::new();
    let env = BTreeMap::new();
    for step in &steps {
        let r = runner.run(*step, &chain::step_args(*step, stack, Mode::Delete), &env);
        let failed = r.code != 0;
        results.push(r);
        if failed {
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&runner.log_dir);
    let code = chain::exit_code(&results);
    if !dry_run && code == 0 {
        let _ = std::fs::remove_file(chain::outputs_file(stack));
    }
    let summary = Summary {
        title: "destroy",
        stack,
        planned: &steps,
        results: &results,
        time: start.elapsed(),
        dry_run,
    };
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
        let stack = crate::stack::load(&path).unwrap();
        let steps = order(&stack);
        assert_eq!(steps.first(), Some(&Step::ServiceRun));
        assert_eq!(steps.last(), Some(&Step::ImagePush));
        let plan = plan(&stack);
        assert_eq!(plan.len(), steps.len());
        assert!(plan[0].contains(&stack.service), "{plan:?}");
    }
}
