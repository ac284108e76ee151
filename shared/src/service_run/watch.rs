//! Watching one deployment, by its id, until it is stable or has failed.
//!
//! Each poll reads the service (its deployments and events), then the stopped tasks that this
//! deployment started (ECS sets a service task's `startedBy` to the deployment id). New events
//! and stopped tasks are printed once. The loop ends with success (rolloutState COMPLETED and
//! running == desired), with exit 3 (FAILED, a circuit-breaker rollback, a reason that will not
//! heal, a timeout), or with an AWS error. Time comes from [`super::Clock`], so tests replay
//! recorded answers without waiting.
//!
//! A blue/green, canary or linear deployment is also followed by its lifecycle stages
//! ([`super::stages`]): its service deployment decides success (SUCCESSFUL, or the point
//! `--wait-until` names) and failure (a rollback or a stop), the stopped tasks and events are
//! read and printed as for a rolling one. A rolling deployment makes the same calls as before.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_ecs::types::{DesiredStatus, Service, TaskStopCode};

use super::following::{WaitUntil, staged_strategy};
use super::stages::{StageFollower, Verdict};
use super::{Args, Deps, describe_service, is_role_not_assumable};
use crate::Report;
pub use crate::ecs::stopped::{describe_stopped, essential_exit, stopped_reason};
use crate::error::{AwsContext, Error, Result};

/// An essential container exiting non-zero this many times ends the wait.
pub const ESSENTIAL_FAILURE_LIMIT: usize = 3;

/// What to follow.
#[derive(Clone, Debug)]
pub struct Target {
    pub cluster: String,
    pub service: String,
    pub deployment_id: String,
    /// Essential container names of the deployment's task definition.
    pub essentials: Vec<String>,
    /// Where each container logs, for the failure report's last lines.
    pub logs: std::collections::BTreeMap<String, Option<super::logs::AwsLogs>>,
    /// Where the wait ends with success (`--wait-until`).
    pub wait_until: WaitUntil,
}

/// Where the deployment stands (the step's outputs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub deployment_id: Option<String>,
    pub rollout_state: Option<String>,
    pub running: i32,
    pub pending: i32,
    pub desired: i32,
    /// A staged deployment's service deployment and its lifecycle stage (`None` for rolling).
    pub service_deployment_arn: Option<String>,
    pub stage: Option<String>,
}

impl Outcome {
    pub fn from_service(svc: Option<&Service>, deployment_id: Option<&str>) -> Self {
        let dep = svc.and_then(|s| s.deployments().iter().find(|d| d.id() == deployment_id));
        match (svc, dep) {
            (_, Some(d)) => Outcome {
                deployment_id: d.id().map(str::to_string),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                running: d.running_count(),
                pending: d.pending_count(),
                desired: d.desired_count(),
                ..Default::default()
            },
            (Some(s), None) => Outcome {
                running: s.running_count(),
                pending: s.pending_count(),
                desired: s.desired_count(),
                ..Default::default()
            },
            _ => Outcome::default(),
        }
    }

    /// The outputs a deployment has, on success and (as last seen) on failure.
    pub fn outputs(&self) -> Vec<(&'static str, serde_json::Value)> {
        use ecskit_contract::outputs::*;
        vec![
            (
                DEPLOYMENT_ID,
                self.deployment_id.clone().unwrap_or_default().into(),
            ),
            (
                ROLLOUT_STATE,
                self.rollout_state.clone().unwrap_or_default().into(),
            ),
            (RUNNING_COUNT, self.running.into()),
            (DESIRED_COUNT, self.desired.into()),
        ]
        .into_iter()
        .chain(
            [
                (SERVICE_DEPLOYMENT_ARN, &self.service_deployment_arn),
                (LIFECYCLE_STAGE, &self.stage),
            ]
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.clone()?.into()))),
        )
        .collect()
    }

    pub fn add_to(&self, report: Report) -> Report {
        self.outputs()
            .into_iter()
            .fold(report, |r, (name, value)| r.output(name, value))
    }

    fn status_line(&self, service: &str) -> String {
        format!(
            "{service}: {} running, {} pending, {} desired, rollout {}",
            self.running,
            self.pending,
            self.desired,
            self.rollout_state.as_deref().unwrap_or("unknown")
        )
    }
}

/// The id of the service's PRIMARY deployment (the newest one).
pub fn primary_deployment(svc: &Service) -> Option<String> {
    svc.deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .or_else(|| svc.deployments().first())
        .and_then(|d| d.id().map(str::to_string))
}

