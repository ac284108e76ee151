//! awsvpc networking: the flags, or the default VPC's default subnets and `default` security
//! group when none are given (announced on stderr), and a clear error without a default VPC.

use aws_sdk_ec2::types::Filter;
use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration, NetworkConfiguration};

use super::Deps;
use crate::error::{AwsContext, Error, Result};

/// The awsvpc settings the user asked for; empty lists mean "not given".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkFlags {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: Option<bool>,
}

impl NetworkFlags {
    pub fn any(&self) -> bool {
        !self.subnets.is_empty()
            || !self.security_groups.is_empty()
            || self.assign_public_ip.is_some()
    }
}

/// The network for a new service or task: the flags, with the gaps filled from the default VPC.
/// With the default VPC a Fargate task gets a public IP unless `--assign-public-ip=false`: its
/// subnets have no NAT, and a Fargate task without one cannot pull its image. An EC2 task never
/// gets one: ECS refuses `assignPublicIp=ENABLED` for the EC2 launch type (the instance's
/// network reaches the registry).
pub async fn resolve(
    deps: &Deps,
    flags: &NetworkFlags,
    fargate: bool,
) -> Result<NetworkConfiguration> {
    let mut subnets = flags.subnets.clone();
    let mut groups = flags.security_groups.clone();
    let mut public = flags.assign_public_ip;
    if subnets.is_empty() || groups.is_empty() {
        let vpc = default_vpc(deps).await?;
        if subnets.is_empty() {
            subnets = default_subnets(deps, &vpc).await?;
            public.get_or_insert(fargate);
            deps.progress.println(format!(
                "no --subnets given: using the default VPC {vpc}'s subnets {}",
                subnets.join(",")
            ));
        }
        if groups.is_empty() {
            groups = vec![default_security_group(deps, &vpc).await?];
            deps.progress.println(format!(
                "no --security-groups given: using the default VPC {vpc}'s default security group {}",
                groups[0]
            ));
        }
    }
    Ok(configuration(subnets, groups, public.unwrap_or(false)))
}

pub fn configuration(
    subnets: Vec<String>,
    groups: Vec<String>,
    public: bool,
) -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(subnets))
                .set_security_groups(Some(groups))
                .assign_public_ip(if public {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()
                .expect("subnets are set"),
        )
        .build()
}

/// The network of an existing service with the given flags laid over it (an update changes
/// only what was given).
pub fn overlay(
    existing: Option<&NetworkConfiguration>,
    flags: &NetworkFlags,
) -> Option<NetworkConfiguration> {
    let current = existing.and_then(|n| n.awsvpc_configuration());
    if current.is_none() && !flags.any() {
        return None;
    }
    let subnets = if flags.subnets.is_empty() {
        current.map(|c| c.subnets().to_vec()).unwrap_or_default()
    } else {
        flags.subnets.clone()
    };
    let groups = if flags.security_groups.is_empty() {
        current
            .map(|c| c.security_groups().to_vec())
            .unwrap_or_default()
    } else {
        flags.security_groups.clone()
    };
    let public = flags.assign_public_ip.unwrap_or_else(|| {
        current.and_then(|c| c.assign_public_ip()) == Some(&AssignPublicIp::Enabled)
    });
    Some(configuration(subnets, groups, public))
}

/// Whether two network configurations mean the same (order of ids does not matter; a missing
/// assignPublicIp is DISABLED, as ECS treats it).
pub fn same(a: Option<&NetworkConfiguration>, b: Option<&NetworkConfiguration>) -> bool {
    let norm = |n: Option<&NetworkConfiguration>| {
        n.and_then(|n| n.awsvpc_configuration()).map(|c| {
            let mut s = c.subnets().to_vec();
            s.sort();
            let mut g = c.security_groups().to_vec();
            g.sort();
            (s, g, c.assign_public_ip() == Some(&AssignPublicIp::Enabled))
        })
    };
    norm(a) == norm(b)
}

async fn default_vpc(deps: &Deps) -> Result<String> {
    let out = deps
        .ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .context("looking up the default VPC")?;
    out.vpcs()
        .iter()
        .find_map(|v| v.vpc_id().map(str::to_string))
        .ok_or_else(|| {
            Error::input("no --subnets/--security-groups given and this region has no default VPC")
                .hint("pass --subnets subnet-...,subnet-... and --security-groups sg-... of the VPC the tasks should run in")
        })
}

async fn default_subnets(deps: &Deps, vpc: &str) -> Result<Vec<String>> {
    let out = deps
        .ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .send()
        .await
        .context(format!("listing the subnets of the default VPC {vpc}"))?;
    let all: Vec<_> = out.subnets().to_vec();
    let defaults: Vec<String> = all
        .iter()
        .filter(|s| s.default_for_az() == Some(true))
        .filter_map(|s| s.subnet_id().map(str::to_string))
        .collect();
    let mut ids = if defaults.is_empty() {
        all.iter()
            .filter_map(|s| s.subnet_id().map(str::to_string))
            .collect()
    } else {
        defaults
    };
    ids.sort();
    if ids.is_empty() {
        return Err(
            Error::input(format!("the default VPC {vpc} has no subnets"))
                .hint("pass --subnets subnet-...,subnet-..."),
        );
    }
    Ok(ids)
}

async fn default_security_group(deps: &Deps, vpc: &str) -> Result<String> {
    let out = deps
        .ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .values("default")
                .build(),
        )
        .send()
        .await
        .context(format!(
            "looking up the default security group of VPC {vpc}"
        ))?;
    out.security_groups()
        .iter()
        .find_map(|g| g.group_id().map(str::to_string))
        .ok_or_else(|| {
            Error::input(format!(
                "the default VPC {vpc} has no `default` security group"
            ))
            .hint("pass --security-groups sg-...")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_keeps_what_was_not_given() {
        let existing = configuration(
            vec!["subnet-b".into(), "subnet-a".into()],
            vec!["sg-1".into()],
            true,
        );
        let flags = NetworkFlags {
            security_groups: vec!["sg-2".into()],
            ..Default::default()
        };
        let new = overlay(Some(&existing), &flags).unwrap();
        let c = new.awsvpc_configuration().unwrap();
        assert_eq!(c.subnets(), ["subnet-b", "subnet-a"]);
        assert_eq!(c.security_groups(), ["sg-2"]);
        assert_eq!(c.assign_public_ip(), Some(&AssignPublicIp::Enabled));
        assert!(!same(Some(&existing), Some(&new)));
        let reordered = configuration(
            vec!["subnet-a".into(), "subnet-b".into()],
            vec!["sg-1".into()],
            true,
        );
        assert!(same(Some(&existing), Some(&reordered)));
        assert!(overlay(None, &NetworkFlags::default()).is_none());
    }
}
