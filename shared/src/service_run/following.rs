//! The flags that follow and steer a blue/green, canary or linear rollout: `--wait-until`
//! (where the watch may stop with exit 0), `--continue` and `--stop-deployment` (what a person or
//! a CI job does to a deployment under way). The stage follower itself is [`super::stages`],
//! the two commands [`super::steer`].

use aws_sdk_ecs::types::ServiceDeploymentLifecycleStage;

use super::{Args, Deps};
use crate::error::{Error, Result};

/// ECS's lifecycle stages in the order a deployment goes through them (the API reference's
/// ServiceDeployment.lifecycleStage). Canary and linear repeat the production traffic shift.
/// PRE_PRODUCTION_TRAFFIC_SHIFT is a stage a hook may run at, never one a deployment reports:
/// a wait for it would be met only once production traffic moves (see [`HOOK_ONLY`]).
pub const STAGES: [&str; 10] = [
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
];

/// The hook stage no deployment reports as its own, and where to wait instead.
pub const HOOK_ONLY: &str = "PRE_PRODUCTION_TRAFFIC_SHIFT";

/// Where the watch stops with exit 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WaitUntil {
    /// The deployment finished: rolling COMPLETED with every task running, a staged deployment
    /// SUCCESSFUL.
    #[default]
    Stable,
    /// The new revision takes all the traffic: a staged deployment past its production traffic
    /// shift (bake time and clean-up may still run); a rolling one with all its tasks running.
    Deployed,
    /// A lifecycle stage of a staged deployment, entered (or passed).
    Stage(String),
}

impl WaitUntil {
    /// The stage's place in [`STAGES`]: `deployed` is the production shift's end.
    pub fn stage_index(&self) -> Option<usize> {
        let name = match self {
            WaitUntil::Stable => return None,
            WaitUntil::Deployed => "POST_PRODUCTION_TRAFFIC_SHIFT",
            WaitUntil::Stage(s) => s.as_str(),
        };
        STAGES.iter().position(|s| *s == name)
    }

    pub fn as_str(&self) -> &str {
        match self {
            WaitUntil::Stable => "stable",
            WaitUntil::Deployed => "deployed",
            WaitUntil::Stage(s) => s,
        }
    }
}

/// `stable`, `deployed`, or a stage name in any case (`bake_time`, ecspresso's `ecs:BAKE_TIME`).
pub fn parse_wait_until(s: &str) -> std::result::Result<WaitUntil, String> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "stable" => return Ok(WaitUntil::Stable),
        "deployed" => return Ok(WaitUntil::Deployed),
        _ => {}
    }
    let upper = t
        .strip_prefix("ecs:")
        .unwrap_or(t)
        .to_ascii_uppercase()
        .replace('-', "_");
    if upper == HOOK_ONLY {
        Err(format!(
            "'{s}': ECS runs hooks at {HOOK_ONLY} but never reports it as the deployment's stage, so a wait for it would end only once production traffic moves: wait until POST_TEST_TRAFFIC_SHIFT (with --pause-at POST_TEST_TRAFFIC_SHIFT to hold it there)"
        ))
    } else if STAGES.contains(&upper.as_str()) {
        Ok(WaitUntil::Stage(upper))
    } else {
        Err(format!(
            "'{s}' is not stable, deployed or a lifecycle stage ({})",
            STAGES.join(", ")
        ))
    }
}

/// How `--stop-deployment` stops it (StopServiceDeployment's stopType).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StopKind {
    /// Back to the revision that ran before; ECS shifts the traffic back.
    Rollback,
    /// Stop where it is, without rolling back.
    Abort,
}

/// The flags, flattened into service-run's.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Following a rollout")]
pub struct FollowArgs {
    /// Stop watching with exit 0 once the deployment gets here: `stable` (it finished),
    /// `deployed` (the new revision takes all production traffic; bake time may still run), or
    /// a lifecycle stage of a blue/green, canary or linear deployment (TEST_TRAFFIC_SHIFT,
    /// POST_TEST_TRAFFIC_SHIFT, BAKE_TIME ...), for a CI job to test against the test
    /// listener and then --continue. Prints the stage reached and the deployment's ARN.
    /// --no-wait wins over it (the variable may be set for a whole job).
    #[arg(
        long,
        env = "ECSKIT_WAIT_UNTIL",
        value_name = "stable|deployed|STAGE",
        default_value = "stable",
        value_parser = parse_wait_until
    )]
    pub wait_until: WaitUntil,
    /// Resume the service's deployment held by a pause hook (ContinueServiceDeployment, action
    /// CONTINUE); names the deployment. Before its first pause: waits for it, up to --timeout
    /// (with --no-wait: exit 2); a later pause: wait for it with --wait-until first. Follow it
    /// afterwards with --watch.
    #[arg(
        long = "continue",
        requires = "service",
        conflicts_with_all = ["stop_deployment", "watch", "delete", "delete_cluster", "export", "logs", "rollback", "service_file"]
    )]
    pub resume: bool,
    /// Stop the service's deployment in progress (StopServiceDeployment): `rollback` to the
    /// revision before, or `abort` where it stands; names the deployment.
    #[arg(
        long,
        value_enum,
        value_name = "rollback|abort",
        requires = "service",
        conflicts_with_all = ["watch", "delete", "delete_cluster", "export", "logs", "rollback", "service_file"]
    )]
    pub stop_deployment: Option<StopKind>,
}

