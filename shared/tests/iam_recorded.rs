//! role-create and instance-profile on recorded IAM and STS answers, for what the emulator
//! never does: a create whose answer is lost (the SDK retries it and IAM says
//! EntityAlreadyExists), and an instance profile that IAM does not return right after it was
//! created (eventual consistency).
//!
//! The steps reach IAM only through `Ctx::iam()`, whose client is built from the `SdkConfig`, so
//! the recordings are played back at the HTTP layer: the `SdkConfig` carries an HTTP client that
//! answers each request with the next recorded response (IAM's query-protocol XML, as IAM sends
//! it, policy documents URL-encoded) and checks that the request is the one expected. A "lost"
//! answer is a connector timeout, which the SDK's standard retry sends again. The whole step runs
//! through `step::run`, STS GetCallerIdentity included.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::config::{AsyncSleep, Credentials, SharedCredentialsProvider, Sleep};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use clap::Parser;
use ecskit::aws::Ctx;
use ecskit::iam::policy;
use ecskit::{instance_profile, role_create};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

const ACCOUNT: &str = "123456789012";
const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// What the recording answers to one HTTP request.
#[derive(Clone, Debug)]
enum Answer {
    /// 200 with this XML body.
    Ok(String),
    /// An IAM error: status, code, message.
    Error(u16, &'static str, String),
    /// The request reached IAM but its answer never came back.
    Lost,
}

/// One expected request: its `Action`, strings its form body must contain, and the answer.
#[derive(Clone, Debug)]
struct Exchange {
    action: &'static str,
    body_has: Vec<String>,
    answer: Answer,
}

fn ex(action: &'static str, body_has: &[&str], answer: Answer) -> Exchange {
    Exchange {
        action,
        body_has: body_has.iter().map(|s| s.to_string()).collect(),
        answer,
    }
}

/// The HTTP client that plays a recording back in strict order.
#[derive(Clone, Debug, Default)]
struct Replay {
    script: Arc<Mutex<VecDeque<Exchange>>>,
    /// Every HTTP request's Action, retries included, in order.
    sent: Arc<Mutex<Vec<String>>>,
}

impl Replay {
    fn new(script: Vec<Exchange>) -> Self {
        Replay {
            script: Arc::new(Mutex::new(script.into())),
            sent: Arc::default(),
        }
    }

    fn left(&self) -> Vec<&'static str> {
        self.script
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.action)
            .collect()
    }

    fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }
}

fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

impl HttpConnector for Replay {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).to_string();
        let action = form_value(&body, "Action").unwrap_or_default();
        self.sent.lock().unwrap().push(action.clone());
        let next = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected request {action} after the recording ended"));
        assert_eq!(action, next.action, "request out of order: {body}");
        for want in &next.body_has {
            assert!(
                body.contains(want.as_str()),
                "{action} lacks {want}: {body}"
            );
        }
        let (status, xml) = match next.answer {
            Answer::Lost => {
                return HttpConnectorFuture::ready(Err(ConnectorError::timeout(
                    "the answer was lost (recorded)".into(),
                )));
            }
            Answer::Ok(xml) => (200, xml),
            Answer::Error(status, code, message) => (
                status,
                format!(
                    r#"<ErrorResponse xmlns="{IAM_NS}"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>4d3c2b1a-0000-4000-8000-000000000000</RequestId></ErrorResponse>"#
                ),
            ),
        };
        let mut response =
            HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(xml));
        response.headers_mut().insert("content-type", "text/xml");
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

/// Retry backoff and waiter delays pass instantly.
#[derive(Debug)]
struct NoWait;

impl AsyncSleep for NoWait {
    fn sleep(&self, _duration: Duration) -> Sleep {
        Sleep::new(std::future::ready(()))
    }
}

fn ctx(replay: &Replay) -> Ctx {
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .sleep_impl(NoWait)
        .http_client(replay.clone())
        .build();
    Ctx::from_sdk_config(sdk, None, false)
}

