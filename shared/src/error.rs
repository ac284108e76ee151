//! The one error type. Its variant decides the exit code, so the contract
//! (0 success, 1 AWS or Docker failure, 2 bad input, 3 a deployment that ran but failed,
//! 130 interrupted)
//! is kept in exactly one place: [`Error::exit_code`].

use std::fmt::{Debug, Display};

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input or usage: nothing was changed. Exit 2.
    #[error("{message}")]
    Input {
        message: String,
        hint: Option<String>,
        /// What `--output json` prints beside the error (a failed verify's checks).
        details: Option<Box<serde_json::Value>>,
    },
    /// An AWS call failed. Exit 1.
    #[error("{context}: {detail}")]
    Aws {
        context: String,
        /// The AWS error code (`NoSuchEntity`, `AccessDenied`, ...), when the service sent one.
        code: Option<String>,
        detail: String,
        hint: Option<String>,
        /// What the run had already done and made when the call failed (a task definition
        /// registered before its `--prune` failed): its outputs, printed as a success's are.
        known: Option<Box<crate::Report>>,
    },
    /// The Docker Engine (or a registry behind it) failed. Exit 1.
    #[error("{context}: {detail}")]
    Docker {
        context: String,
        detail: String,
        hint: Option<String>,
    },
    /// A local I/O failure that is not the user's input (a temp file, a socket). Exit 1.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
        hint: Option<String>,
    },
    /// A deployment ran but failed (rollback, failing task). Exit 3.
    #[error("{message}")]
    Deployment {
        message: String,
        hint: Option<String>,
        /// What `--output json` prints beside the error (the stopped tasks, their logs); boxed,
        /// as `known` is, to keep every `Result` small.
        details: Option<Box<serde_json::Value>>,
        /// What is known of the run that failed (its outputs: task ARN, exit codes, rollout
        /// state; and what it changed), printed in every output format: a CI job that goes
        /// on `if: failure()` reads them as it reads a success's.
        known: Option<Box<crate::Report>>,
    },
    /// A signal (Ctrl-C, SIGTERM, SIGHUP) stopped the run, which stopped what it started. Exit 130.
    #[error("interrupted by {signal}")]
    Interrupted {
        signal: String,
        hint: Option<String>,
    },
}

/// Adds an output to what is known of a failed run, starting that report when there is none.
fn add_output(
    known: &mut Option<Box<crate::Report>>,
    name: &str,
    value: impl Into<serde_json::Value>,
) {
    let report = known
        .take()
        .map(|b| *b)
        .unwrap_or_else(|| crate::Report::new(Vec::new(), false, Default::default()));
    *known = Some(Box::new(report.output(name, value)));
}

