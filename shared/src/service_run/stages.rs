//! Following a blue/green, canary or linear deployment by its lifecycle stages.
//!
//! ECS reports these deployments as service deployments (ListServiceDeployments,
//! DescribeServiceDeployments), beside DescribeServices' deployment list that a rolling update
//! is followed by. The watch ([`super::watch`]) asks [`StageFollower::poll`] once per poll for a
//! service whose strategy is not ROLLING; a rolling deployment never reads them, so its calls
//! and lines stay what they were.
//!
//! The service deployment followed is the one this run started: among the service's service
//! deployments, the one whose target revision runs the deployment's task definition, created
//! closest to it (a service deployment and its DescribeServices deployment are made by the same
//! UpdateService). Never just the newest: a deployment someone started after this run is not
//! this run's.
//!
//! Each stage is printed once as it is entered (again when canary or linear re-enter the
//! production shift with a new weight), each lifecycle hook when its status changes. A rollback
//! or a stop is exit 3 naming who did it (an alarm, the circuit breaker, a hook, or a request
//! through the API) and why, from the service deployment's own fields.

use std::collections::HashSet;

use aws_sdk_ecs::types::{
    Deployment, DeploymentLifecycleHookDetail, DeploymentLifecycleHookStatus as HookStatus,
    DeploymentLifecycleHookTargetType, ServiceDeployment, ServiceDeploymentRollbackMonitorsStatus,
    ServiceDeploymentStatus as Status,
};

use super::following::{WaitUntil, stage_index};
use super::{Deps, deploy::same_task_definition};
use crate::error::{AwsContext, Error, Result};

/// What a poll decided.
#[derive(Debug)]
pub enum Verdict {
    /// The deployment got where `--wait-until` asked (its status SUCCESSFUL for `stable`).
    Reached,
    /// Rolled back or stopped: exit 3, who and why in the message.
    Failed(Error),
}

/// The state of one deployment's stage-by-stage following.
#[derive(Debug, Default)]
pub struct StageFollower {
    service: String,
    cluster: String,
    arn: Option<String>,
    /// The last stage line printed (the stage with its traffic weight).
    printed: Option<String>,
    /// Each hook's (id, status) printed.
    hooks: HashSet<(String, String)>,
    /// Hooks seen failing or timing out: a rollback's cause, kept in case the answer that says
    /// "rolled back" no longer lists them.
    failed_hooks: Vec<String>,
    /// The current stage, and whether the deployment waits on purpose: its bake time, or a
    /// pause hook awaiting a person's `--continue` (the no-progress limit does not apply).
    pub stage: Option<String>,
    pub holding: bool,
}

impl StageFollower {
    pub fn new(cluster: &str, service: &str) -> Self {
        StageFollower {
            cluster: cluster.to_string(),
            service: service.to_string(),
            ..Default::default()
        }
    }

    /// The service deployment followed, once found.
    pub fn arn(&self) -> Option<&str> {
        self.arn.as_deref()
    }

    /// What changes when the deployment moves (for the no-progress limit).
    pub fn progress_key(&self) -> (Option<String>, usize) {
        (self.printed.clone(), self.hooks.len())
    }

    /// One poll: find this run's service deployment (until found), describe it, print what is
    /// new, and decide. `deployment` is this run's DescribeServices deployment, when listed.
    pub async fn poll(
        &mut self,
        deps: &Deps,
        deployment: Option<&Deployment>,
        wait_until: &WaitUntil,
    ) -> Result<Option<Verdict>> {
        if self.arn.is_none() {
            let Some(d) = deployment else {
                return Ok(None);
            };
            self.arn = find(deps, &self.cluster, &self.service, d).await?;
        }
        let Some(arn) = self.arn.clone() else {
            // Not listed yet: ECS lists a service deployment shortly after UpdateService.
            return Ok(None);
        };
        let sd = describe(deps, &arn).await?;
        self.print_new(deps, &sd);
        let status = sd.status().cloned().unwrap_or(Status::Pending);
        match status {
            Status::Successful => Ok(Some(Verdict::Reached)),
            Status::RollbackRequested
            | Status::RollbackInProgress
            | Status::RollbackSuccessful
            | Status::RollbackFailed
            | Status::StopRequested
            | Status::Stopped => Ok(Some(Verdict::Failed(self.failure(&sd, &status)))),
            _ => {
                let reached = match (wait_until.stage_index(), self.stage_position(&sd)) {
                    (Some(wanted), Some(now)) => now >= wanted,
                    _ => false,
                };
                Ok(reached.then_some(Verdict::Reached))
            }
        }
    }

    fn stage_position(&self, sd: &ServiceDeployment) -> Option<usize> {
        sd.lifecycle_stage().and_then(stage_index)
    }