fn wrap(action: &str, result: &str) -> Answer {
    Answer::Ok(format!(
        r#"<{action}Response xmlns="{IAM_NS}"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>4d3c2b1a-0000-4000-8000-000000000001</RequestId></ResponseMetadata></{action}Response>"#
    ))
}

/// An answer with no result element (PutRolePolicy, AddRoleToInstanceProfile ...).
fn done(action: &str) -> Answer {
    Answer::Ok(format!(
        r#"<{action}Response xmlns="{IAM_NS}"><ResponseMetadata><RequestId>4d3c2b1a-0000-4000-8000-000000000002</RequestId></ResponseMetadata></{action}Response>"#
    ))
}

fn caller() -> Exchange {
    ex(
        "GetCallerIdentity",
        &[],
        Answer::Ok(format!(
            r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::{ACCOUNT}:user/ci</Arn><UserId>AIDAEXAMPLE</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#
        )),
    )
}

/// IAM returns policy documents URL-encoded.
fn encoded(doc: &Value) -> String {
    utf8_percent_encode(&doc.to_string(), NON_ALPHANUMERIC).to_string()
}

fn role_element(tag: &str, name: &str, trust: &Value) -> String {
    format!(
        "<{tag}><Path>/</Path><RoleName>{name}</RoleName><RoleId>AROAEXAMPLE{len}</RoleId>\
         <Arn>arn:aws:iam::{ACCOUNT}:role/{name}</Arn><CreateDate>2025-01-02T03:04:05Z</CreateDate>\
         <AssumeRolePolicyDocument>{doc}</AssumeRolePolicyDocument><MaxSessionDuration>3600</MaxSessionDuration>\
         <Tags><member><Key>managed-by</Key><Value>ecskit</Value></member></Tags></{tag}>",
        len = name.len(),
        doc = encoded(trust),
    )
}

/// GetRole: the role as it exists, created with `trust` and the managed-by tag.
fn role_exists(name: &str, trust: &Value) -> Exchange {
    ex(
        "GetRole",
        &[&format!("RoleName={name}")],
        wrap("GetRole", &role_element("Role", name, trust)),
    )
}

fn no_role(name: &str) -> Exchange {
    ex(
        "GetRole",
        &[&format!("RoleName={name}")],
        Answer::Error(
            404,
            "NoSuchEntity",
            format!("The role with name {name} cannot be found."),
        ),
    )
}

fn inline_policies(name: &str, names: &[&str]) -> Exchange {
    let members: String = names
        .iter()
        .map(|n| format!("<member>{n}</member>"))
        .collect();
    ex(
        "ListRolePolicies",
        &[&format!("RoleName={name}")],
        wrap(
            "ListRolePolicies",
            &format!("<IsTruncated>false</IsTruncated><PolicyNames>{members}</PolicyNames>"),
        ),
    )
}

fn attached_policies(name: &str, arns: &[&str]) -> Exchange {
    let members: String = arns
        .iter()
        .map(|a| {
            let short = a.rsplit('/').next().unwrap();
            format!("<member><PolicyName>{short}</PolicyName><PolicyArn>{a}</PolicyArn></member>")
        })
        .collect();
    ex(
        "ListAttachedRolePolicies",
        &[&format!("RoleName={name}")],
        wrap(
            "ListAttachedRolePolicies",
            &format!(
                "<IsTruncated>false</IsTruncated><AttachedPolicies>{members}</AttachedPolicies>"
            ),
        ),
    )
}

fn mutating_ops(ctx: &Ctx) -> Vec<String> {
    ctx.calls()
        .mutating()
        .into_iter()
        .map(|c| c.operation)
        .collect()
}

