//! `cargo xtask deploy`: the whole chain from one stack file (see [`crate::chain`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::chain::{
    Format, Runner, Step, Summary, exit_code, load_outputs, load_stack, outputs_file, run_chain,
    save_outputs, select, stack_steps,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stack file.
    #[arg(long, default_value = "ecskit.toml")]
    pub stack: PathBuf,
    /// Run only these steps (repeat or separate with commas). Outputs of the others come from
    /// the environment or from the last run (.ecskit/APP.outputs.env beside the stack file).
    #[arg(long, value_delimiter = ',', conflicts_with = "from")]
    pub only: Vec<Step>,
    /// Run this step and every step after it.
    #[arg(long)]
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
