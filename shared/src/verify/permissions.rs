//! What the roles may do, asked of IAM's policy simulator: the execution role must read the
//! secrets and env files, pull the image and write the logs; the task role must reach the S3
//! prefix the stack names. Existence checks cannot see a missing permission; the simulator can.
//!
//! Where the simulator is not available (emulators, or a caller without
//! `iam:SimulatePrincipalPolicy`), one warning says so and nothing else is claimed; the checks
//! already made stay, and a question that errors otherwise is a warning of its own.

use aws_sdk_iam::types::PolicyEvaluationDecisionType;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};

use super::Check;
use super::resources::{SecretRef, registry_of, s3_object, secret_ref};
use super::subject::TaskSubject;
use crate::aws::Ctx;
use crate::ecr::{EcrHost, Registry};
use crate::error::sdk_code;

/// One question for the simulator: may `role` do `action` on `resource`?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub role: String,
    pub action: &'static str,
    pub resource: String,
}

/// The questions a task definition raises, in a stable order.
pub fn questions(
    task: &TaskSubject,
    partition: &str,
    region: &str,
    account: &str,
) -> Vec<Question> {
    let mut q = Vec::new();
    if let Some(exec) = &task.execution_role_arn {
        let mut ask = |action, resource: String| {
            q.push(Question {
                role: exec.clone(),
                action,
                resource,
            })
        };
        for c in &task.containers {
            if let Some((host, rest)) = registry_of(&c.image)
                && let Some(registry) = crate::ecr::registry(host)
            {
                // The repository is in the image's account and region; only the registry the
                // user named (the local stack's) has none of its own, and stands for the caller's.
                let ecr = match registry {
                    Registry::Ecr(ecr) => ecr,
                    Registry::Endpoint(_) => EcrHost {
                        account: account.to_string(),
                        region: region.to_string(),
                        fips: false,
                    },
                };
                let repo = rest.split(['@', ':']).next().unwrap_or(rest);
                ask("ecr:GetAuthorizationToken", "*".into());
                ask("ecr:BatchGetImage", ecr.repository_arn(repo));
                ask("ecr:GetDownloadUrlForLayer", ecr.repository_arn(repo));
            }
            for (_, value_from) in &c.secrets {
                match secret_ref(value_from) {
                    SecretRef::Parameter(p) if p.starts_with("arn:") => ask("ssm:GetParameters", p),
                    SecretRef::Parameter(p) => ask(
                        "ssm:GetParameters",
                        format!(
                            "arn:{partition}:ssm:{region}:{account}:parameter/{}",
                            p.trim_start_matches('/')
                        ),
                    ),
                    SecretRef::Secret { arn, .. } => ask("secretsmanager:GetSecretValue", arn),
                }
            }
            for f in &c.env_files {
                if let Some((bucket, key)) = s3_object(f) {
                    ask(
                        "s3:GetObject",
                        format!("arn:{partition}:s3:::{bucket}/{key}"),
                    );
                }
            }
            if let Some(logs) = &c.awslogs {
                let group = format!(
                    "arn:{partition}:logs:{}:{account}:log-group:{}",
                    logs.region.as_deref().unwrap_or(region),
                    logs.group
                );
                ask("logs:CreateLogStream", format!("{group}:*"));
                ask("logs:PutLogEvents", format!("{group}:*"));
                if logs.create_group {
                    ask("logs:CreateLogGroup", group);
                }
            }
        }
    }
    if let (Some(task_role), Some((bucket, prefix))) = (&task.task_role_arn, &task.s3_reach) {
        let key = if prefix.is_empty() {
            "*".to_string()
        } else {
            format!("{prefix}/*")
        };
        q.push(Question {
            role: task_role.clone(),
            action: "s3:GetObject",
            resource: format!("arn:{partition}:s3:::{bucket}/{key}"),
        });
    }
    q
}

/// Asks the simulator every question; one check per question, or one warning when the
/// simulator cannot be used here.
///
/// The error of the first question that could not be answered (throttled past the retries,
/// an outage) comes back beside the checks: verify makes it exit 1 unless a check failed, as
/// it does a registry that did not answer. A question not answered is never a pass.
///
/// The questions are the key of the answer the steps of one deploy share (`memo`): services
/// whose roles and resources are the same ask them once.
pub async fn check(
    ctx: &Ctx,
    task: &TaskSubject,
    memo: &super::memo::Memo,
    key: &dyn Fn(&str, serde_json::Value) -> serde_json::Value,
) -> (Vec<Check>, Option<crate::Error>) {
    let (Ok(account), Some(region)) = (ctx.account_id().await, ctx.region()) else {
        return (Vec::new(), None);
    };
    let partition = crate::iam::policy::partition(region);
    let questions = questions(task, partition, region, &account);
    let asked: Vec<[&str; 3]> = questions
        .iter()
        .map(|q| [q.role.as_str(), q.action, q.resource.as_str()])
        .collect();
    let key = key("permission", serde_json::json!(asked));
    let iam = ctx.iam();
    memo.checks(key, || simulate_all(&iam, questions)).await
}

