//! The ECS capacity provider over the group (managed scaling, managed termination protection,
//! managed draining), and its place in the cluster's providers and default strategy.

use aws_sdk_ecs::types::{
    AutoScalingGroupProvider, AutoScalingGroupProviderUpdate, CapacityProvider,
    CapacityProviderField, CapacityProviderStrategyItem, Cluster, ManagedDraining, ManagedScaling,
    ManagedScalingStatus, ManagedTerminationProtection, Tag,
};
use ecskit_contract::CLUSTER_TAG;

use super::Args;
use crate::ecs::Deps;
use crate::error::{AwsContext, Error, Result};

/// What a capacity provider is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An Auto Scaling group (what capacity-create makes without `--managed`).
    AutoScalingGroup,
    /// ECS Managed Instances (`--managed`).
    ManagedInstances,
    /// Neither (FARGATE, FARGATE_SPOT, or a kind this version does not know).
    Other,
}

impl Kind {
    fn of(p: &CapacityProvider) -> Kind {
        if p.auto_scaling_group_provider().is_some() {
            Kind::AutoScalingGroup
        } else if p.managed_instances_provider().is_some() {
            Kind::ManagedInstances
        } else {
            Kind::Other
        }
    }

    fn said(self) -> &'static str {
        match self {
            Kind::AutoScalingGroup => "an Auto Scaling group provider",
            Kind::ManagedInstances => "an ECS Managed Instances provider",
            Kind::Other => "neither an Auto Scaling group nor an ECS Managed Instances provider",
        }
    }
}

/// A provider of this name of the other kind than the run's mode: refused before any change
/// (without `--managed` the step never touches a Managed Instances provider, with it never an
/// Auto Scaling group provider).
pub fn wrong_kind(name: &str, kind: Kind) -> Error {
    let (mode, fix) = match kind {
        Kind::ManagedInstances => (
            "without --managed",
            format!("pass --managed to manage {name}, or choose another --name"),
        ),
        Kind::AutoScalingGroup => (
            "with --managed",
            format!("leave out --managed to manage {name}, or choose another --name"),
        ),
        Kind::Other => ("here", "choose another --name".to_string()),
    };
    Error::input(format!(
        "capacity provider {name} is {}: a run {mode} does not change or delete it",
        kind.said()
    ))
    .hint(fix)
}

/// The provider as it is.
pub struct Current {
    pub managed: bool,
    /// The cluster it was made for (its `ecskit:cluster` tag).
    pub cluster: Option<String>,
    pub kind: Kind,
    pub arn: String,
    group_arn: String,
    target: Option<i32>,
    pub scaling_on: bool,
    protection_on: bool,
}

pub async fn read(deps: &Deps, name: &str) -> Result<Option<Current>> {
    Ok(describe(deps, None, name).await?.as_ref().map(current))
}

/// The ACTIVE capacity provider of this name with its tags (a Managed Instances one belongs to
/// a cluster, and is asked for with it).
pub async fn describe(
    deps: &Deps,
    cluster: Option<&str>,
    name: &str,
) -> Result<Option<CapacityProvider>> {
    let out = deps
        .ecs
        .describe_capacity_providers()
        .capacity_providers(name)
        .set_cluster(cluster.map(str::to_string))
        .include(CapacityProviderField::Tags)
        .send()
        .await
        .context(format!("reading capacity provider {name}"))?;
    Ok(out
        .capacity_providers()
        .iter()
        .find(|p| p.name() == Some(name) && p.status().is_none_or(|s| s.as_str() == "ACTIVE"))
        .cloned())
}

pub(super) fn current(p: &CapacityProvider) -> Current {
    let asg = p.auto_scaling_group_provider();
    let scaling = asg.and_then(|a| a.managed_scaling());
    Current {
        managed: crate::ecs::cluster::is_managed(p.tags()),
        cluster: tagged_cluster(p.tags()),
        kind: Kind::of(p),
        arn: p.capacity_provider_arn().unwrap_or_default().to_string(),
        group_arn: asg
            .map(|a| a.auto_scaling_group_arn().to_string())
            .unwrap_or_default(),
        target: scaling.and_then(|s| s.target_capacity()),
        scaling_on: scaling.and_then(|s| s.status()) == Some(&ManagedScalingStatus::Enabled),
        protection_on: asg.and_then(|a| a.managed_termination_protection())
            == Some(&ManagedTerminationProtection::Enabled),
    }
}

