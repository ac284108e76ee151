//! service-run's waiting logic on recorded DescribeServices/ListTasks/DescribeTasks answers
//! (aws-smithy-mocks, in strict call order): the emulator never produces events, rollbacks,
//! stopped reasons or IAM-propagation errors (task-run's are in `task_run_recorded.rs`). The
//! clock is virtual, so minutes of polling run instantly, and the elapsed virtual time shows how
//! long the real wait would be.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use ecskit::output::OutputFormat;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::operation::create_service::{
    CreateServiceError, CreateServiceInput, CreateServiceOutput,
};
use aws_sdk_ecs::operation::describe_clusters::DescribeClustersOutput;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::types::error::InvalidParameterException;
use aws_sdk_ecs::types::{
    Cluster, Container, ContainerDefinition, Deployment, DeploymentRolloutState, NetworkMode,
    Service, ServiceEvent, Task, TaskDefinition, TaskDefinitionStatus,
};
use aws_smithy_mocks::{Rule, mock};
use aws_smithy_types::DateTime;
use aws_smithy_types::error::ErrorMetadata;
use ecskit::service_run::run_with;
use ecskit::service_run::watch::{Target, follow};

mod ecs_recorded;
use ecs_recorded::{RecordedLogs, TASK, deps, described, failed_outputs, task};

const DEP: &str = "ecs-svc/1111";

fn target() -> Target {
    Target {
        cluster: "app".into(),
        service: "web".into(),
        deployment_id: DEP.into(),
        essentials: vec!["app".into()],
        logs: Default::default(),
        wait_until: Default::default(),
    }
}

fn deployment(
    id: &str,
    status: &str,
    state: DeploymentRolloutState,
    running: i32,
    pending: i32,
) -> Deployment {
    Deployment::builder()
        .id(id)
        .status(status)
        .desired_count(1)
        .running_count(running)
        .pending_count(pending)
        .rollout_state(state)
        .rollout_state_reason(format!("ECS deployment {id} in progress."))
        .created_at(DateTime::from_secs(1_000))
        .build()
}

fn event(id: &str, at: i64, message: &str) -> ServiceEvent {
    ServiceEvent::builder()
        .id(id)
        .created_at(DateTime::from_secs(at))
        .message(message)
        .build()
}

fn service(deployments: Vec<Deployment>, events: Vec<ServiceEvent>) -> Rule {
    let svc = Service::builder()
        .service_name("web")
        .status("ACTIVE")
        .set_deployments(Some(deployments))
        .set_events(Some(events))
        .build();
    let out = DescribeServicesOutput::builder().services(svc).build();
    mock!(Client::describe_services)
        .match_requests(|r| r.cluster() == Some("app") && r.services() == ["web"])
        .then_output(move || out.clone())
}

fn stopped_list(arns: &[&str]) -> Rule {
    let out = ListTasksOutput::builder()
        .set_task_arns(Some(arns.iter().map(|s| s.to_string()).collect()))
        .build();
    mock!(Client::list_tasks)
        .match_requests(|r| r.started_by() == Some(DEP))
        .then_output(move || out.clone())
}

use DeploymentRolloutState::{Completed, Failed, InProgress};

#[tokio::test]
async fn success_is_completed_with_running_equal_to_desired() {
    let d = deps(&[
        service(
            vec![deployment(DEP, "PRIMARY", InProgress, 0, 1)],
            vec![
                event("e0", 900, "old event"),
                event("e1", 1_001, "(service web) has started 1 tasks"),
            ],
        ),
        stopped_list(&[]),
        // Reported COMPLETED while a task is still counted as pending is not done yet.
        service(vec![deployment(DEP, "PRIMARY", Completed, 0, 1)], vec![]),
        stopped_list(&[]),
        service(
            vec![deployment(DEP, "PRIMARY", Completed, 1, 0)],
            vec![event(
                "e2",
                1_030,
                "(service web) has reached a steady state.",
            )],
        ),
    ]);
    let outcome = follow(&d, &target()).await.unwrap();
    assert_eq!(outcome.rollout_state.as_deref(), Some("COMPLETED"));
    assert_eq!((outcome.running, outcome.desired), (1, 1));
    assert_eq!(outcome.deployment_id.as_deref(), Some(DEP));
    assert_eq!(
        d.clock.elapsed(),
        Duration::from_secs(12),
        "two polls of 6s"
    );
    // Each new event once, oldest first; the event older than the deployment is not printed.
    assert_eq!(
        d.progress.lines(),
        [
            "event: (service web) has started 1 tasks",
            "event: (service web) has reached a steady state.",
        ]
    );
}

