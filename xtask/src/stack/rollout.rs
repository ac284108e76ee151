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
//! percent that is not a number); the values' ranges and what a strategy needs by service-run's
//! own check ([`ecskit_contract::rollout::check`]) when the stack is checked, before the chain's
//! first step: a bad bake time must not be found after the image was pushed and the roles made.

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

/// service-run's rollout flags, parsed as service-run parses them.
#[derive(clap::Parser)]
struct Flags {
    #[command(flatten)]
    rollout: ecskit_contract::rollout::RolloutArgs,
}

impl Rollout {
    /// What service-run would refuse in this rollout, each problem under `service.rollout`. With
    /// a service file the load balancer may be the file's, so only the rollout's own values are
    /// checked here (service-run checks them laid over the file).
    pub fn check(&self, with_file: bool, problems: &mut Vec<String>) {
        use clap::Parser;
        use ecskit_contract::rollout;
        let argv = std::iter::once("service-run".to_string()).chain(self.args());
        let flags = match Flags::try_parse_from(argv) {
            Ok(f) => f,
            Err(e) => {
                let first = e.to_string();
                let first = first
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ");
                problems.push(format!("service.rollout: {first}"));
                return;
            }
        };
        // ECS needs a bake time with blue-green; a live service may have its own, which
        // service-run keeps (and without one, refuses before any change).
        if self.strategy == Some(Strategy::BlueGreen) && self.bake_time.is_none() {
            eprintln!(
                "note: service.rollout: strategy \"blue-green\" without bake_time: ECS needs one; the service's own is kept, and a service without one is refused (add bake_time = \"5m\")"
            );
        }
        let found = if with_file {
            let (r, mut found) = rollout::rollout(&flags.rollout);
            found.extend(rollout::check_document(&r.deployment, None));
            found
        } else {
            rollout::check(&flags.rollout, None)
        };
        problems.extend(found.into_iter().map(|p| format!("service.rollout: {p}")));
    }

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
hook_role = "arn:aws:iam::123456789012:role/ecs-hooks"
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
                "--hook-role=arn:aws:iam::123456789012:role/ecs-hooks",
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

    /// The values service-run would refuse are refused when the stack is read, before the
    /// chain's first step, each naming the table, the flag and the field.
    #[test]
    fn out_of_range_values_are_refused_when_the_stack_is_checked() {
        let d = dir();
        let text = |rollout: &str, file: bool| {
            format!(
                "[app]\nname = \"web\"\nregion = \"eu-west-1\"\n[roles]\nbucket = \"web-config\"\n[task_definition]\nfile = \"taskdef.json\"\n{}[service.rollout]\n{rollout}\n",
                if file {
                    "[service]\nfile = \"taskdef.json\"\n"
                } else {
                    ""
                }
            )
        };
        let problems = parse(
            &text(
                "strategy = \"canary\"\ncanary_percent = 0.05\nbake_time = \"90s\"",
                false,
            ),
            &d,
        )
        .unwrap_err();
        for wanted in [
            "service.rollout: --bake-time 90s is not whole minutes",
            "service.rollout: --canary-percent (canaryConfiguration.canaryPercent): 0.05 is not a percent from 0.1 to 100",
            "service.rollout: strategy CANARY shifts traffic between two target groups and needs --alternate-target-group",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(wanted)),
                "{wanted}: {problems:?}"
            );
        }
        // With a service file the load balancer may be the file's: only the values are checked.
        let problems = parse(
            &text("strategy = \"linear\"\nlinear_step_percent = 2", true),
            &d,
        )
        .unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with(
                "service.rollout: --linear-step-percent (linearConfiguration.stepPercent): 2.0 is not a percent from 3 to 100"
            )),
            "{problems:?}"
        );
        assert!(
            !problems
                .iter()
                .any(|p| p.contains("needs --alternate-target-group")),
            "{problems:?}"
        );
        assert!(
            parse(
                &text("strategy = \"linear\"\nlinear_step_percent = 10", true),
                &d
            )
            .is_ok()
        );
    }
}
