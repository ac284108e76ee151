//! Developer tasks and the orchestrator, run as `cargo xtask TASK`.
//!
//! One module per task. The xtask has few dependencies on purpose: it must build in seconds on
//! a new machine, before the AWS SDK crates, because `cargo xtask local up` and `cargo xtask ci`
//! are the first things run there.

mod bench;
mod chain;
mod ci;
mod demo;
mod deploy;
mod destroy;
mod init;
mod local;
mod release;
mod stack;
mod util;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ecskit developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// The local stack: AWS emulator (moto), container registry and Docker Engine on 127.0.0.1.
    Local {
        #[command(subcommand)]
        action: local::Action,
    },
    /// Everything CI checks: fmt, clippy, unit tests, integration tests against the local stack.
    Ci,
    /// The tests against the local stack (started if it is not up), with extra cargo test args.
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Deploy the stack file: image-push, role-create, instance-profile and config-upload at
    /// the same time, then taskdef-register and capacity-create, then service-run.
    Deploy(deploy::Args),
    /// Check the stack before deploying: roles and their trust, images and their architecture,
    /// secrets, env files, log groups, permissions. No mutating call; a failed check is exit 2.
    Verify(verify::Args),
    /// Adopt a live service set up by hand: write ecskit.toml, service.json and taskdef.json
    /// that reproduce it, so that a deploy right after changes nothing.
    Init(init::Args),
    /// Remove what the stack file's deploy created, in reverse order (asks unless --yes).
    Destroy(destroy::Args),
    /// The README's first command: local stack up, a small image built from scratch, examples/
    /// deployed to it, and how to look at what was created.
    Demo(demo::Args),
    /// Wall time and AWS API calls of deploys against the local stack, beside the aws CLI way.
    Bench(bench::Args),
    /// Shell completions (bash, zsh, fish) and man pages of every binary, into
    /// target/dist-extra (what the release archives include).
    Man {
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// The release: `plan` checks cargo-dist's plan without building; `local` builds this
    /// machine's archives.
    Release {
        #[command(subcommand)]
        action: release::Action,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Deploy(args) => return deploy::main(args),
        Task::Destroy(args) => return destroy::main(args),
        Task::Verify(args) => return verify::main(args),
        Task::Init(args) => return init::main(args),
        Task::Demo(args) => return demo::main(args),
        Task::Bench(args) => return bench::main(args),
        Task::Local { action } => local::run(action),
        Task::Ci => ci::ci(),
        Task::Man { out } => release::man(out),
        Task::Release { action } => release::run(action),
        Task::Test { args } => ci::test(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::from(1)
        }
    }
}
