//! Where tasks run: the launch type or the capacity provider strategy, and the check of those
//! flags and the awsvpc ones (service-run's service and task-run's tasks alike).

use aws_sdk_ecs::types::{CapacityProviderStrategyItem, LaunchType};

use super::network::NetworkFlags;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaunchTypeArg {
    #[value(name = "FARGATE", alias = "fargate")]
    Fargate,
    #[value(name = "EC2", alias = "ec2")]
    Ec2,
}

impl LaunchTypeArg {
    pub fn sdk(self) -> aws_sdk_ecs::types::LaunchType {
        match self {
            LaunchTypeArg::Fargate => aws_sdk_ecs::types::LaunchType::Fargate,
            LaunchTypeArg::Ec2 => aws_sdk_ecs::types::LaunchType::Ec2,
        }
    }
}

/// `PROVIDER:WEIGHT[:BASE]`.
pub fn parse_strategy_item(
    item: &str,
) -> std::result::Result<CapacityProviderStrategyItem, String> {
    let parts: Vec<&str> = item.split(':').collect();
    let bad =
        || format!("'{item}' is not PROVIDER:WEIGHT[:BASE] (e.g. FARGATE_SPOT:3 or FARGATE:1:1)");
    if parts.is_empty() || parts.len() > 3 || parts[0].is_empty() {
        return Err(bad());
    }
    let weight = match parts.get(1) {
        Some(w) => w.parse::<i32>().map_err(|_| bad())?,
        None => 1,
    };
    let base = match parts.get(2) {
        Some(b) => b.parse::<i32>().map_err(|_| bad())?,
        None => 0,
    };
    if !(0..=1000).contains(&weight) || !(0..=100_000).contains(&base) {
        return Err(bad());
    }
    CapacityProviderStrategyItem::builder()
        .capacity_provider(parts[0])
        .weight(weight)
        .base(base)
        .build()
        .map_err(|e| e.to_string())
}

/// Whether the tasks run on Fargate: the launch type, or a strategy of Fargate providers only
/// (the default when neither is given).
pub fn fargate(
    launch_type: Option<&LaunchType>,
    strategy: &[CapacityProviderStrategyItem],
) -> bool {
    if strategy.is_empty() {
        launch_type.is_none_or(|l| *l == LaunchType::Fargate)
    } else {
        strategy
            .iter()
            .all(|s| s.capacity_provider().starts_with("FARGATE"))
    }
}

/// The problems of the placement flags (`--launch-type`, `--capacity-provider-strategy`,
/// `--subnets`, `--security-groups`, `--assign-public-ip`), each as bad input.
pub fn check(
    launch_type: Option<LaunchTypeArg>,
    strategy: &[String],
    network: &NetworkFlags,
) -> Vec<String> {
    let mut problems = Vec::new();
    for item in strategy {
        if let Err(e) = parse_strategy_item(item) {
            problems.push(format!("--capacity-provider-strategy {e}"));
        }
    }
    // The ids' shape, checked as a service file's are (a trailing space, a placeholder).
    for (flag, ids, shape) in [
        (
            "--subnets",
            &network.subnets,
            crate::service_run::service_file::subnet_id as fn(&str) -> Result<(), String>,
        ),
        (
            "--security-groups",
            &network.security_groups,
            crate::service_run::service_file::security_group_id,
        ),
    ] {
        for id in ids {
            if let Err(e) = shape(id) {
                problems.push(format!("{flag} {e}"));
            }
        }
    }
    if launch_type == Some(LaunchTypeArg::Ec2) && network.assign_public_ip == Some(true) {
        problems.push(
            "--assign-public-ip with --launch-type EC2: ECS gives EC2 tasks in awsvpc mode no public IP; drop the flag (the instances' network, a NAT or VPC endpoints reach the registry)"
                .to_string(),
        );
    }
    problems
}
