//! The task's side of the host, as ECS gives it: the credentials endpoint that hands each
//! container its task role's credentials, and (against a local emulator) a way to reach the
//! AWS endpoint from inside the task's network.
//!
//! ECS serves credentials at `169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`. The local
//! run makes the task's bridge network with the gateway at 169.254.170.2, so the engine's host
//! holds that address, and this process listens on it (`--credentials-uri`, a line says which):
//! - on port 80 (`relative`; `auto` when it may bind it, which takes root or
//!   CAP_NET_BIND_SERVICE): containers get `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, and the
//!   seeds' `curl 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` works as on ECS;
//! - on a free port (`full`; `auto` otherwise): containers get
//!   `AWS_CONTAINER_CREDENTIALS_FULL_URI` with `AWS_CONTAINER_AUTHORIZATION_TOKEN`, a form every
//!   AWS SDK accepts for this host.
//!
//! The gateway's address can be reached from more than the task: other containers of the
//! engine, other users of the host, a neighbour with a route. So both listeners answer one peer
//! only, the task's own address ([`TASK_ADDRESS`], which the pause container holds and every
//! container shares): anyone else gets 403 (the forwarder: a closed connection) and a line on
//! stderr. The path and the token are compared in constant time.
//!
//! The credentials come from `sts:AssumeRole` of the task role (session name: the task id),
//! and are assumed again five minutes before they expire. They are never logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use crate::aws::Ctx;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The address ECS serves task credentials at, which the local task network's gateway takes.
pub const CREDENTIALS_HOST: &str = "169.254.170.2";
/// The task network's subnet (link-local, as ECS's).
pub const SUBNET: &str = "169.254.170.0/24";
/// The task's own address on it: the pause container's, which every container shares.
pub const TASK_ADDRESS: &str = "169.254.170.3";