impl Error {
    /// Bad input: say what is wrong, naming the flag, field or file.
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input {
            message: message.into(),
            hint: None,
            details: None,
        }
    }

    /// Several input problems at once, one per line (validation reports all it finds).
    pub fn inputs(problems: Vec<String>) -> Self {
        let message = if problems.len() == 1 {
            problems.into_iter().next().unwrap_or_default()
        } else {
            let mut m = format!("{} problems in the input:", problems.len());
            for p in problems {
                m.push_str("\n  - ");
                m.push_str(&p);
            }
            m
        };
        Error::input(message)
    }

    pub fn docker(context: impl Into<String>, detail: impl Display) -> Self {
        Error::Docker {
            context: context.into(),
            detail: detail.to_string(),
            hint: None,
        }
    }

    pub fn deployment(message: impl Into<String>) -> Self {
        Error::Deployment {
            message: message.into(),
            hint: None,
            details: None,
            known: None,
        }
    }

    /// An output of the failed run (`TASK_ARN`, `EXIT_CODE` ...), printed as a success's
    /// outputs are. Only a run that ran but failed (exit 3) has outputs; other errors are
    /// returned unchanged (see [`Error::with_made_output`]).
    pub fn with_output(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        if let Error::Deployment { known, .. } = &mut self {
            add_output(known, name, value);
        }
        self
    }

    /// An output naming what the run made before an AWS call failed (the task definition a
    /// `--prune` that failed had registered): printed as a success's outputs are, so a CI job on
    /// failure knows what now exists. Only where the step chose so; for a run that ran but
    /// failed, the same as [`Error::with_output`].
    pub fn with_made_output(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        match &mut self {
            Error::Aws { known, .. } | Error::Deployment { known, .. } => {
                add_output(known, name, value)
            }
            _ => {}
        }
        self
    }

    /// Every output of `report` as [`Error::with_output`] (a report the failed run had built).
    pub fn with_outputs_of(self, report: &crate::Report) -> Self {
        report
            .outputs()
            .iter()
            .fold(self, |e, (name, value)| e.with_output(name, value.clone()))
    }

    /// Puts the failed run's outputs into `report` (the context's: what was done, the calls),
    /// so that what is printed says what changed before the failure too.
    pub fn in_report(mut self, report: crate::Report) -> Self {
        // An AWS failure says what was made only when the step attached an output to it.
        let slot = match &mut self {
            Error::Deployment { known, .. } => Some(known),
            Error::Aws { known, .. } if known.is_some() => Some(known),
            _ => None,
        };
        if let Some(known) = slot {
            let outputs = known
                .take()
                .map(|b| b.outputs().to_vec())
                .unwrap_or_default();
            let merged = outputs
                .into_iter()
                .fold(report, |r, (name, value)| r.output(&name, value));
            *known = Some(Box::new(merged));
        }
        self
    }

    /// What is known of a run that ran but failed, when it said.
    pub fn known(&self) -> Option<&crate::Report> {
        match self {
            Error::Deployment { known, .. } | Error::Aws { known, .. } => known.as_deref(),
            _ => None,
        }
    }

    /// Attaches what `--output json` shows of a failed deployment (`failures`, ...) or of bad
    /// input found by verify (`checks`). Other errors are returned unchanged.
    pub fn with_details(mut self, value: serde_json::Value) -> Self {
        if let Error::Deployment { details, .. } | Error::Input { details, .. } = &mut self {
            *details = Some(Box::new(value));
        }
        self
    }

    /// The details of a failed deployment or verify, if any.
    pub fn details(&self) -> Option<&serde_json::Value> {
        match self {
            Error::Deployment { details, .. } | Error::Input { details, .. } => details.as_deref(),
            _ => None,
        }
    }

    /// The run was stopped by this signal (`SIGINT`, ...).
    pub fn interrupted(signal: impl Into<String>) -> Self {
        Error::Interrupted {
            signal: signal.into(),
            hint: None,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
            hint: None,
        }
    }

    /// An AWS failure that did not come from an SDK error (an answer missing a field, say).
    pub fn aws(context: impl Into<String>, detail: impl Display) -> Self {
        Error::Aws {
            context: context.into(),
            code: None,
            detail: detail.to_string(),
            hint: None,
            known: None,
        }
    }

    /// Adds (or replaces) the hint printed under the error: what to do about it.
    pub fn hint(mut self, text: impl Into<String>) -> Self {
        let text = Some(text.into());
        match &mut self {
            Error::Input { hint, .. }
            | Error::Aws { hint, .. }
            | Error::Docker { hint, .. }
            | Error::Io { hint, .. }
            | Error::Deployment { hint, .. }
            | Error::Interrupted { hint, .. } => *hint = text,
        }
        self
    }

    pub fn hint_text(&self) -> Option<&str> {
        match self {
            Error::Input { hint, .. }
            | Error::Aws { hint, .. }
            | Error::Docker { hint, .. }
            | Error::Io { hint, .. }
            | Error::Deployment { hint, .. }
            | Error::Interrupted { hint, .. } => hint.as_deref(),
        }
    }

    /// The AWS error code, if this is an AWS error that carried one.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Whether this is an AWS error with one of these codes: the one way an AWS error code is
    /// matched once the answer is an [`Error`].
    pub fn is_aws(&self, codes: &[&str]) -> bool {
        self.aws_code().is_some_and(|c| codes.contains(&c))
    }

    /// The exit code of the contract.
    pub fn exit_code(&self) -> u8 {
        use ecskit_contract::exit;
        match self {
            Error::Input { .. } => exit::INPUT,
            Error::Aws { .. } | Error::Docker { .. } | Error::Io { .. } => exit::FAILURE,
            Error::Deployment { .. } => exit::DEPLOYMENT,
            Error::Interrupted { .. } => exit::INTERRUPTED,
        }
    }

    /// The text printed on stderr: the message, its cause, and the hint.
    pub fn render(&self) -> String {
        let mut out = format!("error: {self}");
        if let Some(h) = self.hint_text() {
            out.push_str("\n  hint: ");
            out.push_str(h);
        }
        out
    }
}

