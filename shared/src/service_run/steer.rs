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
    DeploymentLifecycleHookTargetType, ServiceDeployment, ServiceDeploymentStatus as Status,
    StopServiceDeploymentStopType,
};

use super::following::StopKind;
use super::{Args, Deps, following, stages};
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
            let (sd, paused) = match await_pause(deps, args, &arn, &service, sd).await? {
                Pause::Awaiting(sd, hooks) => (sd, hooks),
                Pause::Done(note) => {
                    tracing::info!("{note}");
                    return Ok(deps
                        .ctx
                        .report()
                        .output(ecskit_contract::outputs::SERVICE_DEPLOYMENT_ARN, arn)
                        .note(note));
                }
            };
            let stage = sd
                .lifecycle_stage()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "none yet".to_string());
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
            let mut report = deps.ctx.report().output(
                ecskit_contract::outputs::SERVICE_DEPLOYMENT_ARN,
                arn.clone(),
            );
            if let Some(s) = sd.lifecycle_stage() {
                report = report.output(ecskit_contract::outputs::LIFECYCLE_STAGE, s.as_str());
            }
            return Ok(report);
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

/// What `--continue` finds: the pause hooks waiting for it (and the deployment as last read),
/// or why there is nothing left to continue.
enum Pause {
    Awaiting(Box<ServiceDeployment>, Vec<String>),
    Done(String),
}

/// A lifecycle stage's rank in the order a deployment goes through them. A pause at
/// PRE_PRODUCTION_TRAFFIC_SHIFT (a stage no deployment reports) holds between the test traffic
/// shift and the production one.
fn rank(stage: &str) -> Option<usize> {
    if stage == following::HOOK_ONLY {
        return following::STAGES
            .iter()
            .position(|s| *s == "POST_TEST_TRAFFIC_SHIFT")
            .map(|i| 2 * i + 1);
    }
    following::STAGES
        .iter()
        .position(|s| *s == stage)
        .map(|i| 2 * i)
}

/// The stages a deployment was told to pause at (its PAUSE hooks), in the order it reaches them.
/// From the deployment's own configuration; when ECS leaves it out of the answer, from the
/// service's (one DescribeServices).
async fn pause_stages(
    deps: &Deps,
    cluster: &str,
    service: &str,
    sd: &ServiceDeployment,
) -> Result<Vec<(usize, String)>> {
    use aws_sdk_ecs::types::DeploymentLifecycleHook;
    let of = |hooks: &[DeploymentLifecycleHook]| -> Vec<(usize, String)> {
        let mut stages: Vec<(usize, String)> = hooks
            .iter()
            .filter(|h| h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause))
            .flat_map(|h| h.lifecycle_stages())
            .filter_map(|s| rank(s.as_str()).map(|r| (r, s.as_str().to_string())))
            .collect();
        stages.sort();
        stages.dedup();
        stages
    };
    let own = sd
        .deployment_configuration()
        .map(|c| of(c.lifecycle_hooks()))
        .unwrap_or_default();
    if !own.is_empty() {
        return Ok(own);
    }
    Ok(super::describe_service(deps, cluster, service)
        .await?
        .as_ref()
        .and_then(|s| s.deployment_configuration())
        .map(|c| of(c.lifecycle_hooks()))
        .unwrap_or_default())
}

