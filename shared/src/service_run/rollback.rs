//! `--rollback`: which task definition to go back to, and why.
//!
//! The right target is the task definition of the last deployment that completed before the
//! current one. ECS keeps that history (ListServiceDeployments, with each deployment's target
//! service revision); where it is not available (older accounts' services, emulators), the
//! previous ACTIVE revision of the service's family is the next best answer. Either way the
//! choice is said in words, so that a user who reads the plan knows what they will get.

use aws_sdk_ecs::types::ServiceDeploymentStatus;

use crate::aws::Ctx;
use crate::error::{AwsContext, sdk_code};
use crate::{Error, Result};

/// The revision a rollback deploys, and the sentence that says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub task_definition: String,
    pub why: String,
}

pub use crate::ecs::taskdef::family_revision;

/// Among a family's ACTIVE revisions (ARNs, any order), the newest one older than `current`.
pub fn previous_revision(revisions: &[String], current: i32) -> Option<String> {
    revisions
        .iter()
        .filter_map(|arn| Some((family_revision(arn).1?, arn)))
        .filter(|(rev, _)| *rev < current)
        .max_by_key(|(rev, _)| *rev)
        .map(|(_, arn)| arn.clone())
}

/// Chooses the rollback target of a service whose current task definition is `current`.
pub async fn choose(ctx: &Ctx, cluster: &str, service: &str, current: &str) -> Result<Choice> {
    if let Some(choice) = from_history(ctx, cluster, service, current).await? {
        return Ok(choice);
    }
    let (family, revision) = family_revision(current);
    let Some(revision) = revision else {
        return Err(Error::aws(
            format!("reading service {service}"),
            format!("its task definition '{current}' has no revision"),
        ));
    };
    let ecs = ctx.ecs();
    let mut revisions = Vec::new();
    let mut pages = ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.context(format!("listing the revisions of {family}"))?;
        revisions.extend(
            page.task_definition_arns()
                .iter()
                // familyPrefix matches "web" and "web-worker": keep the family itself.
                .filter(|arn| family_revision(arn).0 == family)
                .cloned(),
        );
    }
    match previous_revision(&revisions, revision) {
        Some(arn) => {
            let (_, rev) = family_revision(&arn);
            Ok(Choice {
                why: format!(
                    "the service's deployment history is not available, so the previous ACTIVE revision of {family} ({family}:{}) is used",
                    rev.unwrap_or_default()
                ),
                task_definition: arn,
            })
        }
        None => Err(Error::input(format!(
            "service {service} cannot be rolled back: {family}:{revision} is the only ACTIVE revision of its family and no earlier deployment completed"
        ))
        .hint("register the revision to go back to with taskdef-register, or deploy it with --task-definition")),
    }
}

/// The last SUCCESSFUL deployment whose task definition is not the current one, from ECS's
/// deployment history. `None` when the history is empty or the API is not available.
async fn from_history(
    ctx: &Ctx,
    cluster: &str,
    service: &str,
    current: &str,
) -> Result<Option<Choice>> {
    let ecs = ctx.ecs();
    let listed = ecs
        .list_service_deployments()
        .cluster(cluster)
        .service(service)
        .status(ServiceDeploymentStatus::Successful)
        .send()
        .await;
    let mut deployments = match listed {
        Ok(out) => out.service_deployments().to_vec(),
        Err(e) => {
            // An emulator or partition without the API: fall back to the family's revisions.
            tracing::debug!(
                "no deployment history for {service}: {}",
                sdk_code(&e).unwrap_or("the API is not available")
            );
            return Ok(None);
        }
    };
    // Newest first: the last deployment that completed.
    deployments.sort_by(|a, b| {
        let t = |d: &aws_sdk_ecs::types::ServiceDeploymentBrief| {
            d.finished_at().map(|t| t.as_nanos()).unwrap_or_default()
        };
        t(b).cmp(&t(a))
    });
    let revisions: Vec<String> = deployments
        .iter()
        .filter_map(|d| d.target_service_revision_arn().map(str::to_string))
        .collect();
    if revisions.is_empty() {
        return Ok(None);
    }
    let described = ecs
        .describe_service_revisions()
        .set_service_revision_arns(Some(revisions.iter().take(20).cloned().collect()))
        .send()
        .await
        .context(format!("reading the deployment history of {service}"))?;
    let current_key = family_revision(current);
    for arn in &revisions {
        let Some(rev) = described
            .service_revisions()
            .iter()
            .find(|r| r.service_revision_arn() == Some(arn.as_str()))
        else {
            continue;
        };
        let Some(td) = rev.task_definition() else {
            continue;
        };
        if family_revision(td) != current_key {
            let (family, n) = family_revision(td);
            return Ok(Some(Choice {
                task_definition: td.to_string(),
                why: format!(
                    "{family}:{} is the task definition of the last deployment that completed before the current one",
                    n.unwrap_or_default()
                ),
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_and_revision_from_arns_and_short_forms() {
        assert_eq!(
            family_revision("arn:aws:ecs:us-west-2:123456789012:task-definition/web:7"),
            ("web", Some(7))
        );
        assert_eq!(family_revision("web:3"), ("web", Some(3)));
        assert_eq!(family_revision("web"), ("web", None));
    }

    #[test]
    fn the_previous_revision_is_the_newest_older_one() {
        let arns: Vec<String> = [1, 4, 2, 6, 5]
            .iter()
            .map(|n| format!("arn:aws:ecs:us-west-2:123456789012:task-definition/web:{n}"))
            .collect();
        assert_eq!(
            previous_revision(&arns, 6).as_deref(),
            Some("arn:aws:ecs:us-west-2:123456789012:task-definition/web:5")
        );
        assert_eq!(
            previous_revision(&arns, 4).as_deref(),
            Some("arn:aws:ecs:us-west-2:123456789012:task-definition/web:2")
        );
        assert_eq!(previous_revision(&arns, 1), None);
    }
}
