//! What the roles may do, asked of IAM's policy simulator: the execution role must read the
//! secrets and env files, pull the image and write the logs; the task role must reach the S3
//! prefix the stack names. Existence checks cannot see a missing permission; the simulator can.
//!
//! Where the simulator is not available (emulators, or a caller without
//! `iam:SimulatePrincipalPolicy`), one warning says so and nothing else is claimed.

use aws_sdk_iam::types::PolicyEvaluationDecisionType;

use super::Check;
use super::resources::{SecretRef, is_ecr, registry_of, s3_object, secret_ref};
use super::subject::TaskSubject;
use crate::aws::Ctx;
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
                && is_ecr(host)
            {
                let repo = rest.split(['@', ':']).next().unwrap_or(rest);
                ask("ecr:GetAuthorizationToken", "*".into());
                ask(
                    "ecr:BatchGetImage",
                    format!("arn:{partition}:ecr:{region}:{account}:repository/{repo}"),
                );
                ask(
                    "ecr:GetDownloadUrlForLayer",
                    format!("arn:{partition}:ecr:{region}:{account}:repository/{repo}"),
                );
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
    q.dedup();
    q
}

/// Asks the simulator every question; one check per question, or one warning when the
/// simulator cannot be used here.
pub async fn check(ctx: &Ctx, task: &TaskSubject) -> Vec<Check> {
    let (Ok(account), Some(region)) = (ctx.account_id().await, ctx.region()) else {
        return Vec::new();
    };
    let partition = crate::iam::policy::partition(region);
    simulate(&ctx.iam(), questions(task, partition, region, &account)).await
}

/// Asks IAM's simulator each question (tests pass a client with recorded answers).
pub async fn simulate(iam: &aws_sdk_iam::Client, questions: Vec<Question>) -> Vec<Check> {
    let mut checks = Vec::new();
    for q in questions {
        let answer = iam
            .simulate_principal_policy()
            .policy_source_arn(&q.role)
            .action_names(q.action)
            .resource_arns(&q.resource)
            // One attempt: the simulator is advisory, and where it is missing (emulators
            // answer 500) retries with backoff would only make verify slow.
            .customize()
            .config_override(
                aws_sdk_iam::config::Builder::default()
                    .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
        let result = match answer {
            Ok(out) => out,
            Err(e) => {
                let why = match sdk_code(&e) {
                    Some("AccessDenied") => {
                        "the caller may not call iam:SimulatePrincipalPolicy".to_string()
                    }
                    _ => format!(
                        "IAM's policy simulator is not available here ({})",
                        crate::error::flatten(&e)
                    ),
                };
                return vec![Check::warning(
                    "permission",
                    "iam:SimulatePrincipalPolicy",
                    format!("{why}: the roles' permissions were not checked"),
                )];
            }
        };
        let allowed = result
            .evaluation_results()
            .iter()
            .all(|r| r.eval_decision() == &PolicyEvaluationDecisionType::Allowed);
        let what = format!(
            "{} may {} on {}",
            super::resources::role_name(&q.role),
            q.action,
            q.resource
        );
        checks.push(if allowed {
            Check::ok("permission", &q.role, what)
        } else {
            Check::failure(
                "permission",
                &q.role,
                format!(
                    "{} may not {} on {}: add it to the role's policy",
                    super::resources::role_name(&q.role),
                    q.action,
                    q.resource
                ),
            )
        });
    }
    checks
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
}
