//! The Docker Engine, through bollard: connecting (DOCKER_HOST or the default socket),
//! inspecting a local image, pulling, asking a registry for a tag's digest, and the tag + push
//! with per-layer progress.
//!
//! This is a shared layer, not a step: image-push, verify and task-run's local run use it. So it
//! knows nothing of any step's flags; the pure helpers it needs (a reference's tag, the digest
//! in a push line, what a refusal of credentials or an outage looks like, with their tests)
//! live here with it, which is why the file is a little over 600 lines.
//!
//! Registry credentials are built into a `DockerCredentials` only at the call that needs them
//! and sent in the request's `X-Registry-Auth` header: nothing is written to a Docker config
//! file, and nothing that holds them is logged.

use std::time::Duration;

use base64::Engine as _;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as DockerError;
use bollard::models::ImageInspect;
use bollard::query_parameters::{CreateImageOptions, PushImageOptions, TagImageOptions};
use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::progress::{Progress, Task};
use crate::secret::Secret;

/// Registry credentials, held as a [`Secret`] until the engine call that needs them.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    /// The registry host the credentials are for.
    pub server: String,
}

impl Credentials {
    /// The one place the password leaves its [`Secret`]: the body of one engine request.
    fn docker(&self) -> DockerCredentials {
        DockerCredentials {
            username: Some(self.username.clone()),
            password: Some(self.password.expose().to_string()),
            serveraddress: Some(self.server.clone()),
            ..Default::default()
        }
    }
}

// --- ECR -------------------------------------------------------------------------------------

/// `https://123.dkr.ecr.us-west-2.amazonaws.com` -> `123.dkr.ecr.us-west-2.amazonaws.com`.
pub fn registry_host(proxy_endpoint: &str) -> String {
    proxy_endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// The ECR token is base64 of `USER:PASSWORD`. The error never contains the token.
pub fn decode_token(token: &str) -> Result<(String, Secret), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| "the ECR authorization token is not base64".to_string())?;
    let text = String::from_utf8(bytes)
        .map_err(|_| "the ECR authorization token is not text".to_string())?;
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() => {
            Ok((user.to_string(), Secret::new(password.to_string())))
        }
        _ => Err("the ECR authorization token is not of the form USER:PASSWORD".to_string()),
    }
}

/// An ECR login: the registry host ECR names, and the credentials its authorization token
/// holds (kept in a `Secret`; the token itself is dropped at once).
pub struct EcrLogin {
    pub host: String,
    pub username: String,
    pub password: Secret,
}

/// `ecr:GetAuthorizationToken`, decoded. `registry_ids` selects another account's registry.
pub async fn ecr_login(
    ctx: &crate::aws::Ctx,
    registry_ids: Option<Vec<String>>,
) -> Result<EcrLogin> {
    use crate::error::AwsContext;
    // `registryIds` is deprecated for permissions, but it still selects the proxy endpoint
    // (and, on emulators, the credentials) of another account's registry.
    #[allow(deprecated)]
    let token = ctx
        .ecr()
        .get_authorization_token()
        .set_registry_ids(registry_ids)
        .send()
        .await
        .context("getting an ECR authorization token")?;
    let data = token
        .authorization_data
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::aws(
                "getting an ECR authorization token",
                "the answer held no authorization data",
            )
        })?;
    let (username, password) = decode_token(data.authorization_token().unwrap_or(""))
        .map_err(|e| Error::aws("decoding the ECR authorization token", e))?;
    drop(data.authorization_token);
    Ok(EcrLogin {
        host: registry_host(data.proxy_endpoint.as_deref().unwrap_or_default()),
        username,
        password,
    })
}

const REFUSED_HINT: &str = "the registry refused the credentials: check --registry-id and --registry-endpoint (ECSKIT_REGISTRY_ENDPOINT), and that the caller may call ecr:GetAuthorizationToken and push to the repository";

/// The engine's message without bollard's wrapping.
pub fn message(err: &DockerError) -> String {
    match err {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        DockerError::DockerStreamError { error } => error.trim().to_string(),
        other => crate::error::flatten(other),
    }
}

/// A Docker failure with the engine's message, and a hint when the registry refused the
/// credentials.
pub fn docker_error(context: impl Into<String>, err: &DockerError) -> Error {
    let detail = message(err);
    let refused = is_auth_refusal(&detail);
    let e = Error::docker(context, detail.replace('\n', " "));
    if refused { e.hint(REFUSED_HINT) } else { e }
}

pub struct Engine {
    pub(crate) docker: Docker,
    pub host: String,
}

