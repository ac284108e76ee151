//! The recorded-response helpers of service-run's and task-run's tests (`service_watch.rs`,
//! `task_run_recorded.rs`): an ECS client answered by aws-smithy-mocks rules in order, the
//! [`Deps`] around it with a virtual clock, and recorded tasks.
#![allow(dead_code)] // each test file uses its own part

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::types::{Container, Task, TaskStopCode};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use ecskit::aws::Ctx;
use ecskit::ecs::{Clock, Deps, Timing};
use ecskit::output::OutputFormat;
use ecskit::progress::Progress;

pub const TASK: &str = "arn:aws:ecs:us-west-2:123456789012:task/app/0123456789abcdef";

/// What `mock_client!` builds, without the SDK's test-util feature: an ECS client whose every
/// call is answered by the rules, in order.
pub fn mock_ecs(rules: &[Rule]) -> Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::Sequential);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    Client::from_conf(conf)
}

pub fn deps(rules: &[Rule]) -> Deps {
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .build();
    let ctx = Ctx::from_sdk_config(sdk, None, false);
    Deps {
        ecs: mock_ecs(rules),
        ec2: ctx.ec2(),
        ctx,
        clock: Clock::virtual_clock(),
        progress: Progress::capturing(),
        timing: Timing {
            poll: Duration::from_secs(6),
            timeout: Duration::from_secs(30 * 60),
            no_progress: Duration::from_secs(60),
            iam_grace: Duration::from_secs(120),
        },
        log_lines: 20,
    }
}

pub fn task(status: &str, reason: Option<&str>, containers: &[(&str, Option<i32>)]) -> Task {
    Task::builder()
        .task_arn(TASK)
        .last_status(status)
        .set_stopped_reason(reason.map(str::to_string))
        .set_stop_code((status == "STOPPED").then_some(TaskStopCode::EssentialContainerExited))
        .set_containers(Some(
            containers
                .iter()
                .map(|(n, code)| Container::builder().name(*n).set_exit_code(*code).build())
                .collect(),
        ))
        .build()
}

pub fn described(t: Task) -> Rule {
    let out = DescribeTasksOutput::builder().tasks(t).build();
    mock!(Client::describe_tasks)
        .match_requests(|r| r.tasks() == [TASK])
        .then_output(move || out.clone())
}

/// A failure's stdout in `format`, read back as `--output env` pairs.
pub fn failed_outputs(
    err: &ecskit::Error,
    format: OutputFormat,
) -> std::collections::HashMap<String, String> {
    let text = ecskit::cli::failure_output(err, format).expect("a failed run prints its outputs");
    ecskit_contract::env::parse_lines(&text)
        .unwrap()
        .into_iter()
        .collect()
}

/// CloudWatch Logs as recorded: each call answers the next of `answers` (GetLogEvents' or
/// FilterLogEvents' JSON; the last one again when they run out); the requests are kept.
#[derive(Clone, Debug, Default)]
pub struct RecordedLogs {
    pub answers: Vec<&'static str>,
    pub asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for RecordedLogs {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).to_string();
        let mut asked = self.asked.lock().unwrap();
        asked.push(body);
        let answer = self
            .answers
            .get(asked.len() - 1)
            .or(self.answers.last())
            .copied()
            .unwrap_or("{}");
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Ok(
            aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(200).unwrap(),
                aws_smithy_types::body::SdkBody::from(answer),
            ),
        ))
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for RecordedLogs {
    fn http_connector(
        &self,
        _settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(self.clone())
    }
}

impl RecordedLogs {
    /// A context whose every AWS call (CloudWatch Logs here) this client answers.
    pub fn ctx(&self) -> Ctx {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
                aws_sdk_ecs::config::Credentials::new("test", "test", None, None, "test"),
            ))
            .http_client(self.clone())
            .build();
        Ctx::from_sdk_config(sdk, None, false)
    }
}
