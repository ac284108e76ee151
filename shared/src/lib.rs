//! ecskit: the one library behind the ecskit binaries.
//!
//! Every binary in `bins/` is a thin `main` that parses its flags and calls one `run` function
//! here. The pieces that every step shares are written once:
//!
//! - [`cli`]: the common flags (`--output`, `--dry-run`, `-v`/`-q`), the AWS flags, and the one
//!   `main` that turns a step's result into stdout, stderr and an exit code;
//! - [`aws`]: the one way to build AWS clients, the call log that counts (mutating) API calls,
//!   and the dry-run gate that every mutating call passes through;
//! - [`error`]: the one error type, whose kind decides the exit code;
//! - [`output`]: the one result type, printed as `text`, `json`, `env` or `github`;
//! - [`progress`]: the one progress helper (bars on a terminal, plain lines otherwise);
//! - [`secret`]: a wrapper that never prints what it holds;
//! - [`docker`]: the Docker Engine (image-push's push; a task run on the local engine).
//!
//! Each step owns one module named after what the user calls it: [`image`] (image-push),
//! [`iam`] (role-create, instance-profile), [`config`] (config-upload), [`taskdef`]
//! (taskdef-register), [`service_run`] (service-run), [`task_run`] (task-run) and
//! [`capacity_create`] (capacity-create); what they use on ECS is in [`ecs`].

pub mod aws;
pub mod cli;
pub mod clock;
pub mod docker;
pub mod ecr;
pub mod ecs;
pub mod error;
pub mod output;
pub mod progress;
pub mod secret;
pub mod step;
pub mod turns;

/// The name validators of the contract (shared with the xtask's stack file).
pub use ecskit_contract::validate;

pub mod iam;

pub mod capacity_create;
pub mod config_upload;
pub mod image_push;
pub mod instance_profile;
pub mod role_create;
pub mod service_run;
pub mod task_run;
pub mod taskdef_register;

pub mod verify;

pub use error::{Error, Result};
pub use output::Report;
