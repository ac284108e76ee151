//! Recorded answers for the AWS JSON-protocol services (ECR, ECS; and Auto Scaling's query
//! protocol, its answer recorded as XML text), played back at the HTTP
//! layer so the steps run unchanged through `Ctx`: the `SdkConfig` carries an HTTP client that
//! answers each request with the next recorded answer, in strict order, and checks that the
//! request is the one expected (its `X-Amz-Target` operation). Used for what the emulator
//! never does: an answer lost after the request was applied (a 500), which the SDK retries.
//! A service that speaks Smithy RPC v2 CBOR (CloudWatch; moto does not speak it) names the
//! operation in the path, and its answer is sent as CBOR ([`cbor`]).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::{AsyncSleep, Credentials, SharedCredentialsProvider, Sleep};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use ecskit::aws::{Clock, Ctx};
use serde_json::{Value, json};

/// One expected request (the operation's name) and its answer: a status and a JSON body.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub operation: &'static str,
    pub status: u16,
    pub body: Value,
}

/// 200 with this body.
pub fn ok(operation: &'static str, body: Value) -> Exchange {
    Exchange {
        operation,
        status: 200,
        body,
    }
}

/// An error answer with its code, as the JSON protocol writes it.
pub fn error(operation: &'static str, status: u16, code: &str) -> Exchange {
    Exchange {
        operation,
        status,
        body: json!({"__type": code, "message": format!("{code} (recorded)")}),
    }
}

/// The HTTP client that plays the recording back.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    script: Arc<Mutex<VecDeque<Exchange>>>,
    sent: Arc<Mutex<Vec<(String, String)>>>,
}

impl Replay {
    pub fn new(script: Vec<Exchange>) -> Self {
        Replay {
            script: Arc::new(Mutex::new(script.into())),
            sent: Arc::default(),
        }
    }

    /// The operations sent, retries included, in order.
    pub fn sent(&self) -> Vec<String> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(o, _)| o.clone())
            .collect()
    }

    /// The body of each request sent, in order.
    pub fn bodies(&self) -> Vec<String> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The answers not asked for.
    pub fn left(&self) -> Vec<&'static str> {
        self.script
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.operation)
            .collect()
    }

    /// A context whose every client talks to this recording, with a virtual clock and
    /// retries that do not wait.
    pub fn ctx(&self, dry_run: bool) -> Ctx {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            )))
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .sleep_impl(NoWait)
            .http_client(self.clone())
            .build();
        Ctx::from_sdk_config(sdk, None, dry_run).with_clock(Clock::virtual_clock())
    }
}

impl HttpConnector for Replay {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let cbor = request.headers().get("smithy-protocol") == Some("rpc-v2-cbor");
        let operation = if cbor {
            request
                .uri()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        } else if let Some(target) = request.headers().get("x-amz-target") {
            target.rsplit('.').next().unwrap_or_default().to_string()
        } else {
            // The AWS query protocol (Auto Scaling): `Action=Operation&...` in a form body.
            let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default());
            body.split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or_default()
                .to_string()
        };
        let query = !cbor && request.headers().get("x-amz-target").is_none();
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).to_string();
        self.sent.lock().unwrap().push((operation.clone(), body));
        let next = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected {operation} after the recording ended"));
        assert_eq!(operation, next.operation, "request out of order");
        let body = if cbor {
            SdkBody::from(cbor::encode(&next.body))
        } else if let (true, Value::String(xml)) = (query, &next.body) {
            // A query-protocol answer is recorded as its XML text.
            SdkBody::from(xml.clone())
        } else {
            SdkBody::from(next.body.to_string())
        };
        let mut response = HttpResponse::new(StatusCode::try_from(next.status).unwrap(), body);
        if cbor {
            response
                .headers_mut()
                .insert("content-type", "application/cbor");
            response
                .headers_mut()
                .insert("smithy-protocol", "rpc-v2-cbor");
        } else if query {
            response.headers_mut().insert("content-type", "text/xml");
        } else {
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.1");
        }
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Replay {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// Retry backoff passes instantly.
#[derive(Debug)]
struct NoWait;

impl AsyncSleep for NoWait {
    fn sleep(&self, _duration: Duration) -> Sleep {
        Sleep::new(std::future::ready(()))
    }
}

/// A JSON value as CBOR (RFC 8949), for the answers of RPC v2 CBOR services, written with the
/// SDK's own CBOR encoder.
pub mod cbor {
    use aws_smithy_cbor::Encoder;
    use serde_json::Value;

    fn write(e: &mut Encoder, v: &Value) {
        match v {
            Value::Null => {
                e.null();
            }
            Value::Bool(b) => {
                e.boolean(*b);
            }
            Value::Number(n) => match n.as_i64() {
                Some(i) => {
                    e.long(i);
                }
                None => {
                    e.double(n.as_f64().unwrap_or_default());
                }
            },
            Value::String(s) => {
                e.str(s);
            }
            Value::Array(items) => {
                e.array(items.len());
                for i in items {
                    write(e, i);
                }
            }
            Value::Object(m) => {
                e.map(m.len());
                for (k, v) in m {
                    e.str(k);
                    write(e, v);
                }
            }
        }
    }

    pub fn encode(v: &Value) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new());
        write(&mut e, v);
        e.into_writer()
    }
}