/// The deployment's pause hooks waiting for a person, after waiting (up to `--timeout`) for the
/// deployment to reach its first pause. A CI job may run `--continue` right after the deploy,
/// before ECS gets to the pause: continuing nothing and exiting 0 would let the job believe it
/// released the deployment.
///
/// Without a stage to name, a later pause is never waited for: a retried `--continue` (its
/// answer lost) that found the deployment moved on would otherwise release the next pause too.
/// To release a later pause (or canary's pause before its next traffic step), wait for it with
/// `--wait-until STAGE` first; `--continue` then finds it waiting.
///
/// - A deployment that is not PENDING or IN_PROGRESS is exit 2 naming its status (with a pause
///   that timed out or failed); one that rolls back or stops while this run waits is exit 3, one
///   that succeeds while it waits (someone else continued it) is nothing to do.
/// - A pause hook at the current stage that SUCCEEDED (continued) or TIMED_OUT (its timeout
///   action went on) is nothing to do: a retry changes nothing.
/// - A deployment with no pause hook at all is exit 2: there is nothing it could continue.
async fn await_pause(
    deps: &Deps,
    args: &Args,
    arn: &str,
    service: &str,
    mut sd: ServiceDeployment,
) -> Result<Pause> {
    let start = deps.clock.elapsed();
    // Read once, when first needed (a waiting pause needs none of it).
    let mut stages: Option<Vec<(usize, String)>> = None;
    let mut waited = false;
    loop {
        let status = sd.status().cloned().unwrap_or(Status::Pending);
        let current = sd
            .lifecycle_stage()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let shown = if current.is_empty() {
            "starting".to_string()
        } else {
            current.clone()
        };
        let pauses: Vec<_> = sd
            .lifecycle_hook_details()
            .iter()
            .filter(|h| h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause))
            .collect();
        if !matches!(status, Status::Pending | Status::InProgress) {
            if waited && status == Status::Successful {
                return Ok(Pause::Done(format!(
                    "deployment {arn} finished ({}) while this run waited: nothing to continue",
                    status.as_str()
                )));
            }
            let ended = pauses
                .iter()
                .filter_map(|h| h.status())
                .find(|s| {
                    matches!(
                        s,
                        DeploymentLifecycleHookStatus::TimedOut
                            | DeploymentLifecycleHookStatus::Failed
                    )
                })
                .map(|s| format!(" (its pause hook at {shown} is {})", s.as_str()))
                .unwrap_or_default();
            let message = format!(
                "--continue: deployment {arn} of service {service} is {}{ended}: there is nothing to resume",
                status.as_str()
            );
            if waited {
                // It ran and failed (or was stopped) while this run waited for its pause.
                return Err(Error::deployment(message)
                    .hint("service-run --watch shows why; deploy again to start a new deployment")
                    .with_output(ecskit_contract::outputs::SERVICE_DEPLOYMENT_ARN, arn));
            }
            return Err(Error::input(message).hint(
                "service-run --watch shows how it ends; deploy again to start a new deployment",
            ));
        }
        let awaiting: Vec<String> = pauses
            .iter()
            .filter(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction))
            .filter_map(|h| h.hook_id().map(str::to_string))
            .collect();
        if !awaiting.is_empty() {
            return Ok(Pause::Awaiting(Box::new(sd), awaiting));
        }
        let gone_on = pauses.iter().find_map(|h| match h.status() {
            Some(DeploymentLifecycleHookStatus::Succeeded) => Some("was continued"),
            Some(DeploymentLifecycleHookStatus::TimedOut) => {
                Some("timed out and its timeout action went on")
            }
            _ => None,
        });
        if let Some(how) = gone_on {
            return Ok(Pause::Done(format!(
                "deployment {arn}'s pause at {shown} {how}: nothing to do"
            )));
        }
        if stages.is_none() {
            stages = Some(pause_stages(deps, &args.cluster, service, &sd).await?);
        }
        let stages = stages.as_deref().unwrap_or_default();
        let Some((_, first)) = stages.first().cloned() else {
            return Err(Error::input(format!(
                "--continue: deployment {arn} of service {service} has no pause hook (deploymentConfiguration.lifecycleHooks with targetType PAUSE): there is nothing to continue"
            ))
            .hint("deploy with --pause-at STAGE (or a PAUSE hook in the service file) to hold a deployment for --continue"));
        };
        let here = rank(&current);
        if let Some((_, behind)) = stages
            .iter()
            .rev()
            .find(|(r, _)| here.is_some_and(|h| *r < h))
        {
            return Ok(Pause::Done(format!(
                "deployment {arn} is at {shown}, past its pause at {behind}, and no pause is waiting: nothing to continue (to release a later pause, wait for it with --wait-until STAGE, then --continue)"
            )));
        }
        // Its first pause is still ahead: --no-wait and a dry run do not wait for it.
        if args.no_wait {
            return Err(Error::input(format!(
                "--continue --no-wait: deployment {arn} of service {service} has not reached its pause at {first} yet (now {shown}): nothing is waiting to be continued"
            ))
            .hint("drop --no-wait to wait for the pause (up to --timeout), or run --continue again later"));
        }
        if deps.ctx.dry_run {
            deps.ctx.apply(format!(
                "wait for deployment {arn} of service {service} to pause at {first} (now {shown}), then continue it"
            ));
            return Ok(Pause::Done(format!(
                "deployment {arn} has not reached its pause at {first} yet"
            )));
        }
        if !waited {
            deps.progress.println(format!(
                "deployment {arn} has not reached its pause at {first} yet (now {shown}): waiting for it"
            ));
            waited = true;
        }
        if deps.clock.elapsed() - start >= deps.timing.timeout {
            return Err(Error::deployment(format!(
                "deployment {arn} of service {service} did not reach its pause at {first} within {}",
                super::watch::human(deps.timing.timeout)
            ))
            .hint("raise --timeout, or follow it with service-run --watch")
            .with_output(ecskit_contract::outputs::SERVICE_DEPLOYMENT_ARN, arn));
        }
        deps.clock.sleep(deps.timing.poll).await;
        sd = stages::describe(deps, arn).await?;
    }
}
