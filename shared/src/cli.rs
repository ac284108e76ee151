//! The common flags and the one `main` of every binary.
//!
//! A binary is three lines: it names its step, and [`run_step`] does the rest: parse flags
//! (usage errors exit 2 through clap), set up logging on stderr, check the input, run the step
//! on a Tokio runtime, print the [`Report`] on stdout in the chosen format, or print the error
//! with its hint on stderr and exit with the error's code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::FromArgMatches;
use tracing_subscriber::EnvFilter;

use crate::output::OutputFormat;
use crate::step::Step;
use crate::{Report, Result};

/// The flags every binary has.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Output")]
pub struct Common {
    /// How to print the results on stdout.
    #[arg(long, value_enum, env = "ECSKIT_OUTPUT", default_value_t = OutputFormat::Text, global = true)]
    pub output: OutputFormat,
    /// Show the plan and make no mutating call.
    #[arg(long, env = "ECSKIT_DRY_RUN", global = true)]
    pub dry_run: bool,
    /// More detail on stderr (-v, -vv, -vvv). Secrets are never printed.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The `main` of every binary: parse, check (before the AWS configuration is even loaded),
/// build the context, execute, print. See [`crate::step`].
pub fn run_step<S: Step>() -> ExitCode {
    run_step_from::<S>(std::env::args_os().collect())
}

/// [`run_step`] with the command line given, its first word the step's name: the multicall
/// `ecskit` binary (`ecskit role-create ...`, or a link named `role-create`) passes what follows
/// its own name, so that help, usage and errors name the step exactly as its own binary does.
pub fn run_step_from<S: Step>(argv: Vec<std::ffi::OsString>) -> ExitCode {
    if let Some(code) = generate_docs::<S::Args>() {
        return code;
    }
    let args = match S::Args::from_arg_matches(&command::<S::Args>().get_matches_from(argv)) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    let common = crate::step::Flags::common(&args).clone();
    init_logging(common.verbose, common.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(ecskit_contract::exit::FAILURE);
        }
    };
    let result = runtime.block_on(crate::step::run_from_flags::<S>(&args));
    finish(result, common.output)
}

/// A binary's command line as it parses, helps and documents itself: `--help`, the completions
/// and the man page name the variable each flag reads but never its value. A value in the
/// environment may be a secret (the contract says none is ever printed), and help that
/// changes with the environment could not be pinned by a snapshot.
pub fn command<A: clap::CommandFactory>() -> clap::Command {
    A::command().mut_args(|a| a.hide_env_values(true))
}

/// Writes the binary's shell completions (bash, zsh, fish) and man page into the directory
/// `ECSKIT_GENERATE_DOCS` names, then exits. `cargo xtask man` runs every binary this way: the
/// completions and pages come from the very flag definitions the binary parses with, written
/// once here for all eight, and the xtask needs no link to this library.
fn generate_docs<A: clap::CommandFactory>() -> Option<ExitCode> {
    let dir = std::env::var_os("ECSKIT_GENERATE_DOCS").filter(|d| !d.is_empty())?;
    let dir = std::path::PathBuf::from(dir);
    let write = || -> std::io::Result<()> {
        let mut cmd = command::<A>();
        let name = cmd.get_name().to_string();
        let completions = dir.join("completions");
        std::fs::create_dir_all(&completions)?;
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            clap_complete::generate_to(shell, &mut cmd, &name, &completions)?;
        }
        let man = dir.join("man");
        std::fs::create_dir_all(&man)?;
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        std::fs::write(man.join(format!("{name}.1")), page)
    };
    Some(match write() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: writing completions and man page to {}: {e}",
                dir.display()
            );
            ExitCode::from(ecskit_contract::exit::FAILURE)
        }
    })
}

