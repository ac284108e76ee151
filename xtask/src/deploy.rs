//! `cargo xtask deploy`: the whole chain from one stack file (see [`crate::chain`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::chain::{
    DEFAULT_JOBS, Format, Runner, Selection, StepResult, Summary, exit_code, load_outputs,
    load_stack, outputs_file, plan, run_chain, save_outputs,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stack file.
    #[arg(long, default_value = "ecskit.toml")]
    pub stack: PathBuf,
    /// Run only these steps, or these services' steps (a step's name or a `[services.NAME]`;
    /// repeat or separate with commas: `--only web,service-run`). Outputs of the others come
    /// from the environment or from the last run (.ecskit/ beside the stack file).
    #[arg(long, value_delimiter = ',', conflicts_with = "from")]
    pub only: Vec<String>,
    /// Run this step and every step after it, or this service and the ones after it in the file.
    #[arg(long)]
    pub from: Option<String>,
    /// Show every step's plan; nothing is changed.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip verify (taskdef-register --verify: roles, image, secrets, env files, log groups and
    /// permissions are checked before the task definition is registered). A dry run of a new
    /// stack skips it too: nothing it would check exists yet.
    #[arg(long)]
    pub no_verify: bool,
    /// At most this many steps at once (default 8: within AWS's per-account API rate limits;
    /// see docs/orchestrator.md).
    #[arg(long, default_value_t = DEFAULT_JOBS as u32, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    /// How to print the summary on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// Exit codes: those of the binaries (0 ok, 1 AWS/Docker failure, 2 bad input, 3 deployment
/// failed), that of the first failed step in the file's order of services; a bad stack file
/// is 2, a failed build 1.
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
    let stacks = load_stack(&args.stack)?;
    let sel = Selection::parse(&stacks, &args.only, args.from.as_deref()).map_err(|e| (e, 2))?;
    let units = plan::deploy(&stacks, &sel);
    let steps = plan::steps(&units);
    let mut runner = Runner::new(&steps, &stacks.region, args.dry_run).map_err(|e| (e, 1))?;
    runner.verify = !args.no_verify && !args.dry_run;
    // Outputs of the steps this run skips, per service: the environment first (as for the
    // binaries), then what the last run saved.
    let base: Vec<BTreeMap<String, String>> = stacks
        .services
        .iter()
        .map(|s| {
            let mut env = BTreeMap::new();
            if sel.is_partial(s) {
                for (k, v) in load_outputs(&outputs_file(s)) {
                    if std::env::var_os(&k).is_none() {
                        env.insert(k, v);
                    }
                }
            }
            env
        })
        .collect();
    let start = Instant::now();
    let results = run_chain(&runner, &stacks, &units, &base, args.jobs as usize);
    let time = start.elapsed();
    if !args.dry_run {
        for (i, s) in stacks.services.iter().enumerate() {
            let mine: Vec<&StepResult> = units
                .iter()
                .zip(&results)
                .filter(|(u, _)| u.services.contains(&i))
                .filter_map(|(_, r)| r.as_ref().filter(|r| r.code == 0))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let saved = outputs_file(s);
            let mut keep = load_outputs(&saved);
            for r in mine {
                keep.extend(r.outputs.iter().cloned());
            }
            if let Err(e) = save_outputs(&saved, &keep) {
                eprintln!("xtask deploy: warning: could not save the outputs: {e}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&runner.log_dir);
    let summary = Summary {
        title: "deploy",
        stacks: &stacks,
        units: &units,
        results: &results,
        time,
        dry_run: args.dry_run,
    };
    for f in summary.failures() {
        eprintln!("xtask deploy: failed: {f}");
    }
    Ok((summary.render(args.output), exit_code(&results)))
}