    fn print_new(&mut self, deps: &Deps, sd: &ServiceDeployment) {
        if let Some(stage) = sd.lifecycle_stage() {
            let name = stage.as_str().to_string();
            let line = stage_line(sd, &name);
            if self.printed.as_deref() != Some(line.as_str()) {
                deps.progress.println(format!("stage {line}"));
                self.printed = Some(line);
            }
            // Quiet by design, not stuck: a bake time, and a canary's or linear step's wait
            // at one production weight.
            let stepped = matches!(
                sd.deployment_configuration().and_then(|c| c.strategy()),
                Some(aws_sdk_ecs::types::DeploymentStrategy::Canary)
                    | Some(aws_sdk_ecs::types::DeploymentStrategy::Linear)
            );
            self.holding = name == "BAKE_TIME" || (stepped && name == "PRODUCTION_TRAFFIC_SHIFT");
            self.stage = Some(name);
        }
        // A pause waiting for a person, or a Lambda hook ECS keeps calling until it answers.
        self.holding |= sd.lifecycle_hook_details().iter().any(|h| {
            (h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause)
                && h.status() == Some(&HookStatus::AwaitingAction))
                || h.status() == Some(&HookStatus::InProgress)
        });
        for hook in sd.lifecycle_hook_details() {
            let id = hook.hook_id().unwrap_or_default().to_string();
            let status = hook
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if matches!(
                hook.status(),
                Some(HookStatus::Failed | HookStatus::TimedOut)
            ) {
                let what = format!(
                    "lifecycle hook {}, which answered {status}",
                    hook_target(hook)
                );
                if !self.failed_hooks.contains(&what) {
                    self.failed_hooks.push(what);
                }
            }
            if self.hooks.insert((id, status)) {
                deps.progress
                    .println(hook_line(hook, &self.cluster, &self.service));
            }
        }
    }

    /// Exit 3 for a rolled back or stopped deployment: who did it and why.
    fn failure(&self, sd: &ServiceDeployment, status: &Status) -> Error {
        let arn = sd.service_deployment_arn().unwrap_or_default();
        let rolled_back = !matches!(status, Status::StopRequested | Status::Stopped);
        let triggered = |s: Option<&ServiceDeploymentRollbackMonitorsStatus>| {
            s == Some(&ServiceDeploymentRollbackMonitorsStatus::Triggered)
        };
        let who = if let Some(a) = sd.alarms().filter(|a| triggered(a.status())) {
            let names = a.triggered_alarm_names();
            format!(
                "CloudWatch alarm{} {}",
                if names.len() == 1 { "" } else { "s" },
                if names.is_empty() {
                    a.alarm_names().join(", ")
                } else {
                    names.join(", ")
                }
            )
        } else if let Some(cb) = sd
            .deployment_circuit_breaker()
            .filter(|c| triggered(c.status()))
        {
            format!(
                "the deployment circuit breaker ({} failed tasks of {} allowed)",
                cb.failure_count(),
                cb.threshold()
            )
        } else if let Some(hook) = self.failed_hooks.first() {
            hook.clone()
        } else {
            "a request through the API (StopServiceDeployment or a hook's ROLLBACK: a person or a pipeline)"
                .to_string()
        };
        let mut why: Vec<&str> = Vec::new();
        for reason in [sd.rollback().and_then(|r| r.reason()), sd.status_reason()]
            .into_iter()
            .flatten()
        {
            // ECS's reasons are sentences: joined without their full stops.
            let reason = reason.trim().trim_end_matches('.');
            if !reason.is_empty() && !why.contains(&reason) {
                why.push(reason);
            }
        }
        let why = if why.is_empty() {
            "no reason given".to_string()
        } else {
            why.join("; ")
        };
        Error::deployment(format!(
            "deployment {arn} of service {} was {}{} by {who}: {why} ({})",
            self.service,
            if rolled_back { "rolled back" } else { "stopped" },
            self.stage
                .as_deref()
                .map(|s| format!(" at stage {s}"))
                .unwrap_or_default(),
            status.as_str(),
        ))
        .hint("the stages, hooks, stopped tasks and events above say why; fix the cause and deploy again")
    }
}

/// `TEST_TRAFFIC_SHIFT (100% of test traffic)`, `BAKE_TIME 10m left`: the stage with what
/// ECS says of it. The bake time is the configured one, counted from when the stage is seen
/// (ECS reports no start time for it).
fn stage_line(sd: &ServiceDeployment, stage: &str) -> String {
    let target = sd.target_service_revision();
    let weight = |w: Option<f64>, which: &str| {
        w.map(|w| format!(" ({w}% of {which} traffic)"))
            .unwrap_or_default()
    };
    match stage {
        "TEST_TRAFFIC_SHIFT" => format!(
            "{stage}{}",
            weight(
                target.and_then(|t| t.requested_test_traffic_weight()),
                "test"
            )
        ),
        "PRODUCTION_TRAFFIC_SHIFT" => format!(
            "{stage}{}",
            weight(
                target.and_then(|t| t.requested_production_traffic_weight()),
                "production"
            )
        ),
        "BAKE_TIME" => match sd
            .deployment_configuration()
            .and_then(|c| c.bake_time_in_minutes())
        {
            Some(m) => format!("{stage} {m}m left"),
            None => stage.to_string(),
        },
        _ => stage.to_string(),
    }
}