#[tokio::test]
async fn circuit_breaker_rollback_fails_with_exit_3_and_the_reason() {
    let d = deps(&[
        service(vec![deployment(DEP, "PRIMARY", InProgress, 0, 1)], vec![]),
        stopped_list(&[TASK]),
        described(task(
            "STOPPED",
            Some("Essential container in task exited"),
            &[("app", Some(1))],
        )),
        service(
            vec![
                deployment("ecs-svc/2222", "PRIMARY", InProgress, 0, 1),
                Deployment::builder()
                    .id(DEP)
                    .status("ACTIVE")
                    .desired_count(1)
                    .rollout_state(Failed)
                    .rollout_state_reason("ECS deployment circuit breaker: tasks failed to start.")
                    .build(),
            ],
            vec![event(
                "e3",
                1_100,
                "(service web) rolling back to deployment ecs-svc/0000.",
            )],
        ),
    ]);
    let err = follow(&d, &target()).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    let text = err.to_string();
    assert!(text.contains("failed and was rolled back"), "{text}");
    assert!(
        text.contains("circuit breaker: tasks failed to start"),
        "{text}"
    );
    // What the user read: the stopped task with its container's exit code, then the event.
    let short = TASK.rsplit('/').next().unwrap();
    let lines = d.progress.lines();
    assert_eq!(
        lines[..2],
        [
            format!("task {short} stopped: Essential container in task exited"),
            "  container app: exit code 1".to_string(),
        ],
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("event: (service web) rolling back to deployment ecs-svc/0000."),
        "{lines:#?}"
    );
    // A CI job that goes on `if: failure()` reads what is known in the format it asked for.
    let env = failed_outputs(&err, OutputFormat::Env);
    assert_eq!(env["ECSKIT_DEPLOYMENT_ID"], DEP, "{env:?}");
    assert_eq!(env["ECSKIT_ROLLOUT_STATE"], "FAILED", "{env:?}");
    assert!(env["ECSKIT_FAILURE"].contains("rolled back"), "{env:?}");
    let github = ecskit::cli::failure_output(&err, OutputFormat::Github).unwrap();
    assert!(github.contains("rollout_state=FAILED\n"), "{github}");
}

#[tokio::test]
async fn cannot_pull_container_fails_fast() {
    let reason = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-west-2.amazonaws.com/web:nope: not found";
    let d = deps(&[
        service(vec![deployment(DEP, "PRIMARY", InProgress, 0, 1)], vec![]),
        stopped_list(&[TASK]),
        described(task("STOPPED", Some(reason), &[("app", None)])),
    ]);
    let err = follow(&d, &target()).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string().contains("CannotPullContainerError"),
        "{err}"
    );
    assert!(err.hint_text().unwrap().contains("image URI"));
    assert_eq!(
        d.clock.elapsed(),
        Duration::ZERO,
        "no waiting for the timeout"
    );
}

#[tokio::test]
async fn essential_container_crashing_again_and_again_fails() {
    let arns = [
        "arn:aws:ecs:us-west-2:123456789012:task/app/a",
        "arn:aws:ecs:us-west-2:123456789012:task/app/b",
        "arn:aws:ecs:us-west-2:123456789012:task/app/c",
    ];
    let mut rules = Vec::new();
    for i in 0..3 {
        rules.push(service(
            vec![deployment(DEP, "PRIMARY", InProgress, 0, 1)],
            vec![],
        ));
        let listed: Vec<&str> = arns[..=i].to_vec();
        rules.push(stopped_list(&listed));
        // Only the new task is described: the ones reported before are not asked for again.
        let arn = arns[i].to_string();
        let t = Task::builder()
            .task_arn(&arn)
            .last_status("STOPPED")
            .stopped_reason("Essential container in task exited")
            .containers(Container::builder().name("app").exit_code(137).build())
            .build();
        let out = DescribeTasksOutput::builder().tasks(t).build();
        rules.push(
            mock!(Client::describe_tasks)
                .match_requests(move |r| r.tasks() == [arn.as_str()])
                .then_output(move || out.clone()),
        );
    }
    let d = deps(&rules);
    let err = follow(&d, &target()).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("exited non-zero 3 times"), "{err}");
}

