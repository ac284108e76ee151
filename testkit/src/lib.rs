//! Test support: the local stack as the integration tests see it.
//!
//! `cargo xtask test` and `cargo xtask ci` start the stack and pass its addresses in the
//! environment. [`local_stack`] reads them, takes a process-wide lock (tests that share the
//! emulator run one at a time) and resets the emulator's state, so every test starts clean.

pub mod fault_proxy;

use std::io::{Read, Write};
use std::sync::{Mutex, MutexGuard};

static LOCK: Mutex<()> = Mutex::new(());

pub struct LocalStack {
    /// moto's base URL (`AWS_ENDPOINT_URL`).
    pub moto_url: String,
    /// The registry's `host:port` (`ECSKIT_REGISTRY_ENDPOINT`).
    pub registry: String,
    /// The Docker Engine (`DOCKER_HOST`).
    pub docker_host: String,
    _guard: MutexGuard<'static, ()>,
}

/// The local stack, reset. Panics with the command to run when the stack's variables are
/// missing: these tests test nothing without the real parts.
pub fn local_stack() -> LocalStack {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: integration tests run against the local stack; use `cargo xtask test` \
                 (or `cargo xtask local up && eval \"$(cargo xtask local env)\"` before `cargo test`)"
            )
        })
    };
    let stack = LocalStack {
        moto_url: var("ECSKIT_LOCAL_MOTO_URL"),
        registry: var("ECSKIT_REGISTRY_ENDPOINT"),
        docker_host: var("DOCKER_HOST"),
        _guard: guard,
    };
    stack.reset();
    stack
}

impl LocalStack {
    /// Wipes the emulator's state and switches IAM enforcement off.
    pub fn reset(&self) {
        self.moto_api("/moto-api/reset-auth", "inf");
        let (status, body) = self.post("/moto-api/reset", "application/json", "");
        assert_eq!(status, 200, "resetting moto failed: {body}");
    }

    /// Turns moto's IAM enforcement on: calls are then checked against the caller's policies.
    /// Create the users, roles and policies the test needs before calling this.
    pub fn enforce_iam(&self) {
        self.moto_api("/moto-api/reset-auth", "0");
    }

    /// Turns moto's IAM enforcement off again (what [`LocalStack::reset`] also does).
    pub fn stop_enforcing_iam(&self) {
        self.moto_api("/moto-api/reset-auth", "inf");
    }

    /// A context signed as a new IAM user that holds `policy` as its one inline policy: what a
    /// policy allows, tested for real once [`LocalStack::enforce_iam`] is on. Call it before
    /// switching enforcement on (creating the user needs the test credentials' full rights).
    pub async fn ctx_as_user_with_policy(
        &self,
        user: &str,
        policy: &serde_json::Value,
    ) -> ecskit::aws::Ctx {
        use aws_sdk_iam::config::{Credentials, SharedCredentialsProvider};
        let iam = self.ctx(false).await.iam();
        iam.create_user().user_name(user).send().await.unwrap();
        iam.put_user_policy()
            .user_name(user)
            .policy_name("under-test")
            .policy_document(policy.to_string())
            .send()
            .await
            .unwrap();
        let key = iam
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .unwrap()
            .access_key
            .unwrap();
        let creds = Credentials::new(
            key.access_key_id(),
            key.secret_access_key(),
            None,
            None,
            "ecskit-test-user",
        );
        let sdk = ecskit::aws::sdk_config(&self.aws_args())
            .await
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .build();
        ecskit::aws::Ctx::from_sdk_config(sdk, Some(self.moto_url.clone()), false)
    }

    fn moto_api(&self, path: &str, body: &str) {
        let (status, text) = self.post(path, "text/plain", body);
        assert_eq!(status, 200, "moto {path} failed: {text}");
    }

