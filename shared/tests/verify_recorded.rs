//! The policy-simulator part of verify on recorded answers: moto has no
//! `iam:SimulatePrincipalPolicy`, so what IAM would answer is replayed here (aws-smithy-mocks).

use aws_config::{BehaviorVersion, Region};
use aws_sdk_iam::Client;
use aws_sdk_iam::operation::simulate_principal_policy::SimulatePrincipalPolicyOutput;
use aws_sdk_iam::types::{EvaluationResult, PolicyEvaluationDecisionType};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use ecskit::verify::Level;
use ecskit::verify::permissions::{Question, simulate};

fn mock_iam(rules: &[Rule]) -> Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::Sequential);
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
    let iam = mock_iam(&[
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
    let iam = mock_iam(&[mock!(Client::simulate_principal_policy).then_error(|| {
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
        "the caller may not call iam:SimulatePrincipalPolicy: the roles' permissions were not checked"
    );
}