/// A provider of this name must be ours and over our group: ECS never moves a provider to
/// another group, and one over someone else's group is not this step's to change.
pub fn check_existing(
    now: Option<&Current>,
    name: &str,
    group: Option<&super::group::Current>,
) -> Result<()> {
    let Some(p) = now else {
        return Ok(());
    };
    if !p.managed {
        return Err(super::not_ours("capacity provider", name));
    }
    if p.kind != Kind::AutoScalingGroup {
        return Err(wrong_kind(name, p.kind));
    }
    let ours = match group {
        Some(g) => p.group_arn == g.arn,
        None => false,
    };
    if !ours {
        return Err(Error::input(format!(
            "capacity provider {name} is over the Auto Scaling group {}, not this step's group {name}",
            p.group_arn
        ))
        .hint("delete that capacity provider (capacity-create --delete) or choose another --name"));
    }
    Ok(())
}

fn scaling(target: i32) -> ManagedScaling {
    ManagedScaling::builder()
        .status(ManagedScalingStatus::Enabled)
        .target_capacity(target)
        .build()
}

/// The provider, created or updated to `--target-capacity`; returns its ARN.
pub async fn converge(
    deps: &Deps,
    args: &Args,
    now: Option<Current>,
    group_arn: &str,
    region: &str,
    account: &str,
) -> Result<String> {
    let name = &args.name;
    let target = args.target_capacity;
    let Some(now) = now else {
        let out = deps
            .ctx
            .mutate(
                format!(
                    "create capacity provider {name} over Auto Scaling group {name} (managed scaling to {target}%, managed termination protection)"
                ),
                deps.ecs
                    .create_capacity_provider()
                    .name(name)
                    .auto_scaling_group_provider(
                        AutoScalingGroupProvider::builder()
                            .auto_scaling_group_arn(group_arn)
                            .managed_scaling(scaling(target))
                            .managed_termination_protection(ManagedTerminationProtection::Enabled)
                            .managed_draining(ManagedDraining::Enabled)
                            .build()
                            .map_err(|e| Error::aws("building the capacity provider", e))?,
                    )
                    .tags(crate::ecs::cluster::tag())
                    .tags(cluster_tag(&args.cluster))
                    .send(),
            )
            .await?;
        return Ok(created_arn(out, region, account, name));
    };
    if now.target != Some(target) || !now.scaling_on || !now.protection_on {
        deps.ctx
            .mutate(
                format!(
                    "update capacity provider {name} (managed scaling to {target}%, managed termination protection)"
                ),
                deps.ecs
                    .update_capacity_provider()
                    .name(name)
                    .auto_scaling_group_provider(
                        AutoScalingGroupProviderUpdate::builder()
                            .managed_scaling(scaling(target))
                            .managed_termination_protection(ManagedTerminationProtection::Enabled)
                            .managed_draining(ManagedDraining::Enabled)
                            .build(),
                    )
                    .send(),
            )
            .await?;
    }
    Ok(now.arn)
}

/// The `ecskit:cluster` tag of a provider made for `cluster`.
pub(super) fn cluster_tag(cluster: &str) -> Tag {
    Tag::builder().key(CLUSTER_TAG).value(cluster).build()
}

/// The cluster an ECS resource is tagged for.
pub(super) fn tagged_cluster(tags: &[Tag]) -> Option<String> {
    super::tagged_cluster(
        tags.iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
    )
}

/// Tags a provider an earlier ecskit made without the cluster tag for `cluster`.
pub async fn tag_cluster(deps: &Deps, name: &str, arn: &str, cluster: &str) -> Result<()> {
    deps.ctx
        .mutate(
            format!("tag capacity provider {name} {CLUSTER_TAG}={cluster} (made before ecskit tagged the cluster)"),
            deps.ecs
                .tag_resource()
                .resource_arn(arn)
                .tags(cluster_tag(cluster))
                .send(),
        )
        .await?;
    Ok(())
}

/// The ARN CreateCapacityProvider answered, or (in a dry run, which sends nothing) the one it
/// would have.
pub(super) fn created_arn(
    out: Option<aws_sdk_ecs::operation::create_capacity_provider::CreateCapacityProviderOutput>,
    region: &str,
    account: &str,
    name: &str,
) -> String {
    out.and_then(|o| o.capacity_provider)
        .and_then(|p| p.capacity_provider_arn)
        .unwrap_or_else(|| format!("arn:aws:ecs:{region}:{account}:capacity-provider/{name}"))
}

fn item(name: &str, weight: i32, base: i32) -> CapacityProviderStrategyItem {
    CapacityProviderStrategyItem::builder()
        .capacity_provider(name)
        .weight(weight)
        .base(base)
        .build()
        .expect("the provider is set")
}

/// The cluster's providers and default strategy, set in one call (ECS replaces both).
async fn put(
    deps: &Deps,
    cluster: &str,
    action: String,
    providers: Vec<String>,
    strategy: Vec<CapacityProviderStrategyItem>,
) -> Result<()> {
    deps.ctx
        .mutate(
            action,
            deps.ecs
                .put_cluster_capacity_providers()
                .cluster(cluster)
                .set_capacity_providers(Some(providers))
                .set_default_capacity_provider_strategy(Some(strategy))
                .send(),
        )
        .await?;
    Ok(())
}