/// [`simulate_all`]'s checks alone.
pub async fn simulate(iam: &aws_sdk_iam::Client, questions: Vec<Question>) -> Vec<Check> {
    simulate_all(iam, questions).await.0
}

/// Asks IAM's simulator each question once (a question two containers raise is one
/// question), one check per question. A question that cannot be answered gets its own
/// warning and never replaces the checks made before it. Only where the simulator cannot be
/// used at all (an emulator without it, a caller without `iam:SimulatePrincipalPolicy`) does
/// one warning stand for the questions not asked, beside the checks already made.
///
/// Throttling is retried by the SDK's standard retry (its classifier counts IAM's
/// `Throttling` code among the throttling errors): IAM's rate is low and a deploy runs many
/// jobs at once, so the simulator gets more attempts than other calls.
pub async fn simulate_all(
    iam: &aws_sdk_iam::Client,
    questions: Vec<Question>,
) -> (Vec<Check>, Option<crate::Error>) {
    let mut failed: Option<crate::Error> = None;
    let mut unique: Vec<Question> = Vec::new();
    for q in questions {
        if !unique.contains(&q) {
            unique.push(q);
        }
    }
    let total = unique.len();
    let mut checks = Vec::new();
    for (asked, q) in unique.into_iter().enumerate() {
        let answer = iam
            .simulate_principal_policy()
            .policy_source_arn(&q.role)
            .action_names(q.action)
            .resource_arns(&q.resource)
            .customize()
            .config_override(
                aws_sdk_iam::config::Builder::default()
                    .retry_config(
                        aws_sdk_iam::config::retry::RetryConfig::standard()
                            .with_max_attempts(SIMULATOR_ATTEMPTS),
                    )
                    .retry_classifier(NotThere),
            )
            .send()
            .await;
        let result = match answer {
            Ok(out) => out,
            Err(e) => {
                if let Some(why) = unavailable(&e) {
                    checks.push(Check::warning(
                        "permission",
                        "iam:SimulatePrincipalPolicy",
                        format!(
                            "{why}: the roles' permissions were not checked ({} of {total} questions not asked)",
                            total - asked
                        ),
                    ));
                    return (checks, failed);
                }
                failed.get_or_insert_with(|| {
                    crate::Error::aws(
                        format!("asking IAM's simulator whether {} may {}", q.role, q.action),
                        crate::error::flatten(&e),
                    )
                    .hint("the permission was not checked: run again (IAM's rate is low; fewer --jobs helps), or pass --no-verify")
                });
                checks.push(Check::warning(
                    "permission",
                    &q.role,
                    format!(
                        "whether {} may {} on {} was not answered: {}",
                        super::resources::role_name(&q.role),
                        q.action,
                        q.resource,
                        crate::error::flatten(&e)
                    ),
                ));
                continue;
            }
        };
        let allowed = result
            .evaluation_results()
            .iter()
            .all(|r| r.eval_decision() == &PolicyEvaluationDecisionType::Allowed);
        let role = super::resources::role_name(&q.role);
        checks.push(if allowed {
            Check::ok(
                "permission",
                &q.role,
                format!("{role} may {} on {}", q.action, q.resource),
            )
        } else {
            Check::failure(
                "permission",
                &q.role,
                format!(
                    "{role} may not {} on {}: add it to the role's policy",
                    q.action, q.resource
                ),
            )
        });
    }
    (checks, failed)
}

/// Attempts per simulator question (the SDK's default is 3).
const SIMULATOR_ATTEMPTS: u32 = 5;

/// Why the simulator cannot be used here at all, when that is what an error says: the caller
/// may not call it, or the endpoint does not implement it (moto answers an HTML page with 500).
/// Any other error (an AWS error code, a throttle that outlasted the retries) is about one
/// question, not about the simulator.
fn unavailable(
    e: &aws_sdk_iam::error::SdkError<
        aws_sdk_iam::operation::simulate_principal_policy::SimulatePrincipalPolicyError,
    >,
) -> Option<String> {
    match sdk_code(e) {
        Some("AccessDenied" | "AccessDeniedException") => {
            Some("the caller may not call iam:SimulatePrincipalPolicy".to_string())
        }
        Some("NotImplemented" | "InvalidAction") => Some(format!(
            "IAM's policy simulator is not available here ({})",
            crate::error::flatten(e)
        )),
        Some(_) => None,
        None => {
            let page = e.raw_response().is_some_and(web_page);
            page.then(|| {
                "IAM's policy simulator is not available here (the endpoint answered a web page, not IAM)"
                    .to_string()
            })
        }
    }
}

