//! ecskit: every step in one binary, as busybox and uutils coreutils ship. The step is the first
//! argument (`ecskit role-create --name web`) or the name the binary is invoked as (a link named
//! `role-create`); either way the rest of the command line is the step's own, parsed, helped and
//! documented by the step's own `main` ([`ecskit::cli::run_step_from`]), so `ecskit role-create
//! --help` prints what `role-create --help` prints. Releases ship this one binary with a link
//! per step: the eight steps share one copy of the library and the AWS SDK instead of eight.

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;

use ecskit::step::Step as StepImpl;
use ecskit_contract::Step;
use ecskit_contract::exit;

/// What the multicall binary needs of a step: its `main` and its command line (for the list of
/// steps in `ecskit --help`).
struct Entry {
    run: fn(Vec<OsString>) -> ExitCode,
    command: fn() -> clap::Command,
}

fn entry<S: StepImpl>() -> Entry {
    Entry {
        run: ecskit::cli::run_step_from::<S>,
        command: ecskit::cli::command::<S::Args>,
    }
}

/// Each step of the contract's list, by its module: a new step is one line here (the match is
/// exhaustive, so a step added to the contract does not build until it has its line).
fn entry_of(step: Step) -> Entry {
    use ecskit::{
        capacity_create, config_upload, image_push, instance_profile, role_create, service_run,
        task_run, taskdef_register,
    };
    match step {
        Step::ImagePush => entry::<image_push::ImagePush>(),
        Step::RoleCreate => entry::<role_create::RoleCreate>(),
        Step::InstanceProfile => entry::<instance_profile::InstanceProfile>(),
        Step::CapacityCreate => entry::<capacity_create::CapacityCreate>(),
        Step::ConfigUpload => entry::<config_upload::ConfigUpload>(),
        Step::TaskdefRegister => entry::<taskdef_register::TaskdefRegister>(),
        Step::ServiceRun => entry::<service_run::ServiceRun>(),
        Step::TaskRun => entry::<task_run::TaskRun>(),
    }
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // The link form: the whole command line is the step's, its first word the step's name.
    if let Some(step) = argv.first().and_then(|a| invoked_as(a)) {
        return (entry_of(step).run)(argv);
    }
    let Some(first) = argv.get(1) else {
        eprintln!("error: no step given\n\n{}", usage());
        return ExitCode::from(exit::INPUT);
    };
    match first.to_str() {
        Some("-h" | "--help" | "help") => {
            print!("{}", help());
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("ecskit {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        // `ecskit role-create ARGS`: the step sees `role-create ARGS`, as its own binary would.
        Some(name) => match name.parse::<Step>() {
            Ok(step) => (entry_of(step).run)(argv[1..].to_vec()),
            Err(not_a_step) => {
                eprintln!("error: {not_a_step}\n\n{}", usage());
                ExitCode::from(exit::INPUT)
            }
        },
        None => {
            eprintln!(
                "error: '{}' is not a step: one of {}\n\n{}",
                first.to_string_lossy(),
                step_names().join(", "),
                usage()
            );
            ExitCode::from(exit::INPUT)
        }
    }
}

/// The step a link names: the file name the binary was run as (`/usr/local/bin/role-create`),
/// without the platform's executable suffix. Any other name (`ecskit`, a renamed copy) is the
/// first-argument form.
fn invoked_as(argv0: &OsStr) -> Option<Step> {
    let name = std::path::Path::new(argv0).file_name()?.to_str()?;
    let name = name
        .strip_suffix(std::env::consts::EXE_SUFFIX)
        .unwrap_or(name);
    Step::from_binary(name)
}

fn step_names() -> Vec<&'static str> {
    Step::ALL.iter().map(|s| s.binary()).collect()
}

fn usage() -> String {
    "Usage: ecskit <STEP> [ARGS]...\n\nSteps: ecskit --help lists them; a step's flags: ecskit <STEP> --help\n".into()
}

/// `ecskit --help`: the steps, each with the one-line description its own help starts with.
fn help() -> String {
    let width = step_names().iter().map(|n| n.len()).max().unwrap_or(0);
    let steps: String = Step::ALL
        .iter()
        .map(|&s| {
            let about = (entry_of(s).command)()
                .get_about()
                .map(|a| a.to_string())
                .unwrap_or_default();
            format!("  {:width$}  {about}\n", s.binary())
        })
        .collect();
    format!(
        "Every ecskit step in one binary: run a step by its name as the first argument, or through \
         a link named after it.\n\n\
         Usage: ecskit <STEP> [ARGS]...\n       <STEP> [ARGS]...   (a link named after the step)\n\n\
         Steps:\n{steps}\n\
         A step's flags, completions and man page are its own: ecskit <STEP> --help\n"
    )
}