/// The provider in the cluster's list (the cluster is created when missing), and, unless
/// `--no-default-strategy`, the cluster's default strategy `NAME:1`.
pub async fn attach(deps: &Deps, args: &Args, now: Option<Cluster>) -> Result<()> {
    let name = &args.name;
    let cluster = &args.cluster;
    let (mut providers, strategy) = match &now {
        Some(c) => (
            c.capacity_providers().to_vec(),
            c.default_capacity_provider_strategy().to_vec(),
        ),
        None => {
            crate::ecs::cluster::ensure(deps, cluster, false).await?;
            (
                vec!["FARGATE".to_string(), "FARGATE_SPOT".to_string()],
                vec![item("FARGATE", 1, 0)],
            )
        }
    };
    let listed = providers.iter().any(|p| p == name);
    let want_strategy = if args.no_default_strategy {
        strategy.clone()
    } else if replaces_default(&strategy, name) {
        vec![item(name, 1, 0)]
    } else {
        // Someone chose this cluster's default: it stays, and the services name the provider.
        tracing::warn!(
            "cluster {cluster}'s default capacity provider strategy is {}: left as it is; give the services --capacity-provider-strategy {name}:1",
            shown(&strategy)
        );
        strategy.clone()
    };
    let same_strategy = want_strategy.len() == strategy.len()
        && want_strategy.iter().zip(&strategy).all(|(a, b)| {
            (a.capacity_provider(), a.weight(), a.base())
                == (b.capacity_provider(), b.weight(), b.base())
        });
    if listed && same_strategy {
        return Ok(());
    }
    if !listed {
        providers.push(name.clone());
    }
    let action = match (listed, same_strategy) {
        (false, true) => format!("add capacity provider {name} to cluster {cluster}"),
        (true, _) => {
            format!("make {name}:1 the default capacity provider strategy of cluster {cluster}")
        }
        (false, false) => format!(
            "add capacity provider {name} to cluster {cluster} as its default strategy ({name}:1)"
        ),
    };
    put(deps, cluster, action, providers, want_strategy).await
}

/// Whether the cluster's default strategy is this step's to replace: none, the FARGATE:1 a new
/// cluster gets (ecskit's own or ECS's console default), or this provider's already. A strategy
/// someone chose (other providers, weights, a base) is never overwritten.
fn replaces_default(strategy: &[CapacityProviderStrategyItem], name: &str) -> bool {
    match strategy {
        [] => true,
        [only] => {
            let plain = only.weight() <= 1 && only.base() == 0;
            plain && (only.capacity_provider() == "FARGATE" || only.capacity_provider() == name)
        }
        _ => false,
    }
}

fn shown(strategy: &[CapacityProviderStrategyItem]) -> String {
    strategy
        .iter()
        .map(|s| format!("{}:{}", s.capacity_provider(), s.weight()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The provider out of the cluster's list and default strategy (the rest left as it is).
pub async fn detach(deps: &Deps, args: &Args, now: Option<Cluster>) -> Result<()> {
    let name = &args.name;
    let Some(c) = now else {
        return Ok(());
    };
    if !c.capacity_providers().iter().any(|p| p == name) {
        return Ok(());
    }
    let providers: Vec<String> = c
        .capacity_providers()
        .iter()
        .filter(|p| *p != name)
        .cloned()
        .collect();
    let strategy: Vec<CapacityProviderStrategyItem> = c
        .default_capacity_provider_strategy()
        .iter()
        .filter(|s| s.capacity_provider() != name)
        .cloned()
        .collect();
    put(
        deps,
        &args.cluster,
        format!(
            "remove capacity provider {name} from cluster {}",
            args.cluster
        ),
        providers,
        strategy,
    )
    .await
}

pub async fn delete(deps: &Deps, name: &str) -> Result<()> {
    deps.ctx
        .mutate(
            format!("delete capacity provider {name}"),
            deps.ecs
                .delete_capacity_provider()
                .capacity_provider(name)
                .send(),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_or_new_clusters_default_strategy_is_replaced() {
        assert!(replaces_default(&[], "ec2"));
        assert!(replaces_default(&[item("FARGATE", 1, 0)], "ec2"));
        assert!(replaces_default(&[item("ec2", 1, 0)], "ec2"));
        // Chosen by someone: kept.
        assert!(!replaces_default(&[item("FARGATE_SPOT", 1, 0)], "ec2"));
        assert!(!replaces_default(&[item("FARGATE", 1, 2)], "ec2"));
        assert!(!replaces_default(&[item("other-ec2", 1, 0)], "ec2"));
        assert!(!replaces_default(
            &[item("FARGATE", 1, 0), item("FARGATE_SPOT", 3, 0)],
            "ec2"
        ));
    }
}
