//! The one way to reach AWS.
//!
//! [`AwsArgs`] are the flags every AWS-talking binary shares; [`Ctx::new`] turns them into one
//! `SdkConfig` (the standard credential chain: environment, profile, SSO, web identity for
//! GitHub OIDC, ECS container credentials) and hands out clients that all carry the same retry
//! policy and the same [`CallLog`]. The call log is how tests and the benchmark count
//! (mutating) API calls, and [`Ctx::apply`] is the dry-run gate that every mutating call passes.

use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;
use tokio::sync::OnceCell;

use aws_smithy_runtime_api::client::result::SdkError;

pub use crate::clock::Clock;
use crate::error::{AwsContext, Result};
use crate::progress::Progress;

pub use ecskit_contract::{MANAGED_BY, is_managed};

/// The AWS flags of every binary that talks to AWS.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "AWS")]
pub struct AwsArgs {
    /// AWS region (default: the profile's or the environment's).
    #[arg(long, env = "AWS_REGION", global = true)]
    pub region: Option<String>,
    /// Named profile from ~/.aws/config.
    #[arg(long, env = "AWS_PROFILE", global = true)]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (an emulator such as the local stack).
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true)]
    pub endpoint_url: Option<String>,
    /// Attempts per call before a throttled or 5xx answer is given up on.
    #[arg(
        long,
        env = "ECSKIT_RETRY_ATTEMPTS",
        default_value_t = 6,
        global = true
    )]
    pub retry_attempts: u32,
    /// How throttled calls are retried: `standard` (backoff with jitter) or `adaptive` (also a
    /// client-side rate limit, for a process that runs long).
    #[arg(
        long,
        env = "ECSKIT_RETRY_MODE",
        value_enum,
        default_value_t = RetryMode::Standard,
        global = true
    )]
    pub retry_mode: RetryMode,
}

/// The SDK's two retry modes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetryMode {
    #[default]
    Standard,
    Adaptive,
}

/// Loads the one `SdkConfig` from the flags. No API call is made here.
pub async fn sdk_config(args: &AwsArgs) -> SdkConfig {
    // Throttled answers (ECS and IAM `Throttling`, S3 `SlowDown`) and transient ones are retried
    // with exponential backoff and jitter, up to --retry-attempts, so a deploy of many services
    // backs off instead of failing. Standard, not adaptive, by default: adaptive's client-side
    // limiter sets its rate from the rate it measured, and a step's process is seconds old, so
    // one throttle drops it to the floor of 0.5 calls a second (a 10-service deploy under 20%
    // throttling took 170 s adaptive). The orchestrator's --jobs bounds how many processes
    // call at once, which is the client-side limit that matters across processes.
    let retry = match args.retry_mode {
        RetryMode::Standard => RetryConfig::standard(),
        RetryMode::Adaptive => RetryConfig::adaptive(),
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry.with_max_attempts(args.retry_attempts.max(1)));
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// One AWS call as the call log saw it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Call {
    pub service: String,
    pub operation: String,
}

impl Call {
    /// Whether the operation changes anything (the contract's one rule).
    pub fn is_mutating(&self) -> bool {
        ecskit_contract::calls::is_mutating(&self.operation)
    }
}

/// Every AWS call the clients of one [`Ctx`] made, in order. When `ECSKIT_CALL_LOG` names a
/// file, each call is also appended to it as `Service.Operation`, so the orchestrator and the
/// benchmark can count the calls of binaries they run as processes.
#[derive(Clone, Debug, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<Call>>>,
    file: Option<Arc<std::path::PathBuf>>,
}

impl CallLog {
    pub fn new() -> Self {
        CallLog {
            calls: Arc::default(),
            file: std::env::var_os("ECSKIT_CALL_LOG")
                .filter(|v| !v.is_empty())
                .map(|p| Arc::new(p.into())),
        }
    }

    fn record(&self, call: Call) {
        if let Some(path) = &self.file {
            use std::io::Write;
            // Best effort: counting must never fail a deploy.
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path.as_ref())
            {
                let _ = writeln!(f, "{}.{}", call.service, call.operation);
            }
        }
        tracing::debug!("AWS call {}.{}", call.service, call.operation);
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn mutating(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_mutating).collect()
    }

    pub fn summary(&self) -> CallSummary {
        let calls = self.calls();
        CallSummary {
            total: calls.len(),
            mutating: calls.iter().filter(|c| c.is_mutating()).count(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CallSummary {
    pub total: usize,
    pub mutating: usize,
}

/// The interceptor that feeds the call log. It runs once per operation, not per retry, and
/// before serialization rather than at the start of execution: the operation's `Metadata` is
/// not in the config bag yet when `read_before_execution` runs.
#[derive(Debug)]
struct CallCounter(CallLog);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "ecskit-call-counter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            self.0.record(Call {
                service: meta.service().to_string(),
                operation: meta.name().to_string(),
            });
        }
        Ok(())
    }
}

