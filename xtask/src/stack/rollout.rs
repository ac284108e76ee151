//! A service's rollout (`[service.rollout]`, `[services.NAME.service.rollout]`): service-run's
//! rollout flags, one key per flag, in the stack file.
//!
//! ```toml
//! [service.rollout]
//! strategy = "canary"
//! canary_percent = 10
//! canary_bake_time = "15m"
//! bake_time = "30m"
//! alternate_target_group = "arn:aws:elasticloadbalancing:...:targetgroup/web-green/..."
//! production_listener_rule = "arn:aws:elasticloadbalancing:...:listener-rule/app/..."
//! load_balancer_role = "arn:aws:iam::123456789012:role/ecs-infrastructure"
//! alarms = ["web-5xx"]
//! pause_at = ["POST_TEST_TRAFFIC_SHIFT"]
//! [service.rollout.hooks]
//! POST_TEST_TRAFFIC_SHIFT = "arn:aws:lambda:...:function:smoke-test"
//! ```
//!
//! The types are checked when the file is read (a strategy that is not one of the four, a
//! percent that is not a number); the values' ranges and what a strategy needs are
//! service-run's own check, which refuses them (exit 2) before its first mutating call, so
//! they are checked in one place.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Rollout {
    pub strategy: Option<Strategy>,
    pub bake_time: Option<String>,
    pub canary_percent: Option<f64>,
    pub canary_bake_time: Option<String>,
    pub linear_step_percent: Option<f64>,
    pub linear_step_bake_time: Option<String>,
    pub alternate_target_group: Option<String>,
    pub production_listener_rule: Option<String>,
    pub test_listener_rule: Option<String>,
    pub load_balancer_role: Option<String>,
    /// STAGE = LAMBDA_ARN.
    #[serde(default)]
    pub hooks: BTreeMap<String, String>,
    pub hook_role: Option<String>,
    pub hook_timeout: Option<String>,
    pub hook_timeout_action: Option<HookAction>,
    #[serde(default)]
    pub pause_at: Vec<String>,
    #[serde(default)]
    pub alarms: Vec<String>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Rolling,
    BlueGreen,
    Canary,
    Linear,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum HookAction {
    Continue,
    Rollback,
}

impl Rollout {
    /// service-run's flags for this rollout, in `--flag=value` form (a value never reads as a
    /// flag).
    pub fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut kv = |flag: &str, v: &str| a.push(format!("--{flag}={v}"));
        if let Some(s) = self.strategy {
            kv(
                "strategy",
                match s {
                    Strategy::Rolling => "rolling",
                    Strategy::BlueGreen => "blue-green",
                    Strategy::Canary => "canary",
                    Strategy::Linear => "linear",
                },
            );
        }
        for (flag, v) in [
            ("bake-time", &self.bake_time),
            ("canary-bake-time", &self.canary_bake_time),
            ("linear-step-bake-time", &self.linear_step_bake_time),
            ("alternate-target-group", &self.alternate_target_group),
            ("production-listener-rule", &self.production_listener_rule),
            ("test-listener-rule", &self.test_listener_rule),
            ("load-balancer-role", &self.load_balancer_role),
            ("hook-role", &self.hook_role),
            ("hook-timeout", &self.hook_timeout),
        ] {
            if let Some(v) = v {
                kv(flag, v);
            }
        }
        for (flag, v) in [
            ("canary-percent", self.canary_percent),
            ("linear-step-percent", self.linear_step_percent),
        ] {
            if let Some(p) = v {
                kv(flag, &p.to_string());
            }
        }
        if let Some(action) = self.hook_timeout_action {
            kv(
                "hook-timeout-action",
                match action {
                    HookAction::Continue => "continue",
                    HookAction::Rollback => "rollback",
                },
            );
        }
        for (stage, arn) in &self.hooks {
            kv("hook", &format!("{stage}={arn}"));
        }
        for stage in &self.pause_at {
            kv("pause-at", stage);
        }
        for alarm in &self.alarms {
            kv("alarm", alarm);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::tests::dir;

    #[test]
    fn a_rollout_table_becomes_service_runs_flags_and_a_bad_strategy_is_refused() {
        let d = dir();
        let text = r#"
[app]
name = "web"
region = "eu-west-1"
[image]
source = "web:1"
[roles]
bucket = "web-config"
[task_definition]
file = "taskdef.json"
[service.rollout]
strategy = "canary"
canary_percent = 10
canary_bake_time = "15m"
alternate_target_group = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/1"
production_listener_rule = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web/1/2/3"
load_balancer_role = "arn:aws:iam::123456789012:role/ecs-infra"
alarms = ["web-5xx", "web-latency"]
pause_at = ["POST_TEST_TRAFFIC_SHIFT"]
[service.rollout.hooks]
POST_TEST_TRAFFIC_SHIFT = "arn:aws:lambda:eu-west-1:123456789012:function:smoke"
"#;
        let stacks = parse(text, &d).unwrap_or_else(|p| panic!("{p:?}"));
        let args = stacks.services[0].rollout.args();
        assert_eq!(
            args,
            [
                "--strategy=canary",
                "--canary-bake-time=15m",
                "--alternate-target-group=arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/1",
                "--production-listener-rule=arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web/1/2/3",
                "--load-balancer-role=arn:aws:iam::123456789012:role/ecs-infra",
                "--canary-percent=10",
                "--hook=POST_TEST_TRAFFIC_SHIFT=arn:aws:lambda:eu-west-1:123456789012:function:smoke",
                "--pause-at=POST_TEST_TRAFFIC_SHIFT",
                "--alarm=web-5xx",
                "--alarm=web-latency",
            ]
        );
        let bad = text.replace("\"canary\"", "\"big-bang\"");
        let problems = parse(&bad, &d).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("big-bang")
                && p.contains("rolling")
                && p.contains("blue-green")),
            "{problems:?}"
        );
        let typo = text.replace("canary_percent", "canary_percnt");
        let problems = parse(&typo, &d).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("unknown key `service.rollout.canary_percnt`")),
            "{problems:?}"
        );
    }
}
