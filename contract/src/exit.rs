//! The exit codes of every binary and of `cargo xtask deploy`.

/// Success, including "nothing to change".
pub const SUCCESS: u8 = 0;
/// An AWS or Docker failure (or a local I/O failure that is not the user's input).
pub const FAILURE: u8 = 1;
/// Bad input or usage. Nothing was changed: every check runs before the first mutating call.
pub const INPUT: u8 = 2;
/// A deployment (service-run) or task (task-run) ran but failed: a circuit-breaker rollback, an
/// essential container that exited non-zero (task-run names it and its code).
pub const DEPLOYMENT: u8 = 3;
/// The run was interrupted (Ctrl-C, SIGTERM, SIGHUP) and stopped what it started: the user's
/// decision, not a failure of the task. 130 is what shells report for a SIGINT (128 + 2).
pub const INTERRUPTED: u8 = 130;