/// The raw JSON body of one answer, for the places that must see every field ECS sends,
/// including fields newer than the SDK's types (the service file, adopting a live service).
/// Add it to one call with `.customize().interceptor(raw.clone())`, then [`RawAnswer::json`].
#[derive(Clone, Debug, Default)]
pub struct RawAnswer(Arc<Mutex<Option<Vec<u8>>>>);

impl RawAnswer {
    /// The answer's body as JSON (`Null` when there was none).
    pub fn json(&self) -> serde_json::Value {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

impl Intercept for RawAnswer {
    fn name(&self) -> &'static str {
        "ecskit-raw-answer"
    }

    fn read_after_deserialization(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes.to_vec());
        }
        Ok(())
    }
}

/// A request hook that makes `doc` the request body, for calls whose input must reach AWS as
/// written (a task definition, a service file), including fields newer than the SDK's types.
///
/// Why this way: the SDK's typed builders drop what they do not know, and its shapes have no
/// serde support. A request of our own (hand-built HTTP plus SigV4) would duplicate what the
/// SDK's orchestrator already does right: endpoint resolution, signing, retries, the call log,
/// error parsing. So the call goes through its typed builder with just enough to build, and
/// `.customize().mutate_request(json_body(&doc))` swaps the serialized body for the document.
/// That hook runs in `modify_before_signing`, so SigV4 signs the real body; the serializer set
/// Content-Length from its own body, so it is set again here. The answer is typed as usual.
pub fn json_body(
    doc: &serde_json::Value,
) -> impl Fn(&mut aws_smithy_runtime_api::client::orchestrator::HttpRequest) + Send + Sync + 'static
{
    // A `Value` always serializes.
    let body = serde_json::to_vec(doc).unwrap_or_default();
    move |req| {
        req.headers_mut()
            .insert("Content-Length", body.len().to_string());
        *req.body_mut() = aws_smithy_types::body::SdkBody::from(body.clone());
    }
}

/// What a step runs with: the SDK config, the call log, and the dry-run switch.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub dry_run: bool,
    sdk: SdkConfig,
    endpoint_url: Option<String>,
    calls: CallLog,
    actions: Arc<Mutex<Vec<String>>>,
    account: Arc<OnceCell<String>>,
    /// Bars on a terminal, plain lines otherwise; built once from `-q`.
    pub progress: Progress,
    /// What the waiting loops read and sleep on (a virtual one in tests).
    pub clock: Clock,
}

macro_rules! client {
    ($name:ident, $krate:ident) => {
        pub fn $name(&self) -> $krate::Client {
            let conf = $krate::config::Builder::from(&self.sdk)
                .interceptor(CallCounter(self.calls.clone()))
                .build();
            $krate::Client::from_conf(conf)
        }
    };
}

impl Ctx {
    pub async fn new(aws: &AwsArgs, dry_run: bool) -> Ctx {
        Ctx::from_sdk_config(sdk_config(aws).await, aws.endpoint_url.clone(), dry_run)
    }

    /// For tests that bring their own config (recorded responses, say).
    pub fn from_sdk_config(sdk: SdkConfig, endpoint_url: Option<String>, dry_run: bool) -> Ctx {
        Ctx {
            dry_run,
            sdk,
            endpoint_url,
            calls: CallLog::new(),
            actions: Arc::default(),
            account: Arc::default(),
            progress: Progress::plain(),
            clock: Clock::real(),
        }
    }

    /// The progress helper the step draws with (the binaries pass `Progress::new(quiet)`).
    pub fn with_progress(mut self, progress: Progress) -> Ctx {
        self.progress = progress;
        self
    }

    /// The clock the waiting loops use (tests pass a virtual one).
    pub fn with_clock(mut self, clock: Clock) -> Ctx {
        self.clock = clock;
        self
    }