#[tokio::test]
async fn role_create_converges_when_a_lost_create_meets_entity_already_exists() {
    let argv = [
        "role-create",
        "--region",
        "us-west-2",
        "--name",
        "app",
        "--bucket",
        "cfg-bucket",
        "--prefix",
        "ecs",
        "--access",
        "read",
    ];
    let args = role_create::Args::try_parse_from(argv).unwrap();
    // The documents the step sends: the lost first CreateRole made the role with them.
    let plan = role_create::plan(&args).unwrap();
    let (task, execution) = role_create::desired(&args, &plan, "aws", "us-west-2", ACCOUNT);
    assert_eq!(task.inline.len(), 1, "{:?}", task.inline);
    let (inline_name, _) = task.inline.iter().next().unwrap();
    let exec_policy = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";

    let replay = Replay::new(vec![
        caller(),
        // Both roles are read before the first mutating call.
        no_role("app-task"),
        role_exists("app-execution", &execution.trust),
        // The first CreateRole made the role, but its answer was lost; the SDK sends it again.
        ex("CreateRole", &["RoleName=app-task"], Answer::Lost),
        ex(
            "CreateRole",
            &["RoleName=app-task"],
            Answer::Error(
                409,
                "EntityAlreadyExists",
                "Role with name app-task already exists.".into(),
            ),
        ),
        // The waiter, then the read of the role as it exists.
        role_exists("app-task", &task.trust),
        role_exists("app-task", &task.trust),
        // The lost create left the role without its inline policy: converging puts it.
        inline_policies("app-task", &[]),
        ex(
            "PutRolePolicy",
            &["RoleName=app-task", &format!("PolicyName={inline_name}")],
            done("PutRolePolicy"),
        ),
        attached_policies("app-task", &[]),
        // The execution role already exists as wanted (read above).
        inline_policies("app-execution", &[]),
        attached_policies("app-execution", &[exec_policy]),
    ]);
    let ctx = ctx(&replay);
    let report = ecskit::step::run::<ecskit::role_create::RoleCreate>(&ctx, &args)
        .await
        .unwrap();

    assert!(replay.left().is_empty(), "unplayed: {:?}", replay.left());
    assert!(report.changed);
    assert_eq!(
        report.actions,
        vec![
            "create role app-task".to_string(),
            format!("put inline policy {inline_name} on role app-task"),
        ]
    );
    assert_eq!(
        report.get_str("TASK_ROLE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:role/app-task")
    );
    assert_eq!(
        report.get_str("EXECUTION_ROLE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:role/app-execution")
    );
    // One CreateRole operation (two HTTP attempts), no update of a trust policy or tags that
    // already match: the step did not start over or fail.
    assert_eq!(mutating_ops(&ctx), ["CreateRole", "PutRolePolicy"]);
    let creates = replay.sent().iter().filter(|a| *a == "CreateRole").count();
    assert_eq!(creates, 2, "{:?}", replay.sent());
}

#[tokio::test]
async fn role_create_still_fails_on_an_error_that_is_not_entity_already_exists() {
    let args = role_create::Args::try_parse_from([
        "role-create",
        "--region",
        "us-west-2",
        "--name",
        "app",
    ])
    .unwrap();
    let replay = Replay::new(vec![
        caller(),
        no_role("app-task"),
        no_role("app-execution"),
        ex(
            "CreateRole",
            &["RoleName=app-task"],
            Answer::Error(
                409,
                "LimitExceeded",
                "Cannot exceed quota for RolesPerAccount: 1000".into(),
            ),
        ),
    ]);
    let ctx = ctx(&replay);
    let err = ecskit::step::run::<ecskit::role_create::RoleCreate>(&ctx, &args)
        .await
        .unwrap_err();
    assert!(replay.left().is_empty(), "unplayed: {:?}", replay.left());
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("RolesPerAccount"), "{err}");
}

const PROFILE: &str = "ecsInstanceRole-profile";
const ROLE: &str = "ecsInstanceRole";
const EC2_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role";

fn ec2_trust() -> Value {
    policy::service_trust(&["ec2.amazonaws.com"])
}

