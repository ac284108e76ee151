//! A fault-injecting HTTP proxy on 127.0.0.1 in front of the emulator: the network as it breaks
//! in production, for tests that run the real binaries through it (`AWS_ENDPOINT_URL` = its URL).
//!
//! - [`Faults::FirstAttemptUnavailable`]: every distinct request first fails with a 503 and is
//!   not forwarded; its retry goes through.
//! - [`Faults::LostAnswers`]: a share of the mutating requests is forwarded and applied, and its
//!   answer replaced by a 500, as when a connection drops after the server acted. The retry of
//!   the same request goes through.
//!
//! - [`Faults::Throttle`]: a share of all requests is answered with the service's own
//!   throttling error (ECS, ECR and the other JSON services `ThrottlingException`, IAM and STS
//!   `Throttling`, EC2 `RequestLimitExceeded`, S3 a 503 `SlowDown`) and not forwarded, as AWS
//!   answers a burst. Every request draws (a retry too), and one request is throttled at most
//!   twice in a row, as a token bucket refills between backed-off attempts.
//!
//! With [`Faults::None`] it only counts: the mutating requests that reached it, whatever client
//! sent them (a binary's own call log could miss one).
//!
//! "The same request" is the method, the path and query, the operation header and the body:
//! what an SDK retry repeats (the signature and date headers change between attempts). Which
//! mutating requests lose their answer is decided by their count (the first one, then evenly
//! spread at the given share), so every run loses at least one and exactly its share.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug)]
pub enum Faults {
    /// None: the proxy only counts (see [`FaultProxy::mutating`]).
    None,
    FirstAttemptUnavailable,
    /// This percentage of the mutating requests is applied and answered with a 500.
    LostAnswers {
        percent: u64,
    },
    /// This percentage of all requests is answered with the service's throttling error.
    Throttle {
        percent: u64,
    },
}

/// The running proxy; it stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    injected: Arc<AtomicUsize>,
    forwarded: Arc<AtomicUsize>,
    mutating: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<(String, String)>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Faults injected so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// Requests forwarded so far (including those whose answer was then lost).
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// The mutating operations that reached the proxy so far, in order.
    pub fn mutating(&self) -> Vec<String> {
        self.mutating.lock().unwrap().clone()
    }

    /// The mutating requests that reached the proxy so far, as (operation, body as sent): what
    /// went over the wire, to see that a field the SDK does not know was not dropped.
    pub fn mutating_bodies(&self) -> Vec<(String, String)> {
        self.bodies.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Shared {
    upstream: String,
    faults: Faults,
    seen: Mutex<HashSet<String>>,
    /// Distinct mutating requests seen so far (which of them lose their answer).
    first_mutating: AtomicUsize,
    /// How many times in a row each request was throttled (by its key).
    throttled: Mutex<std::collections::HashMap<String, u32>>,
    injected: Arc<AtomicUsize>,
    forwarded: Arc<AtomicUsize>,
    mutating: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<(String, String)>>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// Starts the proxy in front of `upstream` (`http://127.0.0.1:PORT`).
pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port on 127.0.0.1");
    std_listener.set_nonblocking(true).unwrap();
    let addr: SocketAddr = std_listener.local_addr().unwrap();
    let injected = Arc::new(AtomicUsize::new(0));
    let forwarded = Arc::new(AtomicUsize::new(0));
    let mutating = Arc::new(Mutex::new(Vec::new()));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let upstream = upstream.trim_end_matches('/').to_string();
    let (inj, fwd, mutd, bods) = (
        injected.clone(),
        forwarded.clone(),
        mutating.clone(),
        bodies.clone(),
    );
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let shared = Arc::new(Shared {
                upstream,
                faults,
                seen: Mutex::new(HashSet::new()),
                first_mutating: AtomicUsize::new(0),
                throttled: Mutex::new(Default::default()),
                injected: inj,
                forwarded: fwd,
                mutating: mutd,
                bodies: bods,
                client: Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build(HttpConnector::new()),
            });
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let shared = shared.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |req| {
                                let shared = shared.clone();
                                async move { Ok::<_, std::convert::Infallible>(handle(&shared, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        });
                    }
                }
            }
        });
    });
    FaultProxy {
        url: format!("http://{addr}"),
        injected,
        forwarded,
        mutating,
        bodies,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// The operation a request calls: `X-Amz-Target` (JSON protocols), `Action=` (query
/// protocols), or the S3 REST method.
fn operation(req: &hyper::http::request::Parts, body: &[u8]) -> String {
    if let Some(t) = req
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return t.rsplit('.').next().unwrap_or(t).to_string();
    }
    let text = String::from_utf8_lossy(body);
    if let Some(action) = text.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return action.to_string();
    }
    format!("S3 {}", req.method)
}

