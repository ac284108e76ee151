//! The IAM-propagation retry of CreateService and RunTask, and the client token that makes a
//! retried create the same request.

use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use sha2::{Digest, Sha256};

use super::Deps;
use crate::error::{Result, from_sdk};

/// How long "ECS cannot assume the role" is retried on CreateService and RunTask.
pub const IAM_RETRY_LIMIT: Duration = Duration::from_secs(120);

/// A client token derived from the create request: a retried create (by the SDK, or a re-run
/// that has not seen the first create yet) is the same request to ECS, never a second service.
pub fn client_token(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..32].to_string()
}

/// Runs `call` again while ECS answers that it cannot assume a role, with backoff, for up to
/// [`IAM_RETRY_LIMIT`]: a role made seconds ago is not yet visible everywhere.
pub async fn with_iam_retry<T, E, R, F, Fut>(deps: &Deps, what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let start = deps.clock.elapsed();
    let mut delay = Duration::from_secs(5);
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let message = error_message(&e);
                let waited = deps.clock.elapsed() - start;
                if !is_role_not_assumable(&message) || waited + delay > IAM_RETRY_LIMIT {
                    let err = from_sdk(what.to_string(), e);
                    return Err(if is_role_not_assumable(&message) {
                        err.hint("the role is still not assumable after 2 minutes: check its trust policy (ecs-tasks.amazonaws.com) and that the caller may iam:PassRole it")
                    } else {
                        err
                    });
                }
                deps.progress.println(format!(
                    "ECS cannot assume the role yet (IAM propagation, {}s so far): retrying {what} in {}s ({message})",
                    waited.as_secs(),
                    delay.as_secs()
                ));
                deps.clock.sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Whether an ECS answer means "ECS cannot assume this role (yet)". Right after a role is made,
/// IAM has not propagated it; the same words after the grace period mean a wrong trust policy.
pub fn is_role_not_assumable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("unable to assume")
        || m.contains("cannot assume")
        || m.contains("not authorized to perform: sts:assumerole")
        || m.contains("role is not assumable")
}

/// An SDK error's code and message, for deciding whether to retry.
pub(crate) fn error_message<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    match err.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or("no message")
        ),
        None => String::new(),
    }
}