/// What the push of one tag did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    pub digest: Option<String>,
    pub layers_pushed: usize,
    pub layers_existing: usize,
}

impl Engine {
    /// Connects to `DOCKER_HOST` (unix:// or tcp://) or the default socket, and agrees on an
    /// API version, which also proves the engine answers.
    pub async fn connect() -> Result<Engine> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let unreachable = |e: &DockerError| {
            Error::docker(
                format!("cannot reach the Docker Engine at {host}"),
                message(e),
            )
            .hint("start the Docker Engine, or point DOCKER_HOST at one (unix:///path/docker.sock or tcp://HOST:2375)")
        };
        let docker = Docker::connect_with_defaults().map_err(|e| unreachable(&e))?;
        // Pushes of large images stream for a long time: the default 2 minutes is too short.
        let docker = docker.with_timeout(Duration::from_secs(3600));
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(&e))?;
        tracing::debug!("Docker Engine at {host}");
        Ok(Engine { docker, host })
    }

    /// The local image, or `None` when the engine does not have it.
    pub async fn local_image(&self, reference: &str) -> Result<Option<ImageInspect>> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(image)),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(docker_error(
                format!("inspecting local image {reference}"),
                &e,
            )),
        }
    }

    /// Pulls `reference` (tag `latest` when it names none) with optional credentials.
    pub async fn pull(&self, reference: &str, credentials: Option<&Credentials>) -> Result<()> {
        let from = if tag_of(reference).is_some() || reference.contains('@') {
            reference.to_string()
        } else {
            format!("{reference}:latest")
        };
        let options = CreateImageOptions {
            from_image: Some(from.clone()),
            ..Default::default()
        };
        let mut stream =
            self.docker
                .create_image(Some(options), None, credentials.map(Credentials::docker));
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status {
                        tracing::debug!("pull {from}: {status}");
                    }
                }
                Err(e) => return Err(docker_error(format!("pulling {from}"), &e)),
            }
        }
        Ok(())
    }

    /// What the registry answers about `reference` (`HOST/REPO:TAG` or `HOST/REPO@DIGEST`):
    /// the image, "no such image", or "not with these credentials". Anything else (the
    /// registry's host unknown or unreachable, a timeout, a 5xx, `toomanyrequests`, an answer
    /// this does not recognise) is an error saying what happened: it says nothing about the
    /// image, so it must not read as "the image does not exist".
    pub async fn remote_image(
        &self,
        reference: &str,
        credentials: &Credentials,
    ) -> Result<RemoteImage> {
        let e = match self
            .docker
            .inspect_registry_image(reference, Some(credentials.docker()))
            .await
        {
            Ok(found) => return Ok(RemoteImage::Found(Box::new(found))),
            Err(e) => e,
        };
        let status = match &e {
            DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
            _ => None,
        };
        let text = message(&e);
        match registry_answer(status, &text, reference) {
            RegistryAnswer::Missing => Ok(RemoteImage::Missing(one_line(&text))),
            RegistryAnswer::Refused => Ok(RemoteImage::Refused(one_line(&text))),
            RegistryAnswer::Unavailable => Err(docker_error(
                format!("asking the registry about {reference}"),
                &e,
            )
            .hint("the registry did not say whether the image exists: check the registry's host, the network, and its rate limits, then run again")),
        }
    }

    /// The digest the registry holds under `repository:tag`, or `None` when it holds nothing
    /// there. Refused credentials are an error: the push would be refused too.
    pub async fn registry_digest(
        &self,
        repository: &str,
        tag: &str,
        credentials: &Credentials,
    ) -> Result<Option<String>> {
        let reference = format!("{repository}:{tag}");
        match self.remote_image(&reference, credentials).await? {
            RemoteImage::Found(f) => Ok(f.descriptor.digest),
            RemoteImage::Missing(why) => {
                tracing::debug!("the registry holds nothing under {reference}: {why}");
                Ok(None)
            }
            RemoteImage::Refused(why) => Err(Error::docker(
                format!("the registry refused the credentials for {reference}"),
                why,
            )
            .hint(REFUSED_HINT)),
        }
    }

    /// Tags `source` as `repository:tag`.
    pub async fn tag(&self, source: &str, repository: &str, tag: &str) -> Result<()> {
        let options = TagImageOptions {
            repo: Some(repository.to_string()),
            tag: Some(tag.to_string()),
        };
        self.docker
            .tag_image(source, Some(options))
            .await
            .map_err(|e| docker_error(format!("tagging {source} as {repository}:{tag}"), &e))
    }

    /// Pushes `repository:tag`, showing each layer's progress, and fails on the first error
    /// line of the engine's stream.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        credentials: &Credentials,
        layers: usize,
        progress: &Progress,
    ) -> Result<PushOutcome> {
        let target = format!("{repository}:{tag}");
        let options = PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let mut stream =
            self.docker
                .push_image(repository, Some(options), Some(credentials.docker()));
        let mut outcome = PushOutcome::default();
        let mut bars = LayerBars::default();
        let total = if layers > 0 {
            format!(" of {layers}")
        } else {
            String::new()
        };
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(e) => return Err(docker_error(format!("pushing {target}"), &e)),
            };
            let Some(status) = info.status.as_deref() else {
                continue;
            };
            match status {
                "Pushing" => {
                    if let Some(detail) = &info.progress_detail
                        && let (Some(current), Some(size)) = (detail.current, detail.total)
                    {
                        bars.update(progress, size, current);
                    }
                }
                "Pushed" => {
                    outcome.layers_pushed += 1;
                    bars.finish_one();
                    progress.println(format!(
                        "{target}: layer pushed ({}{total})",
                        outcome.layers_pushed + outcome.layers_existing
                    ));
                }
                "Layer already exists" => {
                    outcome.layers_existing += 1;
                    progress.println(format!(
                        "{target}: layer already exists ({}{total})",
                        outcome.layers_pushed + outcome.layers_existing
                    ));
                }
                other => {
                    if let Some(digest) = push_digest(other) {
                        outcome.digest = Some(digest);
                    } else {
                        tracing::debug!("push {target}: {other}");
                    }
                }
            }
        }
        bars.finish_all();
        Ok(outcome)
    }
}

