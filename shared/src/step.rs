//! The one shape of every step.
//!
//! A step is four moves, in this order, and only the last two talk to AWS or Docker:
//!
//! 1. **check** the input: pure, no call, every problem at once (exit 2 with nothing changed);
//! 2. **build the context** ([`Ctx`]): clients, the call log, the dry-run gate, progress, clock;
//! 3. **execute** through the gate ([`Ctx::mutate`] / [`Ctx::apply`]): no mutating call in a dry
//!    run, and every check that can refuse has already run;
//! 4. **report** ([`crate::Report`]), printed by [`crate::cli::run_step`] in the chosen format.
//!
//! [`crate::cli::run_step`] drives a binary through these moves, and [`run`] is every step's one
//! test entry point: a test builds a context (against the emulator, or around recorded
//! responses and a virtual clock) and calls `step::run::<RoleCreate>(&ctx, &args)`.

use std::future::Future;

use crate::aws::{AwsArgs, Ctx};
use crate::cli::Common;
use crate::{Report, Result};

/// The flags every step's flags struct holds (flattened last, so their headings come last):
/// `common` (Output) and `aws` (AWS). [`crate::step_flags!`] implements it.
pub trait Flags {
    fn common(&self) -> &Common;
    fn aws(&self) -> &AwsArgs;
}

/// Implements [`Flags`] for a flags struct with `common` and `aws` fields.
#[macro_export]
macro_rules! step_flags {
    ($args:ty) => {
        impl $crate::step::Flags for $args {
            fn common(&self) -> &$crate::cli::Common {
                &self.common
            }
            fn aws(&self) -> &$crate::aws::AwsArgs {
                &self.aws
            }
        }
    };
}

/// A step of the chain: one binary, one module named after it.
pub trait Step {
    /// The binary, as the contract names it.
    const STEP: ecskit_contract::Step;
    /// The flags, as clap parses them (each also reads its `ECSKIT_*` variable).
    type Args: clap::Parser + Flags;
    /// What [`Step::check`] learned from the input (resolved names, parsed files ...).
    type Checked;

    /// Checks all input without any call. Every problem is reported at once, as exit 2.
    fn check(args: &Self::Args) -> Result<Self::Checked>;

    /// Does the work, every mutating call through the context's gate.
    fn execute(
        ctx: &Ctx,
        args: &Self::Args,
        checked: Self::Checked,
    ) -> impl Future<Output = Result<Report>>;
}

/// Check, then execute with the given context: what a binary does after building its context,
/// and the one entry point of every step's tests.
/// A run that ran but failed keeps what the context knows (what was done, the calls) beside
/// its own outputs, for the output formats to print.
pub async fn run<S: Step>(ctx: &Ctx, args: &S::Args) -> Result<Report> {
    let checked = S::check(args)?;
    execute::<S>(ctx, args, checked).await
}

async fn execute<S: Step>(ctx: &Ctx, args: &S::Args, checked: S::Checked) -> Result<Report> {
    S::execute(ctx, args, checked)
        .await
        .map_err(|e| e.in_report(ctx.report()))
}

/// Check, then build the context from the flags and execute: what a binary does, for tests that
/// run a step exactly as its binary would.
pub async fn run_from_flags<S: Step>(args: &S::Args) -> Result<Report> {
    let checked = S::check(args)?;
    let common = args.common();
    let ctx = Ctx::new(args.aws(), common.dry_run)
        .await
        .with_progress(crate::progress::Progress::new(common.quiet));
    execute::<S>(&ctx, args, checked).await
}