/// `--watch`: attach to the service's current deployment and report until it is stable.
pub async fn attach(deps: &Deps, args: &Args) -> Result<Report> {
    let name = args.service.clone().unwrap_or_default();
    let svc = describe_service(deps, &args.cluster, &name)
        .await?
        .ok_or_else(|| {
            Error::input(format!(
                "service {name} does not exist in cluster {}",
                args.cluster
            ))
            .hint("check --cluster and --service, or deploy it first (drop --watch)")
        })?;
    super::following::stage_wait_fits(args, staged_strategy(svc.deployment_configuration()))?;
    let id = primary_deployment(&svc).ok_or_else(|| {
        Error::aws(
            format!("describing service {name}"),
            "the service lists no deployment",
        )
    })?;
    let (essentials, logs) = match svc
        .deployments()
        .iter()
        .find(|d| d.id() == Some(id.as_str()))
        .and_then(|d| d.task_definition())
        .or(svc.task_definition())
    {
        Some(td) => {
            let td = super::taskdef::resolve_task_definition(deps, td).await?;
            (td.essentials, td.logs)
        }
        None => Default::default(),
    };
    let target = Target {
        cluster: args.cluster.clone(),
        service: name,
        deployment_id: id,
        essentials,
        logs,
        wait_until: args.follow.wait_until.clone(),
    };
    let outcome = follow(deps, &target).await?;
    let report = deps
        .ctx
        .report()
        .output(
            "CLUSTER_ARN",
            svc.cluster_arn().unwrap_or_default().to_string(),
        )
        .output(
            "SERVICE_ARN",
            svc.service_arn().unwrap_or_default().to_string(),
        );
    Ok(outcome.add_to(report))
}

/// Follows the deployment until it succeeds (Ok) or fails (an exit-3 error). A failure carries
/// the failure report for `--output json`: each failing container of each stopped task, with
/// the last lines of its log.
///
/// A failure also carries the deployment as last seen (its id, rollout state and counts) as
/// outputs, printed in every output format.
pub async fn follow(deps: &Deps, target: &Target) -> Result<Outcome> {
    let mut failures = Vec::new();
    let mut last = Outcome {
        deployment_id: Some(target.deployment_id.clone()),
        ..Outcome::default()
    };
    follow_reporting(deps, target, &mut failures, &mut last)
        .await
        .map_err(|e| {
            last.outputs().into_iter().fold(
                e.with_details(serde_json::json!({ "failures": failures })),
                |e, (name, value)| e.with_output(name, value),
            )
        })
}

