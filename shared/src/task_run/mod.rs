//! task-run: run one task of a task definition, on ECS or on the local Docker Engine, and wait
//! until it stops; or stop a task it started.
//!
//! - [`flags`]: the flags and their check (pure, before any call);
//! - [`run`]: one task (or `--count` tasks) on ECS: RunTask with the overrides, the wait, the
//!   container lines (`--logs`), and exit 3 naming the essential container that failed;
//! - [`local`]: the same task on the local Docker Engine (`--local`);
//! - [`stop`]: `--stop TASK --reason TEXT`, only for a task tagged managed-by=ecskit.
//!
//! The task definition lookup, the cluster, the network, the stopped-task report and the log
//! reader are service-run's too: they are in [`crate::ecs`].

pub mod flags;
pub mod local;
pub mod run;
pub mod stop;

use crate::Report;
use crate::aws::Ctx;
pub use crate::ecs::{Deps, Timing};
use crate::error::Result;

pub use flags::{Args, parse_command, validate};

crate::step_flags!(Args);

/// The task-run step.
pub struct TaskRun;

impl crate::step::Step for TaskRun {
    const STEP: ecskit_contract::Step = ecskit_contract::Step::TaskRun;
    type Args = Args;
    type Checked = ();

    fn check(args: &Args) -> Result<()> {
        validate(args)
    }

    async fn execute(ctx: &Ctx, args: &Args, _: ()) -> Result<Report> {
        run_with(&deps_for(ctx.clone(), args), args).await
    }
}

/// The dependencies of a run with these flags: the waiting times and log lines they give.
pub fn deps_for(ctx: Ctx, args: &Args) -> Deps {
    Deps::for_run(
        ctx,
        args.poll_interval,
        args.timeout,
        args.no_progress_timeout,
        args.log_lines,
    )
}

/// The step with its dependencies given: [`TaskRun`] calls it with [`Deps`] built from the
/// context and the flags, the recorded-response tests with an ECS client of their own.
pub async fn run_with(deps: &Deps, args: &Args) -> Result<Report> {
    if let Some(task) = &args.stop {
        return stop::stop(deps, &args.cluster, task, args.reason.as_deref()).await;
    }
    if args.local {
        return local::run(deps, args).await;
    }
    let td_ref = args.task_definition.as_deref().unwrap_or_default();
    // A chain's dry run plans a before task of the revision taskdef-register's dry run would
    // register, as service-run's does; a Fargate or network-flagged run implies awsvpc.
    let awsvpc_guess = args.network_flags().any() || run::fargate(args);
    let td = crate::ecs::taskdef::resolve_planned(deps, td_ref, awsvpc_guess).await?;
    run::run(deps, args, &td).await
}