/// Whether an answer is a web page where IAM's XML should be: an endpoint without the
/// simulator (moto answers its HTML 500 page).
fn web_page(r: &aws_smithy_runtime_api::http::Response) -> bool {
    let body = r.body().bytes().unwrap_or_default();
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_lowercase();
    matches!(r.status().as_u16(), 500 | 501)
        && (head.contains("<!doctype html") || head.contains("<html"))
}

/// Keeps the SDK from retrying a [`web_page`]: it will not change, and retries with backoff
/// would make every verify against an emulator seconds slower. Throttling and IAM's own
/// server errors are still retried (this runs after the SDK's classifiers and says nothing
/// about them).
#[derive(Debug)]
struct NotThere;

impl ClassifyRetry for NotThere {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response() {
            Some(r) if web_page(r) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "the policy simulator is not there"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::subject::{AwsLogs, Container};

    #[test]
    fn a_task_definition_raises_the_questions_ecs_would() {
        let task = TaskSubject {
            family: "web".into(),
            task_role_arn: Some("arn:aws:iam::123456789012:role/web-task".into()),
            execution_role_arn: Some("arn:aws:iam::123456789012:role/web-execution".into()),
            cpu_architecture: "X86_64".into(),
            containers: vec![Container {
                name: "app".into(),
                image: "123456789012.dkr.ecr.us-west-2.amazonaws.com/web:v1".into(),
                secrets: vec![("TOKEN".into(), "/web/token".into())],
                env_files: vec!["arn:aws:s3:::cfg/web/app.env".into()],
                awslogs: Some(AwsLogs {
                    group: "/ecs/web".into(),
                    create_group: false,
                    region: None,
                }),
            }],
            s3_reach: Some(("cfg".into(), "web".into())),
        };
        let q = questions(&task, "aws", "us-west-2", "123456789012");
        let lines: Vec<String> = q
            .iter()
            .map(|q| format!("{} {}", q.action, q.resource))
            .collect();
        assert_eq!(
            lines,
            [
                "ecr:GetAuthorizationToken *",
                "ecr:BatchGetImage arn:aws:ecr:us-west-2:123456789012:repository/web",
                "ecr:GetDownloadUrlForLayer arn:aws:ecr:us-west-2:123456789012:repository/web",
                "ssm:GetParameters arn:aws:ssm:us-west-2:123456789012:parameter/web/token",
                "s3:GetObject arn:aws:s3:::cfg/web/app.env",
                "logs:CreateLogStream arn:aws:logs:us-west-2:123456789012:log-group:/ecs/web:*",
                "logs:PutLogEvents arn:aws:logs:us-west-2:123456789012:log-group:/ecs/web:*",
                "s3:GetObject arn:aws:s3:::cfg/web/*",
            ]
        );
        assert_eq!(
            q.last().unwrap().role,
            "arn:aws:iam::123456789012:role/web-task"
        );
    }

    /// The repository ARN comes from the image's host: another account's, another region's,
    /// China's partition; a lookalike host raises no ECR question at all.
    #[test]
    fn the_repository_arn_is_the_images_not_the_callers() {
        let image_task = |image: &str| TaskSubject {
            family: "web".into(),
            task_role_arn: None,
            execution_role_arn: Some("arn:aws:iam::123456789012:role/web-execution".into()),
            cpu_architecture: "X86_64".into(),
            containers: vec![Container {
                name: "app".into(),
                image: image.into(),
                secrets: vec![],
                env_files: vec![],
                awslogs: None,
            }],
            s3_reach: None,
        };
        let arns = |image: &str| -> Vec<String> {
            questions(&image_task(image), "aws", "us-west-2", "123456789012")
                .into_iter()
                .filter(|q| q.action == "ecr:BatchGetImage")
                .map(|q| q.resource)
                .collect()
        };
        assert_eq!(
            arns("999988887777.dkr.ecr.eu-central-1.amazonaws.com/team/web@sha256:ab"),
            ["arn:aws:ecr:eu-central-1:999988887777:repository/team/web"]
        );
        assert_eq!(
            arns("999988887777.dkr.ecr.cn-north-1.amazonaws.com.cn/web:v1"),
            ["arn:aws-cn:ecr:cn-north-1:999988887777:repository/web"]
        );
        assert!(arns("123456789012.dkr.ecr.us-west-2.amazonaws.com.example.net/web:v1").is_empty());
    }
}