async fn follow_reporting(
    deps: &Deps,
    target: &Target,
    failures: &mut Vec<serde_json::Value>,
    last: &mut Outcome,
) -> Result<Outcome> {
    let t = deps.timing;
    let start = deps.clock.elapsed();
    let mut last_change = start;
    let mut seen_events: HashSet<String> = HashSet::new();
    let mut seen_stopped: HashSet<String> = HashSet::new();
    let mut first = true;
    let mut essential_failures = 0usize;
    let mut last_signature = None;
    let mut stages: Option<StageFollower> = None;
    let id = &target.deployment_id;
    let spinner = deps.progress.spinner(format!(
        "waiting for deployment {id} of service {}",
        target.service
    ));
    loop {
        let svc = describe_service(deps, &target.cluster, &target.service)
            .await?
            .ok_or_else(|| {
                Error::deployment(format!(
                    "service {} disappeared from cluster {} while deployment {id} was watched",
                    target.service, target.cluster
                ))
            })?;
        let deployment = svc
            .deployments()
            .iter()
            .find(|d| d.id() == Some(id.as_str()));
        if deployment.is_some() {
            *last = Outcome::from_service(Some(&svc), Some(id));
        }

        // Events come newest first; print the new ones oldest first. Events older than this
        // deployment belong to earlier runs.
        let since = deployment
            .and_then(|d| d.created_at())
            .map(|t| t.as_secs_f64());
        let mut new_events = Vec::new();
        for e in svc.events() {
            let key = e.id().unwrap_or_default().to_string();
            if seen_events.insert(key) {
                let old = first
                    && matches!((since, e.created_at()), (Some(s), Some(c)) if c.as_secs_f64() < s);
                if !old {
                    new_events.push(e.message().unwrap_or_default().to_string());
                }
            }
        }
        first = false;
        let elapsed = deps.clock.elapsed() - start;
        let mut role_trouble = None;
        for message in new_events.iter().rev() {
            deps.progress.println(format!("event: {message}"));
            if is_role_not_assumable(message) {
                role_trouble = Some(message.clone());
            }
        }

        // A staged deployment's service deployment, once found, decides success and failure;
        // until then, and for a rolling deployment, DescribeServices' deployment does.
        if stages.is_none() && staged_strategy(svc.deployment_configuration()).is_some() {
            stages = Some(StageFollower::new(&target.cluster, &target.service));
        }
        let verdict = match stages.as_mut() {
            Some(f) => f.poll(deps, deployment, &target.wait_until).await?,
            None => None,
        };
        let mut outcome = Outcome::from_service(Some(&svc), Some(id));
        if let Some(f) = &stages {
            outcome.stage = f.stage.clone();
            outcome.service_deployment_arn = f.arn().map(str::to_string);
            last.stage = outcome.stage.clone();
            last.service_deployment_arn = outcome.service_deployment_arn.clone();
        }
        if outcome.service_deployment_arn.is_none() {
            let Some(d) = deployment else {
                let rollback = new_events
                    .iter()
                    .chain(
                        svc.events()
                            .iter()
                            .filter_map(|e| e.message().map(str::to_string))
                            .collect::<Vec<_>>()
                            .iter(),
                    )
                    .find(|m| m.contains("rolling back") || m.contains("circuit breaker"))
                    .cloned();
                spinner.finish(format!("deployment {id} is gone"));
                return Err(Error::deployment(format!(
                    "deployment {id} of service {} is no longer listed: it was rolled back or replaced{}",
                    target.service,
                    rollback.map(|r| format!(" ({r})")).unwrap_or_default()
                )));
            };
            let state = outcome.rollout_state.as_deref();
            if state == Some("FAILED") {
                let reason = d.rollout_state_reason().unwrap_or("no reason given");
                spinner.finish(outcome.status_line(&target.service));
                let rolled_back = svc
                    .deployments()
                    .iter()
                    .any(|o| o.id() != Some(id.as_str()) && o.status() == Some("PRIMARY"));
                return Err(Error::deployment(format!(
                    "deployment {id} of service {} failed{}: {reason}",
                    target.service,
                    if rolled_back { " and was rolled back" } else { "" }
                ))
                .hint("the stopped tasks and events above say why; fix the task definition or image and run again"));
            }
            let stable_without_state =
                state.is_none() && svc.deployments().len() == 1 && outcome.pending == 0;
            let all_running = outcome.running == outcome.desired;
            if (state == Some("COMPLETED") || stable_without_state) && all_running {
                spinner.finish(format!("{} (stable)", outcome.status_line(&target.service)));
                return Ok(outcome);
            }
            // `--wait-until deployed`: every task of the new deployment runs; the old ones may
            // still be draining.
            if target.wait_until == WaitUntil::Deployed
                && d.status() == Some("PRIMARY")
                && all_running
                && outcome.pending == 0
            {
                spinner.finish(format!(
                    "{} (deployed: every task of the new deployment runs)",
                    outcome.status_line(&target.service)
                ));
                return Ok(outcome);
            }
            if d.status() == Some("ACTIVE") && state == Some("IN_PROGRESS") {
                let newer = primary_deployment(&svc).unwrap_or_default();
                spinner.finish(outcome.status_line(&target.service));
                return Err(Error::deployment(format!(
                    "deployment {id} of service {} was superseded by deployment {newer}",
                    target.service
                ))
                .hint("another deployment of this service started; watch it with --watch"));
            }
        }

        // Stopped tasks of this deployment, each reported once.
        let listed = deps
            .ecs
            .list_tasks()
            .cluster(&target.cluster)
            .started_by(id)
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await
            .context(format!("listing the stopped tasks of deployment {id}"))?;
        let fresh: Vec<String> = listed
            .task_arns()
            .iter()
            .filter(|a| !seen_stopped.contains(*a))
            .cloned()
            .collect();
        for chunk in fresh.chunks(100) {
            let out = deps
                .ecs
                .describe_tasks()
                .cluster(&target.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .context(format!("describing the stopped tasks of deployment {id}"))?;
            for task in out.tasks() {
                seen_stopped.insert(task.task_arn().unwrap_or_default().to_string());
                for line in describe_stopped(task) {
                    deps.progress.println(line);
                }
                failures.extend(
                    super::logs::failure_entries(
                        &deps.ctx,
                        &deps.progress,
                        task,
                        &target.logs,
                        deps.log_lines,
                    )
                    .await,
                );
                let reason = stopped_reason(task);
                if reason.contains("CannotPullContainerError")
                    || (reason.contains("ResourceInitializationError")
                        && !is_role_not_assumable(&reason))
                {
                    spinner.finish(outcome.status_line(&target.service));
                    return Err(Error::deployment(format!(
                        "deployment {id} of service {} cannot start tasks: {reason}",
                        target.service
                    ))
                    .hint(if reason.contains("CannotPull") {
                        "check the image URI and tag, that the execution role may pull it, and that the tasks can reach the registry (public IP or NAT)"
                    } else {
                        "check the execution role's permissions (secrets, logs) and that the tasks can reach AWS endpoints (public IP or NAT)"
                    }));
                }
                if is_role_not_assumable(&reason) {
                    role_trouble = Some(reason.clone());
                }
                // Tasks the scheduler or a person stopped (scale-in, a newer deployment) exit
                // with SIGTERM codes: only crashes count.
                let stopped_on_purpose = matches!(
                    task.stop_code(),
                    Some(TaskStopCode::ServiceSchedulerInitiated | TaskStopCode::UserInitiated)
                );
                if !stopped_on_purpose
                    && matches!(essential_exit(task, &target.essentials), Some((_, Some(code))) if code != 0)
                {
                    essential_failures += 1;
                }
            }
        }
        match verdict {
            Some(Verdict::Reached) => {
                deps.progress.println(format!(
                    "reached {} (--wait-until {}): deployment {}",
                    if target.wait_until == WaitUntil::Stable {
                        "SUCCESSFUL".to_string()
                    } else {
                        outcome.stage.clone().unwrap_or_default()
                    },
                    target.wait_until.as_str(),
                    outcome
                        .service_deployment_arn
                        .as_deref()
                        .unwrap_or_default()
                ));
                spinner.finish(outcome.status_line(&target.service));
                return Ok(outcome);
            }
            Some(Verdict::Failed(e)) => {
                spinner.finish(outcome.status_line(&target.service));
                return Err(e);
            }
            None => {}
        }
        if let Some(message) = role_trouble {
            if elapsed >= t.iam_grace {
                spinner.finish(outcome.status_line(&target.service));
                return Err(Error::deployment(format!(
                    "ECS still cannot assume a role of service {} after {}s: {message}",
                    target.service,
                    elapsed.as_secs()
                ))
                .hint("check the role's trust policy (ecs-tasks.amazonaws.com) and that the caller may iam:PassRole it"));
            }
            deps.progress.println(format!(
                "ECS cannot assume a role yet; IAM propagation can take up to {}s: waiting",
                t.iam_grace.as_secs()
            ));
        }
        if essential_failures >= ESSENTIAL_FAILURE_LIMIT {
            spinner.finish(outcome.status_line(&target.service));
            return Err(Error::deployment(format!(
                "an essential container of deployment {id} exited non-zero {essential_failures} times: the tasks crash on start"
            ))
            .hint("read the container's logs; the exit codes are printed above"));
        }

        let signature = (
            outcome.clone(),
            seen_events.len(),
            seen_stopped.len(),
            stages.as_ref().map(StageFollower::progress_key),
        );
        let now = deps.clock.elapsed();
        if last_signature.as_ref() != Some(&signature) {
            spinner.set_message(outcome.status_line(&target.service));
            last_signature = Some(signature);
            last_change = now;
        }
        if now - start >= t.timeout {
            spinner.finish(outcome.status_line(&target.service));
            return Err(Error::deployment(format!(
                "deployment {id} of service {} did not finish within {}",
                target.service,
                human(t.timeout)
            ))
            .hint("raise --timeout, or check the events above"));
        }
        // A bake time, or a pause hook waiting for a person, changes nothing on purpose until
        // it ends: only --timeout limits it.
        let holding = stages.as_ref().is_some_and(|f| f.holding);
        if now - last_change >= t.no_progress && !holding {
            spinner.finish(outcome.status_line(&target.service));
            return Err(Error::deployment(format!(
                "deployment {id} of service {} made no progress for {} ({})",
                target.service,
                human(t.no_progress),
                outcome.status_line(&target.service)
            ))
            .hint("raise --no-progress-timeout, or check the service's events and stopped tasks"));
        }
        deps.clock.sleep(t.poll).await;
    }
}

/// Waits until a deleted service is INACTIVE (gone from DescribeServices' live list).
pub async fn until_inactive(deps: &Deps, cluster: &str, name: &str) -> Result<()> {
    let start = deps.clock.elapsed();
    let spinner = deps
        .progress
        .spinner(format!("waiting for service {name} to become inactive"));
    while describe_service(deps, cluster, name).await?.is_some() {
        if deps.clock.elapsed() - start >= deps.timing.timeout {
            return Err(Error::aws(
                format!("deleting service {name}"),
                format!("still not inactive after {}", human(deps.timing.timeout)),
            ));
        }
        deps.clock.sleep(deps.timing.poll).await;
    }
    spinner.finish(format!("service {name} is inactive"));
    Ok(())
}

pub(super) fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