/// The hook's target as the user configured it: the Lambda's ARN, or `pause`.
fn hook_target(hook: &DeploymentLifecycleHookDetail) -> String {
    match (hook.target_type(), hook.target_arn()) {
        (Some(DeploymentLifecycleHookTargetType::Pause), _) => "pause".to_string(),
        (_, Some(arn)) => format!("lambda {arn}"),
        (Some(t), None) => t.as_str().to_lowercase(),
        (None, None) => "of unknown type".to_string(),
    }
}

fn hook_line(hook: &DeploymentLifecycleHookDetail, cluster: &str, service: &str) -> String {
    let status = hook.status().map(|s| s.as_str()).unwrap_or("UNKNOWN");
    let mut line = format!("  hook {}: {status}", hook_target(hook));
    if hook.status() == Some(&HookStatus::AwaitingAction) {
        if let Some(at) = hook
            .expires_at()
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
        {
            line.push_str(&format!(
                " until {at}{}",
                hook.timeout_action()
                    .map(|a| format!(", then {}", a.as_str()))
                    .unwrap_or_default()
            ));
        }
        line.push_str(&format!(
            "; resume with service-run --cluster {cluster} --service {service} --continue, or --stop-deployment rollback"
        ));
    }
    line
}

/// DescribeServiceDeployments of one ARN.
pub async fn describe(deps: &Deps, arn: &str) -> Result<ServiceDeployment> {
    let out = deps
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .context(format!("describing service deployment {arn}"))?;
    if let Some(sd) = out
        .service_deployments()
        .iter()
        .find(|d| d.service_deployment_arn() == Some(arn))
    {
        return Ok(sd.clone());
    }
    let why = out
        .failures()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f.reason().unwrap_or_default(),
                f.detail().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::aws(
        format!("describing service deployment {arn}"),
        if why.trim().is_empty() {
            "not in the answer".to_string()
        } else {
            why
        },
    ))
}

/// How much older than this run's DescribeServices deployment its service deployment may be
/// listed (the two are created together; their timestamps come from different records).
const SAME_RUN_SLACK_SECS: f64 = 60.0;

/// This run's service deployment: see the module's comment. `None` while it is not listed.
async fn find(
    deps: &Deps,
    cluster: &str,
    service: &str,
    deployment: &Deployment,
) -> Result<Option<String>> {
    let Some(td) = deployment.task_definition() else {
        return Ok(None);
    };
    let listed = deps
        .ecs
        .list_service_deployments()
        .cluster(cluster)
        .service(service)
        .send()
        .await
        .context(format!("listing the service deployments of {service}"))?;
    let briefs = listed.service_deployments();
    // DescribeServiceRevisions takes 20 ARNs: the newest 20 deployments hold this run's.
    let revisions: Vec<String> = briefs
        .iter()
        .filter_map(|b| b.target_service_revision_arn().map(str::to_string))
        .take(20)
        .collect();
    if revisions.is_empty() {
        return Ok(None);
    }
    let described = deps
        .ecs
        .describe_service_revisions()
        .set_service_revision_arns(Some(revisions))
        .send()
        .await
        .context(format!("reading the service revisions of {service}"))?;
    let runs_td = |revision: &str| {
        described.service_revisions().iter().any(|r| {
            r.service_revision_arn() == Some(revision)
                && r.task_definition()
                    .is_some_and(|t| same_task_definition(t, td) || same_task_definition(td, t))
        })
    };
    let created = deployment.created_at().map(|t| t.as_secs_f64());
    let distance = |b: &aws_sdk_ecs::types::ServiceDeploymentBrief| match (
        created,
        b.created_at().map(|t| t.as_secs_f64()),
    ) {
        (Some(a), Some(b)) => (a - b).abs(),
        _ => f64::MAX,
    };
    // An earlier service deployment of the same task definition (a rollback to it, a redeploy)
    // is never this run's: this run's was created with its DescribeServices deployment, not
    // before it (a minute's slack for the two records' clocks). Until ECS lists it, wait.
    let not_older = |b: &aws_sdk_ecs::types::ServiceDeploymentBrief| match (
        created,
        b.created_at().map(|t| t.as_secs_f64()),
    ) {
        (Some(run), Some(listed)) => listed >= run - SAME_RUN_SLACK_SECS,
        // A record without its time: the nearest one, as before (ECS always sends both).
        _ => true,
    };
    Ok(briefs
        .iter()
        .filter(|b| b.target_service_revision_arn().is_some_and(runs_td))
        .filter(|b| not_older(b))
        .min_by(|a, b| distance(a).total_cmp(&distance(b)))
        .and_then(|b| b.service_deployment_arn().map(str::to_string)))
}