fn no_profile() -> Exchange {
    ex(
        "GetInstanceProfile",
        &[&format!("InstanceProfileName={PROFILE}")],
        Answer::Error(
            404,
            "NoSuchEntity",
            format!("Instance Profile {PROFILE} cannot be found."),
        ),
    )
}

fn profile(roles: &[&str]) -> Exchange {
    let members: String = roles
        .iter()
        .map(|r| role_element("member", r, &ec2_trust()))
        .collect();
    ex(
        "GetInstanceProfile",
        &[&format!("InstanceProfileName={PROFILE}")],
        wrap(
            "GetInstanceProfile",
            &format!(
                "<InstanceProfile><Path>/</Path><InstanceProfileName>{PROFILE}</InstanceProfileName>\
                 <InstanceProfileId>AIPAEXAMPLE</InstanceProfileId>\
                 <Arn>arn:aws:iam::{ACCOUNT}:instance-profile/{PROFILE}</Arn>\
                 <CreateDate>2025-01-02T03:04:05Z</CreateDate><Roles>{members}</Roles>\
                 <Tags><member><Key>managed-by</Key><Value>ecskit</Value></member></Tags></InstanceProfile>"
            ),
        ),
    )
}

/// The instance role exists as wanted; the profile does not (read once, before any change: the
/// converge uses that read).
fn role_ready_profile_missing() -> Vec<Exchange> {
    vec![
        caller(),
        no_profile(),
        role_exists(ROLE, &ec2_trust()),
        inline_policies(ROLE, &[]),
        attached_policies(ROLE, &[EC2_POLICY]),
    ]
}

fn add_role() -> Exchange {
    ex(
        "AddRoleToInstanceProfile",
        &[
            &format!("InstanceProfileName={PROFILE}"),
            &format!("RoleName={ROLE}"),
        ],
        done("AddRoleToInstanceProfile"),
    )
}

fn profile_args() -> instance_profile::Args {
    instance_profile::Args::try_parse_from(["instance-profile", "--region", "us-west-2"]).unwrap()
}

fn assert_profile_converged(report: &ecskit::Report, ctx: &Ctx) {
    assert!(report.changed);
    assert_eq!(
        report.actions,
        vec![
            format!("create instance profile {PROFILE}"),
            format!("add role {ROLE} to instance profile {PROFILE}"),
        ]
    );
    assert_eq!(
        report.get_str("INSTANCE_PROFILE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:instance-profile/ecsInstanceRole-profile")
    );
    assert_eq!(
        report.get_str("INSTANCE_ROLE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:role/ecsInstanceRole")
    );
    assert_eq!(
        mutating_ops(ctx),
        ["CreateInstanceProfile", "AddRoleToInstanceProfile"]
    );
}

#[tokio::test]
async fn instance_profile_converges_when_a_lost_create_meets_entity_already_exists() {
    let mut script = role_ready_profile_missing();
    script.extend([
        ex(
            "CreateInstanceProfile",
            &[&format!("InstanceProfileName={PROFILE}")],
            Answer::Lost,
        ),
        ex(
            "CreateInstanceProfile",
            &[&format!("InstanceProfileName={PROFILE}")],
            Answer::Error(
                409,
                "EntityAlreadyExists",
                format!("Instance Profile {PROFILE} already exists."),
            ),
        ),
        // Waiter, then the read: the profile the lost create made, still empty.
        profile(&[]),
        profile(&[]),
        add_role(),
        // Visible (waiter) before success is reported.
        profile(&[ROLE]),
    ]);
    let replay = Replay::new(script);
    let ctx = ctx(&replay);
    let report =
        ecskit::step::run::<ecskit::instance_profile::InstanceProfile>(&ctx, &profile_args())
            .await
            .unwrap();
    assert!(replay.left().is_empty(), "unplayed: {:?}", replay.left());
    assert_profile_converged(&report, &ctx);
    let creates = replay
        .sent()
        .iter()
        .filter(|a| *a == "CreateInstanceProfile")
        .count();
    assert_eq!(creates, 2, "{:?}", replay.sent());
}