impl FollowArgs {
    /// Whether this run acts on a deployment under way instead of deploying.
    pub fn steers(&self) -> bool {
        self.resume || self.stop_deployment.is_some()
    }
}

/// The strategy a service deploys with, from its deployment configuration: `None` is rolling.
pub fn staged_strategy(
    config: Option<&aws_sdk_ecs::types::DeploymentConfiguration>,
) -> Option<String> {
    use aws_sdk_ecs::types::DeploymentStrategy;
    match config.and_then(|c| c.strategy()) {
        None | Some(DeploymentStrategy::Rolling) => None,
        Some(s) => Some(s.as_str().to_string()),
    }
}

/// `--wait-until STAGE` needs a deployment with stages. Checked before the first mutating call
/// (exit 2, nothing changed): the strategy --strategy or the service file asks for, else the
/// live service's.
/// A rolling deployment has no lifecycle stage to wait for, and waiting for one that never
/// comes would end only at the timeout.
pub async fn check_stage_wait(
    deps: &Deps,
    args: &Args,
    file: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<()> {
    // --no-wait: nothing is waited for, so no stage either.
    if args.no_wait || !matches!(args.follow.wait_until, WaitUntil::Stage(_)) {
        return Ok(());
    }
    // --strategy wins over the file (it is laid over it), the file over the live service.
    let from_flag = args.rollout.strategy.map(|s| s.api().to_string());
    let from_file = from_flag.or_else(|| {
        file.and_then(|f| f.get("deploymentConfiguration"))
            .and_then(|d| d.get("strategy"))
            .and_then(|s| s.as_str())
            .map(str::to_string)
    });
    let strategy = match from_file {
        Some(s) => Some(s).filter(|s| s != "ROLLING"),
        None => {
            let name = args.service.clone().unwrap_or_default();
            super::describe_service(deps, &args.cluster, &name)
                .await?
                .and_then(|svc| staged_strategy(svc.deployment_configuration()))
        }
    };
    stage_wait_fits(args, strategy)
}

/// The refusal of `--wait-until STAGE` for a service whose `strategy` is rolling (`None`).
pub fn stage_wait_fits(args: &Args, strategy: Option<String>) -> Result<()> {
    match &args.follow.wait_until {
        WaitUntil::Stage(stage) if strategy.is_none() => Err(Error::input(format!(
            "--wait-until {stage}: service {} deploys with the rolling strategy, which has no lifecycle stages",
            args.service.as_deref().unwrap_or_default()
        ))
        .hint("use --wait-until stable or deployed, or deploy it blue/green, canary or linear (deploymentConfiguration.strategy)")),
        _ => Ok(()),
    }
}

/// The stage in [`STAGES`] order; `None` for a stage newer than this tool.
pub fn stage_index(stage: &ServiceDeploymentLifecycleStage) -> Option<usize> {
    STAGES.iter().position(|s| *s == stage.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_takes_stable_deployed_and_each_stage_in_any_case() {
        assert_eq!(parse_wait_until("stable"), Ok(WaitUntil::Stable));
        assert_eq!(parse_wait_until("Deployed"), Ok(WaitUntil::Deployed));
        assert_eq!(
            parse_wait_until("ecs:post_test_traffic_shift"),
            Ok(WaitUntil::Stage("POST_TEST_TRAFFIC_SHIFT".into()))
        );
        for stage in STAGES {
            assert_eq!(parse_wait_until(stage), Ok(WaitUntil::Stage(stage.into())));
        }
        let err = parse_wait_until("TEST_TRAFIC_SHIFT").unwrap_err();
        assert!(err.contains("TEST_TRAFFIC_SHIFT, POST_TEST"), "{err}");
        // A hook stage that is never a deployment's: refused, pointing to the stage to wait for.
        let err = parse_wait_until("pre_production_traffic_shift").unwrap_err();
        assert!(
            err.contains("never reports it") && err.contains("wait until POST_TEST_TRAFFIC_SHIFT"),
            "{err}"
        );
    }

    #[test]
    fn deployed_is_the_end_of_the_production_shift() {
        let at = |s: &str| STAGES.iter().position(|x| *x == s);
        assert_eq!(
            WaitUntil::Deployed.stage_index(),
            at("POST_PRODUCTION_TRAFFIC_SHIFT")
        );
        assert_eq!(WaitUntil::Stable.stage_index(), None);
    }
}
