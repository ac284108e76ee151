//! What service-run and task-run both use on ECS, written once: the context they run with
//! ([`Deps`]), the task definition lookup ([`taskdef`]), the cluster ([`cluster`]), the awsvpc
//! network and the default-VPC fallback ([`network`]), the IAM-propagation retry ([`retry`]),
//! the launch type or capacity providers ([`placement`]), the report of a stopped task
//! ([`stopped`]), the containers' CloudWatch Logs ([`logs`]) and the waiting flags.

pub mod cluster;
pub mod logs;
pub mod network;
pub mod placement;
pub mod retry;
pub mod stopped;
pub mod taskdef;

use std::time::Duration;

use crate::aws::Ctx;
pub use crate::aws::MANAGED_BY;
pub use crate::clock::Clock;
use crate::progress::Progress;

/// What a step on ECS runs with. Each step builds it from its flags; tests build it around
/// recorded clients and a virtual clock.
#[derive(Clone)]
pub struct Deps {
    pub ctx: Ctx,
    pub ecs: aws_sdk_ecs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub clock: Clock,
    pub progress: Progress,
    pub timing: Timing,
    /// Lines of a failing container's log in the failure report (`--log-lines`).
    pub log_lines: u32,
}

/// The waiting loops' times.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub poll: Duration,
    pub timeout: Duration,
    pub no_progress: Duration,
    /// How long a role that ECS cannot assume is put down to IAM propagation.
    pub iam_grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: Duration::from_secs(6),
            timeout: Duration::from_secs(30 * 60),
            no_progress: Duration::from_secs(10 * 60),
            iam_grace: Duration::from_secs(120),
        }
    }
}

/// The waiting flags' problems: each of `--timeout`, `--no-progress-timeout` and
/// `--poll-interval` must be positive.
pub fn check_waits(timeout: Duration, no_progress: Duration, poll: Duration) -> Vec<String> {
    [
        ("--timeout", timeout),
        ("--no-progress-timeout", no_progress),
        ("--poll-interval", poll),
    ]
    .into_iter()
    .filter(|(_, d)| d.is_zero())
    .map(|(name, _)| format!("{name} is zero: give a positive duration such as 90s"))
    .collect()
}

pub use ecskit_contract::parse_duration;

impl Deps {
    /// The dependencies of a run: the context's clients, clock and progress, with the waiting
    /// times (`--poll-interval`, `--timeout`, `--no-progress-timeout`) and log lines its flags
    /// give.
    pub fn for_run(
        ctx: Ctx,
        poll: Duration,
        timeout: Duration,
        no_progress: Duration,
        log_lines: u32,
    ) -> Self {
        let timing = Timing {
            poll,
            timeout,
            no_progress,
            ..Timing::default()
        };
        let progress = ctx.progress.clone();
        let mut deps = Deps::new(ctx, progress, timing);
        deps.clock = deps.ctx.clock.clone();
        deps.log_lines = log_lines;
        deps
    }

    pub fn new(ctx: Ctx, progress: Progress, timing: Timing) -> Self {
        Deps {
            ecs: ctx.ecs(),
            ec2: ctx.ec2(),
            ctx,
            clock: Clock::real(),
            progress,
            timing,
            log_lines: 20,
        }
    }
}