#[tokio::test]
async fn no_progress_timeout_ends_the_wait() {
    let mut rules = Vec::new();
    for _ in 0..20 {
        rules.push(service(
            vec![deployment(DEP, "PRIMARY", InProgress, 0, 1)],
            vec![],
        ));
        rules.push(stopped_list(&[]));
    }
    let d = deps(&rules);
    let err = follow(&d, &target()).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(err.to_string().contains("made no progress for 1m"), "{err}");
    assert_eq!(d.clock.elapsed(), Duration::from_secs(60));
}

/// What ECS answers CreateService while the role it must assume has not propagated yet.
fn create_not_assumable(token: &Arc<Mutex<Option<String>>>) -> Rule {
    mock!(Client::create_service)
        .match_requests(create_request(token.clone()))
        .then_error(|| {
        let message = "Unable to assume role and validate the specified targetGroupArn. Please verify that the ECS service role being passed has the proper permissions.";
        CreateServiceError::InvalidParameterException(
            InvalidParameterException::builder()
                .message(message)
                .meta(
                    ErrorMetadata::builder()
                        .code("InvalidParameterException")
                        .message(message)
                        .build(),
                )
                .build(),
        )
    })
}

const WEB_TD: &str = "arn:aws:ecs:us-west-2:123456789012:task-definition/web:3";
const WEB_SVC: &str = "arn:aws:ecs:us-west-2:123456789012:service/app/web";

/// CreateService as asked, with the same client token on every attempt (a retried create never
/// makes two services).
fn create_request(token: Arc<Mutex<Option<String>>>) -> impl Fn(&CreateServiceInput) -> bool {
    move |r: &CreateServiceInput| {
        let Some(t) = r.client_token() else {
            return false;
        };
        let mut seen = token.lock().unwrap();
        let same = seen.get_or_insert_with(|| t.to_string()) == t;
        same && r.cluster() == Some("app")
            && r.service_name() == Some("web")
            && r.task_definition() == Some(WEB_TD)
            && r.network_configuration()
                .and_then(|n| n.awsvpc_configuration())
                .map(|a| a.subnets() == ["subnet-0a1b2c3d"])
                == Some(true)
    }
}