fn is_mutating(op: &str) -> bool {
    match op.strip_prefix("S3 ") {
        Some(method) => !matches!(method, "GET" | "HEAD"),
        None => ecskit_contract::calls::is_mutating(op),
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return reply(StatusCode::BAD_REQUEST, "unreadable body");
    };
    let op = operation(&parts, &body);
    let mut h = Sha256::new();
    h.update(parts.method.as_str());
    h.update(
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    );
    h.update(op.as_bytes());
    h.update(&body);
    let key = hex::encode(h.finalize());
    let first = shared.seen.lock().unwrap().insert(key.clone());
    if is_mutating(&op) {
        shared.mutating.lock().unwrap().push(op.clone());
        shared
            .bodies
            .lock()
            .unwrap()
            .push((op.clone(), String::from_utf8_lossy(&body).into_owned()));
    }
    match shared.faults {
        Faults::FirstAttemptUnavailable if first => {
            shared.injected.fetch_add(1, Ordering::SeqCst);
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"__type":"ServiceUnavailableException","message":"injected by the fault proxy"}"#,
            );
        }
        Faults::LostAnswers { percent }
            if first && is_mutating(&op) && {
                let n = shared.first_mutating.fetch_add(1, Ordering::SeqCst) as u64;
                (n * percent) % 100 < percent
            } =>
        {
            let _ = forward(shared, &parts, body).await;
            shared.injected.fetch_add(1, Ordering::SeqCst);
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"__type":"InternalFailure","message":"the answer was lost (fault proxy)"}"#,
            );
        }
        Faults::Throttle { percent } => {
            let mut throttled = shared.throttled.lock().unwrap();
            let times = throttled.entry(key.clone()).or_insert(0);
            // Drawn per request, not per key: identical reads (a role every process looks up)
            // must not all pass or all fail together.
            let n =
                shared.forwarded.load(Ordering::SeqCst) + shared.injected.load(Ordering::SeqCst);
            let draw = Sha256::digest(format!("{key}/{times}/{n}"));
            if *times < 2 && u64::from(u16::from_be_bytes([draw[0], draw[1]])) % 100 < percent {
                *times += 1;
                drop(throttled);
                shared.injected.fetch_add(1, Ordering::SeqCst);
                return throttling(&parts);
            }
            *times = 0;
        }
        _ => {}
    }
    forward(shared, &parts, body).await.unwrap_or_else(|e| {
        let mut r = Response::new(Full::new(Bytes::from(format!("proxy: {e}"))));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        r
    })
}

/// The throttling answer of the service a request is for, read from its signature's
/// credential scope (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`).
fn throttling(parts: &hyper::http::request::Parts) -> Response<Full<Bytes>> {
    let service = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("")
        .to_string();
    let (status, body, content_type) = match service.as_str() {
        "s3" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>",
            "application/xml",
        ),
        "iam" | "sts" => (
            StatusCode::BAD_REQUEST,
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
            "text/xml",
        ),
        "ec2" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>",
            "text/xml",
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            "application/x-amz-json-1.1",
        ),
    };
    let mut r = reply(status, body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

async fn forward(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, String> {
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let uri = format!(
        "{}{}",
        shared.upstream,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut builder = Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in &parts.headers {
        if k != hyper::header::CONTENT_LENGTH && k != hyper::header::TRANSFER_ENCODING {
            builder = builder.header(k, v);
        }
    }
    let req = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
    let resp = shared
        .client
        .request(req)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let mut out = Response::from_parts(parts, Full::new(bytes));
    out.headers_mut().remove(hyper::header::TRANSFER_ENCODING);
    out.headers_mut().remove(hyper::header::CONTENT_LENGTH);
    Ok(out)
}