/// Progress bars for the layers being uploaded. bollard's push messages do not carry the
/// layer id, so a layer is recognised by its size (the `total` of its progress), which is
/// distinct for the layers of nearly every image; two layers of one size share a bar.
#[derive(Default)]
struct LayerBars {
    bars: Vec<(i64, i64, Task, bool)>,
}

impl LayerBars {
    fn update(&mut self, progress: &Progress, size: i64, current: i64) {
        if !progress.is_drawing() {
            return;
        }
        if let Some((_, pos, task, _)) = self.bars.iter_mut().find(|(s, ..)| *s == size) {
            *pos = current;
            task.set_position(current.max(0) as u64);
            return;
        }
        let task = progress.bar(size.max(0) as u64, format!("layer ({size} bytes)"), true);
        task.set_position(current.max(0) as u64);
        self.bars.push((size, current, task, false));
    }

    /// A layer finished: the bar closest to its end is the one.
    fn finish_one(&mut self) {
        let best = self
            .bars
            .iter_mut()
            .filter(|(.., done)| !done)
            .max_by_key(|(size, pos, ..)| (*pos * 1000) / (*size).max(1));
        if let Some((size, _, task, done)) = best {
            task.set_position((*size).max(0) as u64);
            task.finish("layer pushed");
            *done = true;
        }
    }

    fn finish_all(&mut self) {
        for (_, _, task, done) in self.bars.iter_mut().filter(|(.., done)| !done) {
            task.finish("layer pushed");
            *done = true;
        }
    }
}