/// A profile IAM does not return yet right after it was created is waited for, and the role is
/// still added. (Before the fix, the step read it once, took "missing" for a dry run, skipped
/// AddRoleToInstanceProfile and reported success with an empty profile.)
#[tokio::test]
async fn instance_profile_waits_for_a_new_profile_before_adding_the_role() {
    let mut script = role_ready_profile_missing();
    script.extend([
        ex(
            "CreateInstanceProfile",
            &[&format!("InstanceProfileName={PROFILE}")],
            wrap(
                "CreateInstanceProfile",
                &format!(
                    "<InstanceProfile><Path>/</Path><InstanceProfileName>{PROFILE}</InstanceProfileName>\
                     <InstanceProfileId>AIPAEXAMPLE</InstanceProfileId>\
                     <Arn>arn:aws:iam::{ACCOUNT}:instance-profile/{PROFILE}</Arn>\
                     <CreateDate>2025-01-02T03:04:05Z</CreateDate><Roles></Roles></InstanceProfile>"
                ),
            ),
        ),
        // Not visible yet, then visible.
        no_profile(),
        profile(&[]),
        profile(&[]),
        add_role(),
        profile(&[ROLE]),
    ]);
    let replay = Replay::new(script);
    let ctx = ctx(&replay);
    let report =
        ecskit::step::run::<ecskit::instance_profile::InstanceProfile>(&ctx, &profile_args())
            .await
            .unwrap();
    assert!(replay.left().is_empty(), "unplayed: {:?}", replay.left());
    assert_profile_converged(&report, &ctx);
}

/// AddRoleToInstanceProfile applied, its answer lost: the SDK's retry meets LimitExceeded (a
/// profile holds one role), the profile is read, holds the role, and the step converges.
#[tokio::test]
async fn instance_profile_converges_when_a_lost_add_role_meets_limit_exceeded() {
    let mut script = role_ready_profile_missing();
    script.extend([
        ex(
            "CreateInstanceProfile",
            &[&format!("InstanceProfileName={PROFILE}")],
            wrap(
                "CreateInstanceProfile",
                &format!(
                    "<InstanceProfile><Path>/</Path><InstanceProfileName>{PROFILE}</InstanceProfileName>\
                     <InstanceProfileId>AIPAEXAMPLE</InstanceProfileId>\
                     <Arn>arn:aws:iam::{ACCOUNT}:instance-profile/{PROFILE}</Arn>\
                     <CreateDate>2025-01-02T03:04:05Z</CreateDate><Roles></Roles></InstanceProfile>"
                ),
            ),
        ),
        profile(&[]),
        profile(&[]),
        ex(
            "AddRoleToInstanceProfile",
            &[
                &format!("InstanceProfileName={PROFILE}"),
                &format!("RoleName={ROLE}"),
            ],
            Answer::Lost,
        ),
        ex(
            "AddRoleToInstanceProfile",
            &[
                &format!("InstanceProfileName={PROFILE}"),
                &format!("RoleName={ROLE}"),
            ],
            Answer::Error(
                409,
                "LimitExceeded",
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".into(),
            ),
        ),
        // The read that decides: the lost add made it.
        profile(&[ROLE]),
        profile(&[ROLE]),
    ]);
    let replay = Replay::new(script);
    let ctx = ctx(&replay);
    let report =
        ecskit::step::run::<ecskit::instance_profile::InstanceProfile>(&ctx, &profile_args())
            .await
            .unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(replay.left().is_empty(), "unplayed: {:?}", replay.left());
    assert_profile_converged(&report, &ctx);
    let adds = replay
        .sent()
        .iter()
        .filter(|a| *a == "AddRoleToInstanceProfile")
        .count();
    assert_eq!(adds, 2, "{:?}", replay.sent());
}
