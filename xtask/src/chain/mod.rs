//! The chain: the six binaries run from one stack file, the way a shell script would run them.
//! `deploy`, `destroy`, `demo` and `bench` all stand on it.
//!
//! The binaries are built once and run as processes, each with `--output env`. Their
//! `ECSKIT_*` lines are parsed and put into the environment of the steps that come after, which
//! is the same contract a user's `eval "$(image-push ... --output env)"` relies on. Steps that do
//! not depend on each other run at the same time, up to `--jobs` processes:
//!
//! ```text
//! image-push | role-create | instance-profile | config-upload     (shared by services when equal)
//!   -> taskdef-register     (reads ECSKIT_IMAGE_URI, ECSKIT_TASK_ROLE_ARN, ...)   one per service
//!     -> task-run           (the service's `[before]` task, when it has one)      one per service
//!       -> service-run      (reads ECSKIT_TASK_DEFINITION_ARN)                    one per service
//! ```
//!
//! Every process gets its own `ECSKIT_CALL_LOG` file, where the binaries append one
//! `Service.Operation` line per AWS call: that is how the summary (and the benchmark) counts the
//! calls, and the mutating ones, of processes it cannot look into.
//!
//! - [`plan`]: the units of a run (a step of one or more services) and what waits for what;
//! - [`flags`]: THE mapping from the stack file to each binary's flags ([`flags::step_args`]), so
//!   that a renamed flag is a one-line change;
//! - [`runner`]: the processes, their call logs, running the units ([`runner::run_chain`]);
//! - [`outputs`]: what the binaries print, and the outputs kept between runs;
//! - [`summary`]: the table (or JSON) a run ends with.
//!
//! The steps themselves, their binary names, stages and outputs, are the contract's
//! ([`ecskit_contract::Step`]), as are the env codec and the mutating-call rule.

pub mod flags;
pub mod outputs;
pub mod plan;
pub mod runner;
pub mod summary;

use std::path::Path;

pub use ecskit_contract::Step;
pub use flags::{Mode, stack_steps, step_args};
pub use outputs::{load_outputs, outputs_file, save_outputs};
pub use plan::{Selection, Unit};
pub use runner::{Calls, Runner, StepResult, build, exit_code, run_chain, run_units, target_dir};
pub use summary::{Format, Summary};

use crate::stack::{self, Stacks};

/// Reads and checks the stack file; every problem is listed, and a bad file is exit 2.
pub fn load_stack(path: &Path) -> std::result::Result<Stacks, (String, u8)> {
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

/// How many steps run at once by default. Each process makes a few calls a second at most,
/// and AWS's per-account token buckets for the calls a deploy makes most (IAM's writes, ECS's
/// RegisterTaskDefinition and CreateService/UpdateService) refill at a few to tens of calls a
/// second: eight processes stay within them, so a burst is absorbed by the buckets instead of
/// spent in retries, while twenty services still deploy in a few rounds.
pub const DEFAULT_JOBS: usize = 8;

#[cfg(test)]
pub(crate) mod tests {
    pub(crate) fn stack() -> crate::stack::Stack {
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
        let mut s = crate::stack::parse(text, &d).unwrap().services.remove(0);
        s.path = d.join("ecskit.toml");
        s
    }
}