/// Turns an SDK error into an [`Error::Aws`] with context, the service's code and message,
/// and a hint for the failures that have an obvious fix.
pub trait AwsContext<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
}

impl<T, E, R> AwsContext<T> for std::result::Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|err| from_sdk(what.into(), err))
    }
}

pub(crate) fn from_sdk<E, R>(context: String, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let (code, detail, hint) = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().map(str::to_string);
            let message = e.message().unwrap_or("no message").to_string();
            let detail = match &code {
                Some(c) => format!("{c}: {message}"),
                None => message,
            };
            let hint = match code.as_deref() {
                Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation") => Some(
                    "the credentials in use lack this permission: check the caller's IAM policy"
                        .to_string(),
                ),
                Some(
                    "ExpiredToken"
                    | "ExpiredTokenException"
                    | "InvalidClientTokenId"
                    | "UnrecognizedClientException",
                ) => Some("the credentials are invalid or expired: refresh them".to_string()),
                Some("Throttling" | "ThrottlingException" | "SlowDown") => Some(
                    "AWS is throttling this account: retry later or raise --retry-attempts"
                        .to_string(),
                ),
                _ => None,
            };
            (code, detail, hint)
        }
        _ => {
            let detail = flatten(&err);
            // The SDK loads credentials lazily, on the first call, so a missing credential
            // surfaces as a dispatch failure: say which of the two it is.
            let hint = if detail.contains("credentials") {
                Some("no usable AWS credentials: set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run in an environment with a role".to_string())
            } else if matches!(
                err,
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
            ) {
                Some("the AWS endpoint could not be reached: check the network, --region and --endpoint-url (AWS_ENDPOINT_URL)".to_string())
            } else {
                None
            };
            (None, detail, hint)
        }
    };
    Error::Aws {
        context,
        code,
        detail,
        hint,
        known: None,
    }
}

/// The service's error code of an SDK error, for the places that decide before turning the
/// answer into an [`Error`] (retry loops, "not found means absent"). Typed checks such as
/// `is_no_such_entity_exception()` are not used: one spelling for every service.
pub fn sdk_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// Whether an SDK error carries one of these service error codes.
pub fn sdk_is<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, codes: &[&str]) -> bool {
    sdk_code(err).is_some_and(|c| codes.contains(&c))
}

/// The whole cause chain on one line, without Rust debug dumps.
pub fn flatten(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Error::input("x").exit_code(), 2);
        assert_eq!(Error::aws("x", "y").exit_code(), 1);
        assert_eq!(Error::docker("x", "y").exit_code(), 1);
        assert_eq!(Error::deployment("x").exit_code(), 3);
        assert_eq!(Error::interrupted("SIGINT").exit_code(), 130);
    }

    #[test]
    fn render_has_message_and_hint() {
        let e = Error::input("--bucket 'A_B' is not a valid bucket name").hint("use lower case");
        assert_eq!(
            e.render(),
            "error: --bucket 'A_B' is not a valid bucket name\n  hint: use lower case"
        );
    }

    #[test]
    fn several_problems_are_listed() {
        let e = Error::inputs(vec!["a".into(), "b".into()]);
        assert_eq!(e.to_string(), "2 problems in the input:\n  - a\n  - b");
    }
}
