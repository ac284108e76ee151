//! A small fake Docker Engine on a unix socket: it records every request with its
//! `X-Registry-Auth` header (what credentials the engine would carry to a registry) and
//! answers the calls verify and the local run make, the registry's part scripted by the test.
//! The real engine would send those credentials on to whatever host the image names, so what
//! reaches this fake is what would reach that host.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::Value;

/// One request the fake engine received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path without the API version prefix, percent-decoded, with its query.
    pub path: String,
    /// The decoded `X-Registry-Auth` header, when one was sent.
    pub registry_auth: Option<Value>,
}

impl Request {
    /// The registry host the credentials were for (`serveraddress`), when any were sent.
    pub fn credentials_for(&self) -> Option<String> {
        let auth = self.registry_auth.as_ref()?;
        let user = auth.get("username").and_then(Value::as_str).unwrap_or("");
        let password = auth.get("password").and_then(Value::as_str).unwrap_or("");
        if user.is_empty() && password.is_empty() {
            return None;
        }
        Some(
            auth.get("serveraddress")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )
    }
}

/// The registry's answer to a distribution (inspect) question about one image reference:
/// `(status, body)` as the engine would relay it.
pub type Registry = Arc<dyn Fn(&str) -> (u16, String) + Send + Sync>;

pub struct FakeEngine {
    /// `unix:///…/docker.sock`, for `DOCKER_HOST`.
    pub host: String,
    requests: Arc<Mutex<Vec<Request>>>,
    _dir: tempfile::TempDir,
}

impl FakeEngine {
    /// Starts the engine; `registry` answers `GET /distribution/REF/json`.
    pub fn start(registry: Registry) -> FakeEngine {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, registry) = (log.clone(), registry.clone());
                std::thread::spawn(move || serve(stream, &log, &registry));
            }
        });
        FakeEngine {
            host: format!("unix://{}", socket.display()),
            requests,
            _dir: dir,
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// `(path, registry host the credentials were for)` of each request that carried any.
    pub fn credentials_sent(&self) -> Vec<(String, String)> {
        self.requests()
            .iter()
            .filter_map(|r| Some((r.path.clone(), r.credentials_for()?)))
            .collect()
    }
}

/// One connection: requests one after another (the client keeps it alive).
fn serve(stream: UnixStream, log: &Mutex<Vec<Request>>, registry: &Registry) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        read_body(&mut reader, &headers);
        let path = decode(&strip_version(&target));
        let registry_auth = headers.get("x-registry-auth").map(|v| {
            let bytes = base64::engine::general_purpose::URL_SAFE
                .decode(v.trim_end_matches('='))
                .or_else(|_| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v.trim_end_matches('='))
                })
                .unwrap_or_default();
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        });
        log.lock().unwrap().push(Request {
            method: method.clone(),
            path: path.clone(),
            registry_auth,
        });
        let (status, body) = answer(&method, &path, registry);
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn read_body(reader: &mut BufReader<UnixStream>, headers: &HashMap<String, String>) {
    if let Some(n) = headers
        .get("content-length")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let mut body = vec![0; n];
        let _ = reader.read_exact(&mut body);
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                return;
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            let _ = reader.read_exact(&mut chunk);
            if n == 0 {
                return;
            }
        }
    }
}

/// What the engine answers. Only the registry's part is scripted; the rest is an engine with
/// no images, containers or networks that accepts what it is asked to create, except
/// containers (so a local run ends right after its pulls).
fn answer(method: &str, path: &str, registry: &Registry) -> (u16, String) {
    let route = path.split('?').next().unwrap_or(path);
    match (method, route) {
        ("GET", "/_ping") => (200, "OK".into()),
        ("GET", "/version") => (
            200,
            r#"{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"}"#.into(),
        ),
        ("GET", r) if r.starts_with("/distribution/") => {
            let reference = r
                .trim_start_matches("/distribution/")
                .trim_end_matches("/json");
            registry(reference)
        }
        ("POST", "/images/create") => (
            200,
            "{\"status\":\"Pulling\"}\n{\"status\":\"Status: Downloaded newer image\"}\n".into(),
        ),
        ("GET", r) if r.starts_with("/images/") => {
            (404, r#"{"message":"No such image"}"#.into())
        }
        ("GET", "/networks" | "/containers/json") => (200, "[]".into()),
        ("GET", "/volumes") => (200, r#"{"Volumes":[],"Warnings":[]}"#.into()),
        ("POST", "/networks/create") => (201, r#"{"Id":"fake-network","Warning":""}"#.into()),
        ("POST", "/containers/create") => (
            500,
            r#"{"message":"the fake engine creates no containers"}"#.into(),
        ),
        ("DELETE", _) => (204, String::new()),
        _ => (200, "{}".into()),
    }
}

/// `/v1.41/x` -> `/x`.
fn strip_version(target: &str) -> String {
    match target.strip_prefix("/v") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest
            .find('/')
            .map(|i| rest[i..].to_string())
            .unwrap_or_default(),
        _ => target.to_string(),
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The registry's answer when it holds the image: one amd64 manifest.
pub fn found() -> (u16, String) {
    (
        200,
        r#"{"Descriptor":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":528},"Platforms":[{"architecture":"amd64","os":"linux"}]}"#.into(),
    )
}

/// An engine error relaying what the registry or the network said.
pub fn engine_error(status: u16, message: &str) -> (u16, String) {
    (
        status,
        serde_json::json!({ "message": message }).to_string(),
    )
}