#[tokio::test]
async fn create_service_is_retried_while_the_role_is_not_assumable_then_succeeds() {
    let td = DescribeTaskDefinitionOutput::builder()
        .task_definition(
            TaskDefinition::builder()
                .task_definition_arn(WEB_TD)
                .family("web")
                .revision(3)
                .status(TaskDefinitionStatus::Active)
                .network_mode(NetworkMode::Awsvpc)
                .container_definitions(ContainerDefinition::builder().name("app").build())
                .build(),
        )
        .build();
    let cluster = DescribeClustersOutput::builder()
        .clusters(
            Cluster::builder()
                .cluster_name("app")
                .cluster_arn("arn:aws:ecs:us-west-2:123456789012:cluster/app")
                .status("ACTIVE")
                .build(),
        )
        .build();
    let created = CreateServiceOutput::builder()
        .service(
            Service::builder()
                .service_arn(WEB_SVC)
                .service_name("web")
                .status("ACTIVE")
                .desired_count(1)
                .deployments(deployment(DEP, "PRIMARY", InProgress, 0, 0))
                .build(),
        )
        .build();
    let token = Arc::new(Mutex::new(None));
    let d = deps(&[
        mock!(Client::describe_task_definition)
            .match_requests(|r| r.task_definition() == Some("web:3"))
            .then_output(move || td.clone()),
        // No service yet (read before the cluster is looked at: every refusal comes first).
        mock!(Client::describe_services).then_output(|| DescribeServicesOutput::builder().build()),
        mock!(Client::describe_clusters).then_output(move || cluster.clone()),
        create_not_assumable(&token),
        create_not_assumable(&token),
        mock!(Client::create_service)
            .match_requests(create_request(token.clone()))
            .then_output(move || created.clone()),
        // The watch: this run's deployment completes.
        service(vec![deployment(DEP, "PRIMARY", Completed, 1, 0)], vec![]),
    ]);
    let args = ecskit::service_run::Args::try_parse_from([
        "service-run",
        "--region",
        "us-west-2",
        "--cluster",
        "app",
        "--service",
        "web",
        "--task-definition",
        "web:3",
        "--subnets",
        "subnet-0a1b2c3d",
        "--security-groups",
        "sg-0c2d3e4f",
    ])
    .unwrap();
    let report = run_with(&d, &args).await.unwrap();
    assert_eq!(
        d.clock.elapsed(),
        Duration::from_secs(5 + 10),
        "backoff 5s then 10s, and no polling wait for a deployment already completed"
    );
    assert!(token.lock().unwrap().is_some(), "CreateService was matched");
    assert_eq!(report.get_str("SERVICE_ARN").as_deref(), Some(WEB_SVC));
    assert_eq!(report.get_str("DEPLOYMENT_ID").as_deref(), Some(DEP));
    // One create announced for the three attempts.
    let creates: Vec<&String> = report
        .actions
        .iter()
        .filter(|a| a.starts_with("create service web"))
        .collect();
    assert_eq!(creates.len(), 1, "{:?}", report.actions);
    assert!(report.changed);
}

/// A circuit-breaker rollback whose stopped task logged through awslogs: the failure report
/// carries the container's last lines, read from the stream ECS names, in the error's details
/// (`--output json`'s `failures[].log_tail`).
#[tokio::test]
async fn a_rollback_report_carries_the_failing_containers_last_log_lines() {
    // GetLogEvents' answer for the failing container's stream.
    let recorded = RecordedLogs {
        answers: vec![
            r#"{"events":[
            {"timestamp":1,"message":"starting snaplex jcc","ingestionTime":2},
            {"timestamp":3,"message":"FATAL: cannot read s3://cfg/app/global.properties: AccessDenied\n","ingestionTime":4}],
            "nextForwardToken":"f/1","nextBackwardToken":"b/1"}"#,
        ],
        ..Default::default()
    };
    let mut d = deps(&[
        service(vec![deployment(DEP, "PRIMARY", InProgress, 0, 1)], vec![]),
        stopped_list(&[TASK]),
        described(task(
            "STOPPED",
            Some("Essential container in task exited"),
            &[("app", Some(1))],
        )),
        service(
            vec![
                deployment("ecs-svc/2222", "PRIMARY", InProgress, 0, 1),
                Deployment::builder()
                    .id(DEP)
                    .status("ACTIVE")
                    .desired_count(1)
                    .rollout_state(Failed)
                    .rollout_state_reason("ECS deployment circuit breaker: tasks failed to start.")
                    .build(),
            ],
            vec![],
        ),
    ]);
    d.ctx = recorded.ctx();
    let mut t = target();
    t.logs.insert(
        "app".into(),
        Some(ecskit::service_run::logs::AwsLogs {
            group: "/ecs/web".into(),
            stream_prefix: Some("ecs".into()),
            region: None,
        }),
    );
    let err = follow(&d, &t).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    let asked = recorded.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let request: serde_json::Value = serde_json::from_str(&asked[0]).unwrap();
    assert_eq!(request["logGroupName"], "/ecs/web");
    assert_eq!(
        request["logStreamName"],
        format!("ecs/app/{}", TASK.rsplit('/').next().unwrap())
    );
    assert_eq!(request["limit"], 20);
    let details = err.details().expect("the failure report is attached");
    assert_eq!(
        details["failures"],
        serde_json::json!([{
            "task": TASK,
            "container": "app",
            "exit_code": 1,
            "reason": "Essential container in task exited",
            "log_tail": [
                "starting snaplex jcc",
                "FATAL: cannot read s3://cfg/app/global.properties: AccessDenied"
            ]
        }])
    );
}