    /// A POST to the emulator's own API (`/moto-api/...`).
    pub fn post(&self, path: &str, content_type: &str, body: &str) -> (u16, String) {
        let addr = self
            .moto_url
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let mut s = std::net::TcpStream::connect(addr).expect("connect to moto");
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("write to moto");
        let mut response = String::new();
        s.read_to_string(&mut response).expect("read from moto");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// A [`ecskit::aws::Ctx`] pointed at the emulator with test credentials.
    pub async fn ctx(&self, dry_run: bool) -> ecskit::aws::Ctx {
        ecskit::aws::Ctx::new(&self.aws_args(), dry_run).await
    }

    /// A step's flags as its binary would parse them, pointed at the emulator:
    /// `BIN --region us-west-2 --endpoint-url MOTO EXTRA...`.
    pub fn parse<A: clap::Parser>(&self, bin: &str, extra: &[&str]) -> A {
        let mut argv = vec![
            bin,
            "--region",
            "us-west-2",
            "--endpoint-url",
            &self.moto_url,
        ];
        argv.extend_from_slice(extra);
        A::try_parse_from(argv).unwrap_or_else(|e| panic!("{bin} flags {extra:?}: {e}"))
    }

    /// The default VPC's default-for-AZ subnets and its `default` security group: the emulator
    /// makes them with new ids on every start, so tests look them up.
    pub async fn default_network(&self) -> (Vec<String>, String) {
        use aws_sdk_ec2::types::Filter;
        let ec2 = self.ctx(false).await.ec2();
        let filter = |name: &str, value: &str| Filter::builder().name(name).values(value).build();
        let subnets = ec2
            .describe_subnets()
            .filters(filter("default-for-az", "true"))
            .send()
            .await
            .unwrap();
        let groups = ec2
            .describe_security_groups()
            .filters(filter("group-name", "default"))
            .send()
            .await
            .unwrap();
        (
            subnets
                .subnets()
                .iter()
                .filter_map(|s| s.subnet_id().map(str::to_string))
                .collect(),
            groups.security_groups()[0].group_id().unwrap().to_string(),
        )
    }

    /// Registers a task definition of one essential container `app` (this image, 512 MiB) in
    /// awsvpc mode, for Fargate, and returns its ARN.
    pub async fn register_app(&self, family: &str, image: &str) -> String {
        use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
        self.ctx(false)
            .await
            .ecs()
            .register_task_definition()
            .family(family)
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image(image)
                    .memory(512)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .task_definition
            .and_then(|t| t.task_definition_arn)
            .unwrap()
    }

    pub fn aws_args(&self) -> ecskit::aws::AwsArgs {
        ecskit::aws::AwsArgs {
            region: Some("us-west-2".into()),
            profile: None,
            endpoint_url: Some(self.moto_url.clone()),
            retry_attempts: 3,
            retry_mode: Default::default(),
        }
    }
}

/// Pins a step's printed output with insta, masking what changes from run to run (account
/// ids, ARNs' random parts, ids, digests, times), so a snapshot shows the shape of what a
/// user sees. Every step's snapshot tests use this one set of filters.
///
/// ```ignore
/// ecskit_testkit::assert_output_snapshot!("role_create_text", report.render(OutputFormat::Text));
/// ```
pub fn snapshot_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        // Digests and long hex ids (image digests, task ids, deployment ids).
        (r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"),
        (r"\b[0-9a-f]{32}\b", "[ID]"),
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            "[UUID]",
        ),
        // ECS deployment ids (ecs-svc/1234567890123456789).
        (r"ecs-svc/[0-9]+", "ecs-svc/[ID]"),
        // Local ports of the stack.
        (r"127\.0\.0\.1:[0-9]+", "127.0.0.1:[PORT]"),
        // EC2 ids (subnets, security groups, VPCs).
        (r"\b(subnet|sg|vpc)-[0-9a-f]{8,17}\b", "$1-[ID]"),
        // Times and durations.
        (
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+)?",
            "[TIME]",
        ),
        (r"\b[0-9]+(\.[0-9]+)?\s?(ms|s)\b", "[DURATION]"),
    ]
}

/// `insta::assert_snapshot!` with [`snapshot_filters`] applied.
#[macro_export]
macro_rules! assert_output_snapshot {
    ($name:expr, $value:expr) => {{
        let mut settings = insta::Settings::clone_current();
        for (pattern, replacement) in $crate::snapshot_filters() {
            settings.add_filter(pattern, replacement);
        }
        settings.bind(|| insta::assert_snapshot!($name, $value));
    }};
}

/// A binary's `--help` and its headings in order (the lines that end in `:` at the left
/// margin), for the tests that check the step's own flags come first, Output and AWS last.
pub fn help_and_headings(bin: &str) -> (String, Vec<String>) {
    let out = std::process::Command::new(bin)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("running {bin} --help: {e}"));
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let headings = help
        .lines()
        .filter(|l| l.ends_with(':') && !l.starts_with(' '))
        .map(str::to_string)
        .collect();
    (help, headings)
}

/// Checks that `bin --help` shows the step's own flags first, under its name (`step:`), and the
/// Output and AWS flags last, before the examples.
pub fn assert_own_flags_first(bin: &str, step: &str) {
    let (help, headings) = help_and_headings(bin);
    assert_eq!(
        headings.first().map(String::as_str),
        Some("Options:"),
        "{help}"
    );
    assert_eq!(headings.get(1).cloned(), Some(format!("{step}:")), "{help}");
    let n = headings.len();
    assert_eq!(
        headings[n - 3..].to_vec(),
        ["Output:", "AWS:", "Examples:"],
        "{help}"
    );
}