/// The tag of a reference like `registry:5000/app:1.2`, if it names one (ids and digests don't).
pub fn tag_of(reference: &str) -> Option<&str> {
    if reference.contains('@') {
        return None;
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.split_once(':').map(|(_, t)| t)
}

/// The digest in the engine's last push line, `TAG: digest: sha256:... size: N`.
pub fn push_digest(status: &str) -> Option<String> {
    let rest = status.split_once(": digest: ")?.1;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

/// What the registry answered about one image.
#[derive(Debug)]
pub enum RemoteImage {
    Found(Box<bollard::models::DistributionInspect>),
    /// No such repository, tag or digest (the registry's words).
    Missing(String),
    /// The credentials were refused (the registry's words): on ECR, also what a repository
    /// the caller may not read looks like.
    Refused(String),
}

/// How a registry error reads, as far as "does the image exist" goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryAnswer {
    /// "manifest unknown", "name unknown", a 404: the registry says there is no such image.
    Missing,
    /// The credentials were refused.
    Refused,
    /// Anything else: DNS, a refused connection, a timeout, a 5xx, `toomanyrequests`, or an
    /// answer not recognised. Says nothing about the image.
    Unavailable,
}

/// Reads the engine's status and message for a registry question. What the network or the
/// registry's health says is looked for first: an engine can wrap a rate limit or an outage in
/// a 404, and an unknown answer is never taken for "no such image".
/// `reference` (the image asked for) is taken out of the message first: the engine echoes it,
/// and a name such as `geoff` or `timeout-worker` must not read as an outage.
pub fn registry_answer(status: Option<u16>, message: &str, reference: &str) -> RegistryAnswer {
    let m = message
        .to_ascii_lowercase()
        .replace(&reference.to_ascii_lowercase(), "IMAGE");
    let outage = [
        "toomanyrequests",
        "too many requests",
        "rate limit",
        "no such host",
        "connection refused",
        "connection reset",
        "timeout",
        "timed out",
        "deadline exceeded",
        "unexpected http status: 5",
        "service unavailable",
        "bad gateway",
        "internal server error",
        "network is unreachable",
        "tls:",
        // `unexpected EOF`, `read: EOF`: a word, not three letters of a name.
        " eof",
    ];
    if outage.iter().any(|o| m.contains(o)) {
        return RegistryAnswer::Unavailable;
    }
    if is_auth_refusal(&m) {
        return RegistryAnswer::Refused;
    }
    let missing = m.contains("manifest unknown")
        || m.contains("name unknown")
        || m.contains("repository name not known")
        || (m.contains("manifest for") && m.contains("not found"));
    if missing || (status == Some(404) && m.contains("not found")) {
        RegistryAnswer::Missing
    } else {
        RegistryAnswer::Unavailable
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether an engine or registry message says the credentials were refused.
pub fn is_auth_refusal(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("unauthorized")
        || m.contains("authentication required")
        || m.contains("access to the resource is denied")
        || m.contains("no basic auth credentials")
        || m.contains("denied:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_digest_from_the_last_line() {
        assert_eq!(
            push_digest("v1: digest: sha256:abcd size: 528").as_deref(),
            Some("sha256:abcd")
        );
        assert_eq!(push_digest("Pushed"), None);
        assert_eq!(push_digest("Layer already exists"), None);
    }

    #[test]
    fn auth_refusals() {
        assert!(is_auth_refusal("unauthorized: authentication required"));
        assert!(is_auth_refusal(
            "denied: requested access to the resource is denied"
        ));
        assert!(!is_auth_refusal("manifest unknown"));
    }

    #[test]
    fn registry_answers() {
        use RegistryAnswer::*;
        for (status, text, want) in [
            (404, "manifest unknown: manifest unknown", Missing),
            (
                404,
                "errors:\nname unknown: repository name not known to registry",
                Missing,
            ),
            (
                500,
                "name unknown: The repository with name 'web' does not exist in the registry with id '123456789012'",
                Missing,
            ),
            (
                404,
                "manifest for 127.0.0.1:5000/web:v9 not found: manifest unknown",
                Missing,
            ),
            (401, "unauthorized: authentication required", Refused),
            (
                403,
                "denied: User: arn:aws:iam::1:user/ci is not authorized to perform: ecr:BatchGetImage",
                Refused,
            ),
            (
                500,
                "Get \"https://x.example/v2/\": dial tcp: lookup x.example on 10.0.0.2:53: no such host",
                Unavailable,
            ),
            (
                500,
                "Get \"http://127.0.0.1:9/v2/\": dial tcp 127.0.0.1:9: connect: connection refused",
                Unavailable,
            ),
            (
                500,
                "Get \"https://r/v2/\": net/http: request canceled (Client.Timeout exceeded while awaiting headers)",
                Unavailable,
            ),
            (
                500,
                "received unexpected HTTP status: 503 Service Unavailable",
                Unavailable,
            ),
            (
                404,
                "toomanyrequests: You have reached your pull rate limit",
                Unavailable,
            ),
            (500, "something the registry never said before", Unavailable),
        ] {
            assert_eq!(
                registry_answer(Some(status), text, "127.0.0.1:5000/web:v9"),
                want,
                "{status} {text}"
            );
        }
        // A name holding an outage's word is still a missing image.
        for reference in [
            "127.0.0.1:5000/geoff:v1",
            "127.0.0.1:5000/timeout-worker:v1",
            "127.0.0.1:5000/tls:v1",
        ] {
            assert_eq!(
                registry_answer(
                    Some(404),
                    &format!("manifest for {reference} not found: manifest unknown"),
                    reference
                ),
                Missing,
                "{reference}"
            );
        }
        assert_eq!(
            registry_answer(Some(500), "Get \"https://r/v2/\": read: EOF", "r/a:1"),
            Unavailable
        );
    }

    #[test]
    fn tags_of_references() {
        assert_eq!(tag_of("localhost:5000/app:dev"), Some("dev"));
        assert_eq!(tag_of("localhost:5000/app"), None);
        assert_eq!(tag_of("app@sha256:abc"), None);
    }
}
