//! The chain: the six binaries run from one stack file, the way a shell script would run them.
//! `deploy`, `destroy`, `demo` and `bench` all stand on it.
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
//! - [`flags`]: THE mapping from the stack file to each binary's flags ([`flags::step_args`]), so
//!   that a renamed flag is a one-line change;
//! - [`runner`]: the processes, their call logs, the stages ([`runner::run_chain`]);
//! - [`outputs`]: what the binaries print, and the outputs kept between runs;
//! - [`summary`]: the table (or JSON) a run ends with.
//!
//! The steps themselves, their binary names, stages and outputs, are the contract's
//! ([`ecskit_contract::Step`]), as are the env codec and the mutating-call rule.

pub mod flags;
pub mod outputs;
pub mod runner;
pub mod summary;

use std::path::Path;

pub use ecskit_contract::Step;
pub use flags::{Mode, stack_steps, step_args};
pub use outputs::{load_outputs, outputs_file, save_outputs};
pub use runner::{Calls, Runner, StepResult, build, exit_code, run_chain, target_dir};
pub use summary::{Format, Summary};

use crate::stack::{self, Stack};
use crate::util::Result;

/// Reads and checks the stack file; every problem is listed, and a bad file is exit 2.
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

/// The steps to run: all of the stack's, or `--only` these, or `--from` this one on.
pub fn select(available: &[Step], only: &[Step], from: Option<Step>) -> Result<Vec<Step>> {
    for step in only.iter().chain(from.iter()) {
        if !available.contains(step) {
            return Err(format!(
                "{} is not part of this stack ({}): add its section to the stack file",
                step.binary(),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn stack() -> Stack {
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
}