/// How the containers find the credentials endpoint (`--credentials-uri`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CredentialsUri {
    /// RELATIVE_URI when port 80 can be bound, FULL_URI otherwise.
    #[default]
    Auto,
    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on port 80, as ECS (needs root or
    /// CAP_NET_BIND_SERVICE).
    Relative,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` on a free port, with an authorization token.
    Full,
}

/// Whether a connection comes from the task itself.
fn from_task(peer: &SocketAddr) -> bool {
    peer.ip().to_string() == TASK_ADDRESS
}

/// Equal, in a time that does not depend on where they differ (a guess at the path or token
/// learns nothing from the answer's timing). Lengths are not secret: they are fixed.
fn same(given: &str, want: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(given.as_bytes(), want.as_bytes()).into()
}

/// Credentials of the task role, as the endpoint answers them.
#[derive(Clone)]
struct Held {
    body: Secret,
    expires: SystemTime,
}

/// The task role, as the endpoint hands it out: assumed on first use and again when its
/// credentials would expire within five minutes.
pub struct TaskRole {
    ctx: Ctx,
    pub role_arn: String,
    session: String,
    held: Mutex<Option<Held>>,
}

impl TaskRole {
    pub fn new(ctx: &Ctx, role_arn: &str, session: &str) -> Arc<TaskRole> {
        Arc::new(TaskRole {
            ctx: ctx.clone(),
            role_arn: role_arn.to_string(),
            session: session.to_string(),
            held: Mutex::new(None),
        })
    }

    /// The endpoint's JSON answer.
    pub async fn answer(&self) -> Result<Secret> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref()
            && h.expires > SystemTime::now() + Duration::from_secs(300)
        {
            return Ok(h.body.clone());
        }
        let c = self
            .ctx
            .assume_role_credentials(&self.role_arn, &self.session)
            .await?;
        let expires = SystemTime::try_from(*c.expiration())
            .unwrap_or_else(|_| SystemTime::now() + Duration::from_secs(900));
        let expiration = c
            .expiration()
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default();
        let body = serde_json::json!({
            "RoleArn": self.role_arn,
            "AccessKeyId": c.access_key_id(),
            "SecretAccessKey": c.secret_access_key(),
            "Token": c.session_token(),
            "Expiration": expiration,
        });
        let h = Held {
            body: Secret::new(body.to_string()),
            expires,
        };
        *held = Some(h.clone());
        Ok(h.body)
    }
}

/// The running credentials endpoint.
pub struct CredentialsEndpoint {
    /// The variables each container gets (values that are tokens are in the `Secret`).
    pub env: Vec<(String, Secret)>,
    /// How the containers find it, for the log line.
    pub how: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CredentialsEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the endpoint on [`CREDENTIALS_HOST`] (the task network must exist, so the host has
/// the address), handing out `role`'s credentials; the path is random, as ECS's is.
pub async fn serve_credentials(
    role: Arc<TaskRole>,
    uri: CredentialsUri,
) -> Result<CredentialsEndpoint> {
    let path = format!("/v2/credentials/{}", uuid::Uuid::new_v4());
    let listen_error = |port: u16, e: std::io::Error| {
        Error::docker(
            format!("listening on {CREDENTIALS_HOST}:{port} for the task's credentials"),
            e.to_string(),
        )
    };
    let on_engine_host = "the local run needs the Docker Engine's networks on this host (Linux); with Docker Desktop, run it inside the VM or a Linux host";
    let (listener, relative, why) = match uri {
        CredentialsUri::Relative => (
            TcpListener::bind((CREDENTIALS_HOST, 80)).await.map_err(|e| {
                listen_error(80, e).hint("--credentials-uri relative needs port 80, which takes root or CAP_NET_BIND_SERVICE; --credentials-uri full needs neither")
            })?,
            true,
            "--credentials-uri relative",
        ),
        CredentialsUri::Auto | CredentialsUri::Full => {
            let port80 = if uri == CredentialsUri::Auto {
                TcpListener::bind((CREDENTIALS_HOST, 80)).await.ok()
            } else {
                None
            };
            match port80 {
                Some(l) => (l, true, "port 80 could be bound"),
                None => (
                    TcpListener::bind((CREDENTIALS_HOST, 0))
                        .await
                        .map_err(|e| listen_error(0, e).hint(on_engine_host))?,
                    false,
                    if uri == CredentialsUri::Full {
                        "--credentials-uri full"
                    } else {
                        "port 80 could not be bound: that takes root or CAP_NET_BIND_SERVICE"
                    },
                ),
            }
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let token = Secret::new(uuid::Uuid::new_v4().simple().to_string());
    let (env, how) = if relative {
        (
            vec![(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI".to_string(),
                Secret::new(path.clone()),
            )],
            format!(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, on port 80 of {CREDENTIALS_HOST} ({why})"
            ),
        )
    } else {
        (
            vec![
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
                    Secret::new(format!("http://{CREDENTIALS_HOST}:{port}{path}")),
                ),
                (
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN".to_string(),
                    token.clone(),
                ),
            ],
            format!(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN, on port {port} of {CREDENTIALS_HOST} ({why})"
            ),
        )
    };
    let want_token = (!relative).then_some(token);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let task_peer = from_task(&peer);
            if !task_peer {
                tracing::warn!(
                    "refused a connection to the credentials endpoint from {peer}: only the task ({TASK_ADDRESS}) is answered"
                );
            }
            let role = role.clone();
            let path = path.clone();
            let want_token = want_token.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let role = role.clone();
                    let path = path.clone();
                    let want_token = want_token.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            answer(&role, task_peer, &path, want_token.as_ref(), &req).await,
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(CredentialsEndpoint { env, how, task })
}

async fn answer(
    role: &TaskRole,
    task_peer: bool,
    path: &str,
    want_token: Option<&Secret>,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        r
    };
    if !task_peer {
        return reply(StatusCode::FORBIDDEN, r#"{"code":"AccessDenied"}"#.into());
    }
    if !same(req.uri().path(), path) {
        return reply(StatusCode::NOT_FOUND, r#"{"code":"NotFound"}"#.into());
    }
    if let Some(token) = want_token {
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !given.is_some_and(|g| same(g, token.expose())) {
            return reply(
                StatusCode::UNAUTHORIZED,
                r#"{"code":"AccessDenied"}"#.into(),
            );
        }
    }
    match role.answer().await {
        Ok(body) => reply(StatusCode::OK, body.expose().to_string()),
        Err(e) => {
            tracing::warn!("the task asked for its credentials: {e}");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"code": "AssumeRoleFailed", "message": e.to_string()})
                    .to_string(),
            )
        }
    }
}

/// Forwards TCP from the task network's gateway to an endpoint on this host's loopback (a
/// local emulator), so that containers reach it as `http://169.254.170.2:PORT`, for the task's
/// own address only.
///
/// It holds no secret, and needs none: it carries no credential of its own (the task signs its
/// calls with the task role's credentials), what it reaches is already open to every user of
/// this host on loopback, and the peer check keeps it from widening that to other containers
/// and neighbours. A token could not be asked of the task anyway: `AWS_ENDPOINT_URL` has no
/// place for a header the SDKs would send.
pub struct Forwarder {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The loopback `host:port` of an endpoint URL, when it is one.
pub fn loopback_target(endpoint_url: &str) -> Option<SocketAddr> {
    let rest = endpoint_url.strip_prefix("http://")?;
    let hostport = rest.split('/').next()?;
    let (host, port) = hostport.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        h => h.parse().ok()?,
    };
    ip.is_loopback().then(|| SocketAddr::new(ip, port))
}

pub async fn forward(target: SocketAddr) -> Result<Forwarder> {
    let listener = TcpListener::bind((CREDENTIALS_HOST, 0))
        .await
        .map_err(|e| {
            Error::docker(
                format!("listening on {CREDENTIALS_HOST} to forward to {target}"),
                e.to_string(),
            )
        })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, peer)) = listener.accept().await else {
                continue;
            };
            if !from_task(&peer) {
                tracing::warn!(
                    "refused a connection to the AWS endpoint forwarder from {peer}: only the task ({TASK_ADDRESS}) is forwarded"
                );
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Ok(Forwarder {
        url: format!("http://{CREDENTIALS_HOST}:{port}"),
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_task_address_is_a_task_peer_and_equal_means_equal() {
        assert!(from_task(&"169.254.170.3:40000".parse().unwrap()));
        assert!(!from_task(&"169.254.170.2:40000".parse().unwrap()));
        assert!(!from_task(&"169.254.170.4:40000".parse().unwrap()));
        assert!(!from_task(&"127.0.0.1:40000".parse().unwrap()));
        assert!(same("/v2/credentials/abc", "/v2/credentials/abc"));
        assert!(!same("/v2/credentials/abd", "/v2/credentials/abc"));
        assert!(!same("/v2/credentials/ab", "/v2/credentials/abc"));
        assert!(!same("", "x"));
    }

    #[test]
    fn only_loopback_endpoints_are_forwarded() {
        assert_eq!(
            loopback_target("http://127.0.0.1:4566"),
            Some("127.0.0.1:4566".parse().unwrap())
        );
        assert_eq!(
            loopback_target("http://localhost:5000/"),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        assert_eq!(loopback_target("https://s3.amazonaws.com"), None);
        assert_eq!(loopback_target("http://10.0.0.1:80"), None);
    }
}