/// Prints a step's result and turns it into the exit code.
pub fn finish(result: Result<Report>, format: OutputFormat) -> ExitCode {
    match result {
        Ok(report) => {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (`| head`) is not a failure of the step.
            let _ = stdout.write_all(report.render(format).as_bytes());
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(err) => {
            if let Some(text) = failure_output(&err, format) {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            eprintln!("{}", err.render());
            ExitCode::from(err.exit_code())
        }
    }
}

/// What stdout says of a failure, in the chosen format: a run that ran but failed (exit 3)
/// prints its outputs as a success would (task ARN, exit codes, rollout state) with
/// `FAILURE`, the reason, so that a CI job reading `--output env` or `github` on
/// `if: failure()` has them, as does an AWS failure after the step made something (a task
/// definition registered before its `--prune` failed, a service created or updated before its
/// watch failed: exit 1); `json` also carries the error,
/// the step's exit status and the details (a failed verify's checks, stopped tasks and their
/// last lines). Other failures print nothing on stdout, except json's details when there are
/// some.
pub fn failure_output(err: &crate::Error, format: OutputFormat) -> Option<String> {
    let known = err.known().map(|k| {
        k.clone()
            .output(ecskit_contract::outputs::FAILURE, err.to_string())
    });
    match format {
        OutputFormat::Json => {
            if known.is_none() && err.details().is_none() {
                return None;
            }
            let mut obj = serde_json::Map::new();
            obj.insert("error".into(), serde_json::json!(err.to_string()));
            obj.insert("exit_code".into(), serde_json::json!(err.exit_code()));
            if let Some(serde_json::Value::Object(map)) = known
                .as_ref()
                .and_then(|k| serde_json::from_str(&k.render(OutputFormat::Json)).ok())
            {
                obj.extend(map);
            }
            if let Some(serde_json::Value::Object(map)) = err.details() {
                obj.extend(map.clone());
            }
            // `exit_code` is a task's container code when the run had one (as on success);
            // the step's own exit status is always here.
            obj.insert("exit_status".into(), serde_json::json!(err.exit_code()));
            Some(format!(
                "{}\n",
                serde_json::to_string_pretty(&serde_json::Value::Object(obj)).unwrap_or_default()
            ))
        }
        _ => known.map(|k| k.render(format)),
    }
}

/// Logging on stderr. `RUST_LOG`, when set, chooses what is shown. Otherwise the verbosity
/// raises the level of ecskit's own messages; at `-vvv` the AWS SDK's request lifecycle is
/// shown too. Whatever either says, [`never_secret`] keeps out the levels of the SDK, HTTP,
/// signing and Docker client crates that print request and response headers and bodies
/// (where ECR tokens, registry passwords and signatures travel).
pub fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::prelude::*;

    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::new(v),
        _ => {
            let own = match (quiet, verbose) {
                (true, _) => "warn",
                (false, 0) => "info",
                (false, 1) => "debug",
                (false, _) => "trace",
            };
            // The SDK's own warnings (a credential provider that failed, say) come with Rust
            // debug dumps; the error they lead to is reported by us, with a hint. Below -vvv
            // they are kept quiet.
            let sdk = if verbose >= 3 { "debug" } else { "error" };
            EnvFilter::new(format!(
                "warn,ecskit={own},xtask={own},aws_config={sdk},aws_smithy_runtime={sdk},aws_smithy_runtime_api={sdk},aws_sigv4=warn,hyper=warn,hyper_util=warn,bollard=warn"
            ))
        }
    };
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .without_time()
        .with_target(verbose >= 2)
        .with_level(verbose >= 1)
        .with_filter(tracing_subscriber::filter::filter_fn(never_secret));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
}

/// The crates (tracing targets) whose events above a level print headers or bodies, with the
/// most verbose level of theirs that is still shown. Found in their sources:
/// - `aws_smithy_runtime::client::orchestrator` (and `::http`): at trace, every request and
///   response in full ("transmitting request", "received response from service", "read HTTP
///   response body"): GetAuthorizationToken's answer holds the ECR token;
/// - `aws_sigv4`: at trace, the request being signed with its headers, and the string to sign;
/// - `aws_runtime`, `aws_smithy_http`, `aws_smithy_http_client`: at trace, bodies being
///   signed or streamed, connector details;
/// - `aws_config`: at trace, a credential_process command line, unredacted;
/// - `hyper`, `hyper_util`, `h2`: at debug and below, headers on the wire;
/// - `bollard`: at trace, request bodies sent to the Docker Engine (registry logins).
const SECRET_BEARING: &[(&str, tracing::Level)] = &[
    (
        "aws_smithy_runtime::client::orchestrator",
        tracing::Level::DEBUG,
    ),
    ("aws_sigv4", tracing::Level::DEBUG),
    ("aws_runtime", tracing::Level::DEBUG),
    ("aws_smithy_http", tracing::Level::DEBUG),
    ("aws_smithy_http_client", tracing::Level::DEBUG),
    ("aws_config", tracing::Level::DEBUG),
    ("hyper", tracing::Level::INFO),
    ("hyper_util", tracing::Level::INFO),
    ("h2", tracing::Level::INFO),
    ("bollard", tracing::Level::INFO),
];

/// Whether an event may be printed: not when it comes from a [`SECRET_BEARING`] target at a
/// level more verbose than that target's limit.
///
/// This is a filter of its own on the output layer rather than directives appended to the
/// `RUST_LOG` filter: a directive can be outranked inside that filter (a span-qualified one
/// such as `[invoke]=trace` enables every event in the SDK's `invoke` span whatever the
/// target directives say), while this filter sees every event last and has no such exception.
pub fn never_secret(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    !SECRET_BEARING.iter().any(|(prefix, max)| {
        let inside = target == *prefix
            || target
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with("::"));
        inside && meta.level() > max
    })
}

/// Parses `KEY=VALUE` (tags, environment overrides).
pub fn key_value(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_needs_a_key() {
        assert_eq!(key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(key_value("=b").is_err());
        assert!(key_value("ab").is_err());
    }
}