    client!(autoscaling, aws_sdk_autoscaling);
    client!(ec2, aws_sdk_ec2);
    client!(cloudwatch, aws_sdk_cloudwatch);
    client!(logs, aws_sdk_cloudwatchlogs);
    client!(secrets_manager, aws_sdk_secretsmanager);
    client!(ssm, aws_sdk_ssm);
    client!(ecr, aws_sdk_ecr);
    client!(ecs, aws_sdk_ecs);
    client!(iam, aws_sdk_iam);
    client!(sts, aws_sdk_sts);

    /// S3 with path-style addressing when an endpoint is set: emulators (and most S3-compatible
    /// stores) have no per-bucket DNS names.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.endpoint_url.is_some())
            .interceptor(CallCounter(self.calls.clone()))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    /// `--endpoint-url`, when one is set (an emulator).
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// The same context acting as `role_arn` (`sts:AssumeRole`, session `session`): the same
    /// region, endpoint, call log and gate.
    pub async fn assume_role(&self, role_arn: &str, session: &str) -> Result<Ctx> {
        let c = self.assume_role_credentials(role_arn, session).await?;
        let creds = aws_sdk_sts::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            std::time::SystemTime::try_from(*c.expiration()).ok(),
            "ecskit-assume-role",
        );
        let sdk = self
            .sdk
            .to_builder()
            .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(creds))
            .build();
        let mut ctx = self.clone();
        ctx.sdk = sdk;
        ctx.account = Arc::default();
        Ok(ctx)
    }

    /// `sts:AssumeRole` of `role_arn` (session `session`): the temporary credentials.
    pub async fn assume_role_credentials(
        &self,
        role_arn: &str,
        session: &str,
    ) -> Result<aws_sdk_sts::types::Credentials> {
        let out = self
            .sts()
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session)
            .send()
            .await
            .context(format!("assuming {role_arn}"))?;
        out.credentials.ok_or_else(|| {
            crate::Error::aws(
                format!("assuming {role_arn}"),
                "the answer held no credentials",
            )
        })
    }

    pub fn region(&self) -> Option<&str> {
        self.sdk.region().map(|r| r.as_ref())
    }

    /// The region, or an input error naming the flag when none is configured.
    pub fn require_region(&self) -> Result<String> {
        self.region().map(str::to_string).ok_or_else(|| {
            crate::Error::input("no AWS region is set")
                .hint("pass --region, or set AWS_REGION or a region in the profile")
        })
    }

    pub fn calls(&self) -> &CallLog {
        &self.calls
    }

    /// The caller's account id (STS GetCallerIdentity, asked once).
    pub async fn account_id(&self) -> Result<String> {
        self.account
            .get_or_try_init(|| async {
                let who = self
                    .sts()
                    .get_caller_identity()
                    .send()
                    .await
                    .context("asking STS who the caller is")?;
                who.account.ok_or_else(|| {
                    crate::Error::aws("asking STS who the caller is", "no account in the answer")
                })
            })
            .await
            .cloned()
    }

    /// The dry-run gate. Every mutating call is announced here first: the action is logged to
    /// stderr and recorded for the report. Returns whether to go ahead (false in dry-run).
    ///
    /// ```ignore
    /// if ctx.apply(format!("create role {name}")) {
    ///     iam.create_role()...send().await.context("creating role")?;
    /// }
    /// ```
    pub fn apply(&self, action: impl Into<String>) -> bool {
        let action = action.into();
        if self.dry_run {
            tracing::info!("would {action}");
        } else {
            tracing::info!("{action}");
        }
        self.actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(action);
        !self.dry_run
    }

    /// Announce, gate, call, add context: the one way a simple mutating call is made.
    ///
    /// `action` is said once: it is logged and reported ("create role app-task"), and it is the
    /// context of the error when the call fails. The call is a future that has not run yet, so
    /// in a dry run it is dropped unsent and the answer is `None`.
    ///
    /// ```ignore
    /// ctx.mutate(format!("create role {name}"), iam.create_role().role_name(name).send()).await?;
    /// ```
    pub async fn mutate<T, E, R>(
        &self,
        action: impl Into<String>,
        call: impl std::future::Future<Output = std::result::Result<T, SdkError<E, R>>>,
    ) -> Result<Option<T>>
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let action = action.into();
        if !self.apply(action.clone()) {
            return Ok(None);
        }
        call.await.map(Some).context(action)
    }

    /// The actions announced so far.
    pub fn actions(&self) -> Vec<String> {
        self.actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A report pre-filled from this run: `changed` is true exactly when an action was
    /// announced, and it carries the actions, the dry-run flag and the call counts.
    pub fn report(&self) -> crate::Report {
        crate::Report::new(self.actions(), self.dry_run, self.calls.summary())
    }
}
