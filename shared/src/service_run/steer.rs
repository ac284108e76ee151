//! `--continue` and `--stop-deployment`: a person (or a CI job, after its tests against the test
//! listener) acting on the service's deployment under way.
//!
//! Both act on the one deployment of the service that is in progress (ListServiceDeployments,
//! PENDING or IN_PROGRESS) and name it. None, or more than one, is exit 2 before any call that
//! changes something: acting on a guessed deployment could roll back someone else's release.
//! A second run finds its own work done and changes nothing: the deployment no longer waits on
//! a pause hook, or is already being stopped.

use aws_sdk_ecs::types::{
    DeploymentLifecycleHookAction, DeploymentLifecycleHookStatus,
    DeploymentLifecycleHookTargetType, ServiceDeploymentStatus as Status,
    StopServiceDeploymentStopType,
};

use super::following::StopKind;
use super::{Args, Deps, stages};
use crate::Report;
use crate::error::{AwsContext, Error, Result, sdk_is};

/// `--continue` or `--stop-deployment`, whichever was given.
pub async fn run(deps: &Deps, args: &Args) -> Result<Report> {
    let service = args.service.clone().unwrap_or_default();
    let flag = if args.follow.resume {
        "--continue"
    } else {
        "--stop-deployment"
    };
    let listed = deps
        .ecs
        .list_service_deployments()
        .cluster(&args.cluster)
        .service(&service)
        .status(Status::Pending)
        .status(Status::InProgress)
        // A second --stop-deployment finds the deployment it stopped.
        .status(Status::StopRequested)
        .status(Status::RollbackRequested)
        .status(Status::RollbackInProgress)
        .send()
        .await;
    let listed = match listed {
        Err(e)
            if sdk_is(
                &e,
                &["ServiceNotFoundException", "ClusterNotFoundException"],
            ) =>
        {
            return Err(Error::input(format!(
                "{flag}: there is no service {service} in cluster {}",
                args.cluster
            )));
        }
        other => other.context(format!("listing the deployments of service {service}"))?,
    };
    let briefs = listed.service_deployments();
    let arn = match briefs {
        [one] => one.service_deployment_arn().unwrap_or_default().to_string(),
        [] => {
            return Err(Error::input(format!(
                "{flag}: service {service} in cluster {} has no deployment in progress",
                args.cluster
            ))
            .hint("there is nothing to act on; service-run --watch shows the service's state"));
        }
        many => {
            let named: Vec<String> = many
                .iter()
                .map(|b| {
                    format!(
                        "{} ({})",
                        b.service_deployment_arn().unwrap_or_default(),
                        b.status().map(|s| s.as_str()).unwrap_or("?")
                    )
                })
                .collect();
            return Err(Error::input(format!(
                "{flag}: service {service} has {} deployments in progress, and this run will not guess which: {}",
                many.len(),
                named.join(", ")
            ))
            .hint("act on one by its ARN: aws ecs continue-service-deployment / stop-service-deployment --service-deployment-arn ARN"));
        }
    };
    let sd = stages::describe(deps, &arn).await?;
    let status = sd.status().cloned().unwrap_or(Status::Pending);
    let stage = sd
        .lifecycle_stage()
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "none yet".to_string());
    let mut report_note = None;
    match args.follow.stop_deployment {
        None => {
            if !matches!(status, Status::Pending | Status::InProgress) {
                return Err(Error::input(format!(
                    "--continue: deployment {arn} of service {service} is {}: there is nothing to resume",
                    status.as_str()
                )));
            }
            let paused: Vec<String> = sd
                .lifecycle_hook_details()
                .iter()
                .filter(|h| {
                    h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause)
                        && h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction)
                })
                .filter_map(|h| h.hook_id().map(str::to_string))
                .collect();
            if paused.is_empty() {
                report_note = Some(format!(
                    "deployment {arn} is not held by a pause hook (stage {stage}): nothing to continue"
                ));
            }
            // Every pause hook of the stage waits for the same person's word.
            for hook in paused {
                deps.ctx
                    .mutate(
                        format!("continue deployment {arn} of service {service} at stage {stage} (pause hook {hook})"),
                        deps.ecs
                            .continue_service_deployment()
                            .service_deployment_arn(&arn)
                            .hook_id(&hook)
                            .action(DeploymentLifecycleHookAction::Continue)
                            .send(),
                    )
                    .await?;
            }
        }
        Some(kind) => {
            if matches!(
                status,
                Status::StopRequested | Status::RollbackRequested | Status::RollbackInProgress
            ) {
                report_note = Some(format!(
                    "deployment {arn} is already being stopped ({}): nothing to do",
                    status.as_str()
                ));
            } else {
                let (stop_type, verb) = match kind {
                    StopKind::Rollback => (StopServiceDeploymentStopType::Rollback, "roll back"),
                    StopKind::Abort => (StopServiceDeploymentStopType::Abort, "abort"),
                };
                deps.ctx
                    .mutate(
                        format!("{verb} deployment {arn} of service {service} at stage {stage}"),
                        deps.ecs
                            .stop_service_deployment()
                            .service_deployment_arn(&arn)
                            .stop_type(stop_type)
                            .send(),
                    )
                    .await?;
            }
        }
    }
    if let Some(note) = &report_note {
        tracing::info!("{note}");
    }
    let mut report = deps.ctx.report().output(
        ecskit_contract::outputs::SERVICE_DEPLOYMENT_ARN,
        arn.clone(),
    );
    if let Some(s) = sd.lifecycle_stage() {
        report = report.output(ecskit_contract::outputs::LIFECYCLE_STAGE, s.as_str());
    }
    Ok(match report_note {
        Some(note) => report.note(note),
        None => report,
    })
}