#[tokio::test]
async fn a_superseded_deployment_ends_the_wait_with_exit_3() {
    let d = deps(&[
        service(
            vec![
                deployment("ecs-svc/9999", "PRIMARY", InProgress, 0, 1),
                deployment(DEP, "ACTIVE", InProgress, 1, 0),
            ],
            vec![],
        ),
        stopped_list(&[]),
    ]);
    let err = follow(&d, &target()).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        err.to_string(),
        format!("deployment {DEP} of service web was superseded by deployment ecs-svc/9999")
    );
    assert!(err.hint_text().unwrap().contains("--watch"));
}

#[tokio::test]
async fn resource_initialization_error_fails_fast_naming_the_execution_role() {
    let reason = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: AccessDeniedException";
    let d = deps(&[
        service(vec![deployment(DEP, "PRIMARY", InProgress, 0, 1)], vec![]),
        stopped_list(&[TASK]),
        described(task("STOPPED", Some(reason), &[("app", None)])),
    ]);
    let err = follow(&d, &target()).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string()
            .contains("cannot start tasks: ResourceInitializationError"),
        "{err}"
    );
    assert!(err.hint_text().unwrap().contains("execution role"));
    assert_eq!(
        d.clock.elapsed(),
        Duration::ZERO,
        "no waiting for the timeout"
    );
}

#[tokio::test]
async fn the_timeout_ends_a_wait_that_keeps_moving() {
    // The running count changes on every poll (so the no-progress limit never trips), and the
    // deployment never completes: --timeout ends it.
    let mut rules = Vec::new();
    for i in 0..12 {
        rules.push(service(
            vec![deployment(DEP, "PRIMARY", InProgress, i % 2, 1)],
            vec![],
        ));
        rules.push(stopped_list(&[]));
    }
    let mut d = deps(&rules);
    d.timing.timeout = Duration::from_secs(30);
    let err = follow(&d, &target()).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        err.to_string(),
        format!("deployment {DEP} of service web did not finish within 30s")
    );
    assert_eq!(d.clock.elapsed(), Duration::from_secs(30));
}

#[tokio::test]
async fn watch_attaches_to_the_current_deployment_and_reports_it() {
    let td = DescribeTaskDefinitionOutput::builder()
        .task_definition(
            TaskDefinition::builder()
                .task_definition_arn(WEB_TD)
                .family("web")
                .revision(3)
                .container_definitions(ContainerDefinition::builder().name("app").build())
                .build(),
        )
        .build();
    let svc = Service::builder()
        .service_name("web")
        .service_arn(WEB_SVC)
        .cluster_arn("arn:aws:ecs:us-west-2:123456789012:cluster/app")
        .status("ACTIVE")
        .task_definition(WEB_TD)
        .deployments(
            Deployment::builder()
                .id(DEP)
                .status("PRIMARY")
                .task_definition(WEB_TD)
                .desired_count(1)
                .running_count(1)
                .pending_count(0)
                .rollout_state(Completed)
                .created_at(DateTime::from_secs(1_000))
                .build(),
        )
        .build();
    let first = DescribeServicesOutput::builder().services(svc).build();
    let d = deps(&[
        mock!(Client::describe_services).then_output(move || first.clone()),
        mock!(Client::describe_task_definition)
            .match_requests(|r| r.task_definition() == Some(WEB_TD))
            .then_output(move || td.clone()),
        service(vec![deployment(DEP, "PRIMARY", Completed, 1, 0)], vec![]),
    ]);
    let args = ecskit::service_run::Args::try_parse_from([
        "service-run",
        "--region",
        "us-west-2",
        "--cluster",
        "app",
        "--service",
        "web",
        "--watch",
    ])
    .unwrap();
    let report = run_with(&d, &args).await.unwrap();
    assert_eq!(report.get_str("SERVICE_ARN").as_deref(), Some(WEB_SVC));
    assert_eq!(report.get_str("DEPLOYMENT_ID").as_deref(), Some(DEP));
    assert_eq!(
        report.get_str("ROLLOUT_STATE").as_deref(),
        Some("COMPLETED")
    );
    assert!(!report.changed, "--watch changes nothing");
}
