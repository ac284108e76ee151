//! The policy-simulator part of verify on recorded answers: moto has no
//! `iam:SimulatePrincipalPolicy`, so what IAM would answer is replayed here (aws-smithy-mocks).

use aws_config::{BehaviorVersion, Region};
use aws_sdk_iam::Client;
use aws_sdk_iam::operation::simulate_principal_policy::{
    SimulatePrincipalPolicyError, SimulatePrincipalPolicyOutput,
};
use aws_sdk_iam::types::{EvaluationResult, PolicyEvaluationDecisionType};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use ecskit::verify::Level;
use ecskit::verify::permissions::{Question, simulate};

/// An IAM client answering from `rules`, each request by the first rule that matches it.
fn mock_iam_any(rules: &[Rule]) -> Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    Client::from_conf(conf)
}

fn decision(action: &'static str, d: PolicyEvaluationDecisionType) -> Rule {
    mock!(Client::simulate_principal_policy)
        .match_requests(move |r| r.action_names() == [action])
        .then_output(move || {
            SimulatePrincipalPolicyOutput::builder()
                .evaluation_results(
                    EvaluationResult::builder()
                        .eval_action_name(action)
                        .eval_decision(d.clone())
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

fn question(action: &'static str, resource: &str) -> Question {
    Question {
        role: "arn:aws:iam::123456789012:role/web-execution".into(),
        action,
        resource: resource.into(),
    }
}

#[tokio::test]
async fn an_allowed_action_is_ok_and_a_denied_one_fails_naming_it() {
    let iam = mock_iam_any(&[
        decision("ecr:BatchGetImage", PolicyEvaluationDecisionType::Allowed),
        decision(
            "ssm:GetParameters",
            PolicyEvaluationDecisionType::ImplicitDeny,
        ),
    ]);
    let checks = simulate(
        &iam,
        vec![
            question(
                "ecr:BatchGetImage",
                "arn:aws:ecr:us-west-2:123456789012:repository/web",
            ),
            question(
                "ssm:GetParameters",
                "arn:aws:ssm:us-west-2:123456789012:parameter/web/token",
            ),
        ],
    )
    .await;
    let lines: Vec<(Level, String)> = checks.iter().map(|c| (c.level, c.line())).collect();
    assert_eq!(
        lines,
        [
            (
                Level::Ok,
                "ok       permission arn:aws:iam::123456789012:role/web-execution: web-execution may ecr:BatchGetImage on arn:aws:ecr:us-west-2:123456789012:repository/web".to_string()
            ),
            (
                Level::Failure,
                "failure  permission arn:aws:iam::123456789012:role/web-execution: web-execution may not ssm:GetParameters on arn:aws:ssm:us-west-2:123456789012:parameter/web/token: add it to the role's policy".to_string()
            ),
        ]
    );
}

#[tokio::test]
async fn a_caller_without_the_simulator_gets_one_warning() {
    let iam = mock_iam_any(&[mock!(Client::simulate_principal_policy).then_error(|| {
        aws_sdk_iam::operation::simulate_principal_policy::SimulatePrincipalPolicyError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("AccessDenied")
                .message("not allowed")
                .build(),
        )
    })]);
    let checks = simulate(
        &iam,
        vec![
            question("ecr:BatchGetImage", "*"),
            question("ssm:GetParameters", "*"),
        ],
    )
    .await;
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].level, Level::Warning);
    assert_eq!(
        checks[0].message,
        "the caller may not call iam:SimulatePrincipalPolicy: the roles' permissions were not checked (2 of 2 questions not asked)"
    );
}

fn iam_error(code: &'static str) -> SimulatePrincipalPolicyError {
    SimulatePrincipalPolicyError::generic(
        aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message("recorded")
            .build(),
    )
}

fn allowed() -> SimulatePrincipalPolicyOutput {
    SimulatePrincipalPolicyOutput::builder()
        .evaluation_results(
            EvaluationResult::builder()
                .eval_action_name("any")
                .eval_decision(PolicyEvaluationDecisionType::Allowed)
                .build()
                .unwrap(),
        )
        .build()
}

/// A question the simulator denies, and its answer: the failure that a later error must leave
/// standing.
fn denied_question() -> Question {
    question(
        "ssm:GetParameters",
        "arn:aws:ssm:us-west-2:123456789012:parameter/t",
    )
}

fn denied() -> Rule {
    decision(
        "ssm:GetParameters",
        PolicyEvaluationDecisionType::ImplicitDeny,
    )
}

fn levels(checks: &[ecskit::verify::Check]) -> Vec<Level> {
    checks.iter().map(|c| c.level).collect()
}

/// A question that errors (here with a code that is not retried) is a warning of its own: the
/// failure found before it stays a failure, and the questions after it are still asked.
#[tokio::test]
async fn a_question_that_errors_does_not_erase_a_failed_check() {
    let iam = mock_iam_any(&[
        denied(),
        mock!(Client::simulate_principal_policy)
            .match_requests(|r| r.action_names() == ["logs:PutLogEvents"])
            .then_error(|| iam_error("InvalidInput")),
        decision("ecr:BatchGetImage", PolicyEvaluationDecisionType::Allowed),
    ]);
    let (checks, unanswered) = ecskit::verify::permissions::simulate_all(
        &iam,
        vec![
            denied_question(),
            question(
                "logs:PutLogEvents",
                "arn:aws:logs:us-west-2:123456789012:log-group:/x:*",
            ),
            question(
                "ecr:BatchGetImage",
                "arn:aws:ecr:us-west-2:123456789012:repository/web",
            ),
        ],
    )
    .await;
    // The question not answered is a failure of the check (exit 1 when nothing else failed),
    // never a pass.
    let unanswered = unanswered.expect("the unanswered question is carried");
    assert_eq!(unanswered.exit_code(), 1);
    assert!(
        unanswered.to_string().contains("logs:PutLogEvents"),
        "{unanswered}"
    );
    assert_eq!(
        levels(&checks),
        [Level::Failure, Level::Warning, Level::Ok],
        "{checks:#?}"
    );
    assert!(
        checks[1]
            .message
            .contains("whether web-execution may logs:PutLogEvents on"),
        "{}",
        checks[1].message
    );
    let verdict = ecskit::verify::Checks(checks).conclude().unwrap_err();
    assert_eq!(verdict.exit_code(), 2);
}

/// IAM's `Throttling` is retried (the SDK's standard retry counts it as throttling; the
/// simulator gets 5 attempts, so three throttles in a row still end in an answer).
#[tokio::test]
async fn a_throttled_question_is_retried() {
    let throttled = mock!(Client::simulate_principal_policy)
        .sequence()
        .error(|| iam_error("Throttling"))
        .times(3)
        .output(allowed)
        .build();
    let iam = mock_iam_any(std::slice::from_ref(&throttled));
    let checks = simulate(&iam, vec![question("ecr:BatchGetImage", "*")]).await;
    assert_eq!(levels(&checks), [Level::Ok], "{checks:#?}");
    assert_eq!(throttled.num_calls(), 4);
}

/// The same question raised twice (two containers of one image) is asked once.
#[tokio::test]
async fn a_duplicate_question_is_asked_once() {
    let rule = decision("ecr:BatchGetImage", PolicyEvaluationDecisionType::Allowed);
    let iam = mock_iam_any(std::slice::from_ref(&rule));
    let q = question(
        "ecr:BatchGetImage",
        "arn:aws:ecr:us-west-2:123456789012:repository/web",
    );
    let checks = simulate(&iam, vec![q.clone(), q.clone(), q]).await;
    assert_eq!(levels(&checks), [Level::Ok]);
    assert_eq!(rule.num_calls(), 1);
}

/// Where the simulator is not there (moto answers an HTML page with 500), one warning stands
/// for the questions not asked, beside the failure already found; the page is not retried.
#[tokio::test]
async fn an_unavailable_simulator_is_one_warning_beside_the_checks_made() {
    let page = mock!(Client::simulate_principal_policy)
        .match_requests(|r| r.action_names() == ["logs:PutLogEvents"])
        .sequence()
        .http_status(
            500,
            Some("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>500 Internal Server Error</title>".into()),
        )
        .repeatedly()
        .build();
    let iam = mock_iam_any(&[denied(), page.clone()]);
    let checks = simulate(
        &iam,
        vec![
            denied_question(),
            question("logs:PutLogEvents", "*"),
            question("ecr:BatchGetImage", "*"),
        ],
    )
    .await;
    assert_eq!(
        levels(&checks),
        [Level::Failure, Level::Warning],
        "{checks:#?}"
    );
    assert!(
        checks[1]
            .message
            .contains("not available here (the endpoint answered a web page, not IAM): the roles' permissions were not checked (2 of 3 questions not asked)"),
        "{}",
        checks[1].message
    );
    assert_eq!(page.num_calls(), 1, "a web page is not retried");
}
