//! ECS Managed Instances (`--managed`): AWS launches, patches and replaces the instances, so
//! there is no launch template or Auto Scaling group of ours. The step makes (or is given) the
//! infrastructure role ECS launches them with, and one capacity provider of the cluster with a
//! managed instances provider: that role, the instance profile, the subnets, security groups,
//! root volume size and On-Demand or Spot.
//!
//! The provider part talks to ECS only ([`converge_provider`], [`delete_provider`]); the
//! emulator has no Managed Instances, so that part is tested on recorded answers.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::types::{
    CapacityOptionType, CapacityProvider, CreateManagedInstancesProviderConfiguration,
    InstanceLaunchTemplate, InstanceLaunchTemplateUpdate, ManagedInstancesNetworkConfiguration,
    ManagedInstancesStorageConfiguration, UpdateManagedInstancesProviderConfiguration,
};

use super::Args;
use crate::aws::Ctx;
use crate::ecs::Deps;
use crate::error::{Error, Result};
use crate::iam::{policy, role};

/// The AWS managed policy ECS's guide gives the Managed Instances infrastructure role.
const INFRASTRUCTURE_POLICY: &str = "AmazonECSInfrastructureRolePolicyForManagedInstances";

/// The managed instances provider as this step sets it (and reads it back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub infrastructure_role_arn: String,
    pub instance_profile_arn: String,
    /// Sorted.
    pub subnets: Vec<String>,
    /// Sorted.
    pub security_groups: Vec<String>,
    pub root_volume_gib: i32,
    pub spot: bool,
}

/// The role this step makes when `--infrastructure-role-arn` is not given: `NAME-infrastructure`,
/// trusted by ECS, with the managed policy, tagged managed-by=ecskit and `ecskit:cluster` =
/// `REGION/CLUSTER` ([`role_owner`]: IAM is account-wide, so another cluster, or the same
/// cluster name in another region, with the same `--name` would otherwise share it).
pub fn infrastructure_role(
    name: &str,
    region: &str,
    cluster: &str,
    partition: &str,
) -> role::DesiredRole {
    let policy = policy::aws_managed(partition, "", INFRASTRUCTURE_POLICY);
    let mut tags = role::tags(&[]);
    tags.insert(
        ecskit_contract::CLUSTER_TAG.into(),
        role_owner(region, cluster),
    );
    role::DesiredRole {
        name: format!("{name}-infrastructure"),
        path: "/".into(),
        trust: policy::service_trust(&["ecs.amazonaws.com"]),
        inline: BTreeMap::new(),
        managed: BTreeSet::from([policy.clone()]),
        managed_known: BTreeSet::from([policy]),
        tags,
        permissions_boundary: None,
        description: "ECS Managed Instances infrastructure role (ecskit)".into(),
    }
}

/// The infrastructure role's `ecskit:cluster` tag: `REGION/CLUSTER`, because an IAM role is
/// account-wide while a cluster is regional (the EC2, Auto Scaling and ECS tags hold the bare
/// cluster name: those resources are regional).
pub fn role_owner(region: &str, cluster: &str) -> String {
    format!("{region}/{cluster}")
}

/// What a run does with `NAME-infrastructure`.
enum RolePlan {
    /// Ours for this cluster, or missing: made or brought to the desired role.
    Converge(Box<role::DesiredRole>, role::Checked),
    /// Not known to be this cluster's but already an infrastructure role: referenced, no call.
    AsIs(String),
}

/// Reads `NAME-infrastructure` and decides, before any change, what converging may do with
/// it. A role tagged for this cluster (`REGION/CLUSTER`), or missing, is converged; one tagged
/// for another is refused. One an earlier ecskit made without the cluster tag is converged and
/// tagged only when this cluster's own provider (`provider_role`, already claimed for this
/// cluster) uses it. Otherwise, and always for a role ecskit did not make, it is never changed:
/// used as it is when it already trusts ECS and has the policy, else refused.
async fn plan_role(
    ctx: &Ctx,
    args: &Args,
    region: &str,
    partition: &str,
    provider_role: Option<&str>,
) -> Result<RolePlan> {
    let desired = infrastructure_role(&args.name, region, &args.cluster, partition);
    let checked = role::check_converge(ctx, &desired).await?;
    let Some(arn) = checked.arn().map(str::to_string) else {
        return Ok(RolePlan::Converge(Box::new(desired), checked));
    };
    let owner = role_owner(region, &args.cluster);
    let why = match decide_role(
        checked.unmanaged_arn().is_none(),
        checked.tag(ecskit_contract::CLUSTER_TAG),
        &arn,
        &owner,
        provider_role,
    ) {
        RoleDecision::Converge => return Ok(RolePlan::Converge(Box::new(desired), checked)),
        RoleDecision::TakeOver => {
            tracing::info!(
                "role {} was made by an ecskit that did not tag its cluster, and capacity provider {} of cluster {} uses it: taken as this cluster's",
                desired.name,
                args.name,
                args.cluster
            );
            return Ok(RolePlan::Converge(Box::new(desired), checked));
        }
        RoleDecision::Another(other) => return Err(role_of_another(&desired.name, other, &owner)),
        RoleDecision::OnlyAsIs(why) => why,
    };
    let policy = policy::aws_managed(partition, "", INFRASTRUCTURE_POLICY);
    if checked.trusts_service("ecs.amazonaws.com")
        && role::attached_policies(ctx, &desired.name)
            .await?
            .contains(&policy)
    {
        tracing::warn!(
            "role {} {why}; it trusts ECS and has {INFRASTRUCTURE_POLICY}, so it is used as it is (never changed, never deleted)",
            desired.name
        );
        return Ok(RolePlan::AsIs(arn));
    }
    Err(Error::input(format!(
        "role {} exists and {why}, so this run will not change it (it does not both trust ecs.amazonaws.com and have {INFRASTRUCTURE_POLICY})",
        desired.name
    ))
    .hint("pass --infrastructure-role-arn with a role of yours, or choose another --name"))
}

/// What may be done with an existing `NAME-infrastructure` (see [`plan_role`]).
#[derive(Debug, PartialEq, Eq)]
pub enum RoleDecision<'a> {
    /// Tagged for this cluster (`REGION/CLUSTER`): converged.
    Converge,
    /// Made by an ecskit without the cluster tag, and this cluster's provider uses it: converged
    /// and tagged for this cluster.
    TakeOver,
    /// Tagged for another cluster (the tag's value): refused.
    Another(&'a str),
    /// Not known to be this cluster's (why): never changed, used only as it is.
    OnlyAsIs(&'static str),
}

/// The decision of [`plan_role`] on an existing role: `managed` (tagged managed-by=ecskit),
/// its `ecskit:cluster` tag, its ARN, this cluster's `REGION/CLUSTER` and the infrastructure
/// role ARN of this cluster's own provider, if any.
pub fn decide_role<'a>(
    managed: bool,
    tagged: Option<&'a str>,
    arn: &str,
    owner: &str,
    provider_role: Option<&str>,
) -> RoleDecision<'a> {
    if !managed {
        return RoleDecision::OnlyAsIs("is not tagged managed-by=ecskit: ecskit did not make it");
    }
    match tagged {
        Some(t) if t == owner => RoleDecision::Converge,
        Some(other) => RoleDecision::Another(other),
        None if provider_role == Some(arn) => RoleDecision::TakeOver,
        None => RoleDecision::OnlyAsIs(
            "was made by an ecskit that did not tag its cluster, and no capacity provider of this cluster uses it: it may serve another cluster of the same --name",
        ),
    }
}

/// The infrastructure role is account-wide: one tagged for another cluster (another cluster
/// with the same `--name`, or the same cluster name in another region) is that cluster's.
fn check_role_cluster(
    checked: &role::Checked,
    name: &str,
    region: &str,
    cluster: &str,
) -> Result<()> {
    let owner = role_owner(region, cluster);
    match checked.tag(ecskit_contract::CLUSTER_TAG) {
        Some(other) if other != owner => Err(role_of_another(name, other, &owner)),
        _ => Ok(()),
    }
}

fn role_of_another(name: &str, other: &str, owner: &str) -> Error {
    Error::input(format!(
        "role {name} was made by ecskit for cluster {other}, not {owner}: IAM roles are account-wide, so capacity providers of the same --name share it"
    ))
    .hint("choose another --name, or pass --infrastructure-role-arn")
}

/// The instance profile's ARN (ECS takes an ARN, instance-profile prints a name); a missing
/// profile is bad input, found before any change.
async fn instance_profile_arn(ctx: &Ctx, name: &str) -> Result<String> {
    match crate::instance_profile::get_profile(ctx, name).await? {
        Some(p) => Ok(p.arn),
        None => Err(
            Error::input(format!("instance profile {name} does not exist"))
                .hint("run instance-profile first, or pass --instance-profile"),
        ),
    }
}

/// The whole `--managed` step: every read and refusal, then the role, the provider, the cluster.
pub async fn converge(deps: &Deps, args: &Args) -> Result<crate::Report> {
    let ctx = &deps.ctx;
    let region = ctx.require_region()?;
    let partition = policy::partition(&region);
    let account = ctx.account_id().await?;
    let profile = instance_profile_arn(ctx, &args.instance_profile).await?;
    let (subnets, security_groups) = super::network(deps, args).await?;
    let now = read(deps, &args.cluster, &args.name).await?;
    check_existing(now.as_ref(), &args.name)?;
    // Whose it is before what it is: another cluster's provider gets the ownership refusal.
    let untagged = match &now {
        Some(p) => {
            super::claim(
                "capacity provider",
                &args.name,
                p.managed,
                p.cluster.as_deref(),
                &args.cluster,
            )? == super::Claim::Untagged
        }
        None => false,
    };
    check_capacity_option(now.as_ref(), &args.name, args.spot)?;
    let cluster_now = crate::ecs::cluster::describe(deps, &args.cluster).await?;
    // The role this cluster's provider (claimed above) already uses.
    let provider_role = now
        .as_ref()
        .and_then(|p| p.spec.as_ref())
        .map(|s| s.infrastructure_role_arn.as_str());
    let own_role = match &args.infrastructure_role_arn {
        Some(_) => None,
        None => Some(plan_role(ctx, args, &region, partition, provider_role).await?),
    };
    // Every refusal is decided: the first mutating call comes after this line.
    let infrastructure_role_arn = match (own_role, &args.infrastructure_role_arn) {
        (Some(RolePlan::Converge(desired, checked)), _) => {
            role::converge(ctx, &desired, checked, partition, &account).await?
        }
        (Some(RolePlan::AsIs(arn)), _) => arn,
        (None, arn) => arn.clone().unwrap_or_default(),
    };
    if let Some(p) = now.as_ref().filter(|_| untagged) {
        tracing::info!(
            "capacity provider {} was made by an earlier ecskit without the {} tag: taken as cluster {}'s",
            args.name,
            ecskit_contract::CLUSTER_TAG,
            args.cluster
        );
        super::provider::tag_cluster(deps, &args.name, &p.arn, &args.cluster).await?;
    }
    // The provider belongs to the cluster: it must exist first.
    if cluster_now.is_none() {
        crate::ecs::cluster::ensure(deps, &args.cluster, false).await?;
    }
    let want = Spec {
        infrastructure_role_arn,
        instance_profile_arn: profile,
        subnets,
        security_groups,
        root_volume_gib: args.root_volume_size,
        spot: args.spot,
    };
    let arn = converge_provider(
        deps,
        &args.cluster,
        &args.name,
        now,
        &want,
        &region,
        &account,
    )
    .await?;
    let cluster_now = match cluster_now {
        Some(c) => Some(c),
        None => crate::ecs::cluster::describe(deps, &args.cluster).await?,
    };
    super::provider::attach(deps, args, cluster_now).await?;
    Ok(ctx
        .report()
        .output(
            ecskit_contract::outputs::CAPACITY_PROVIDER_NAME,
            args.name.clone(),
        )
        .output(ecskit_contract::outputs::CAPACITY_PROVIDER_ARN, arn))
}

/// `--managed --delete`: the provider out of the cluster and deleted, then the role this step
/// made for this cluster (tagged managed-by=ecskit and `ecskit:cluster` = `REGION/CLUSTER`). A role
/// given by ARN, one ecskit did not make, or one made before the cluster tag is left alone; one
/// made for another cluster is refused before any change.
pub async fn delete(deps: &Deps, args: &Args) -> Result<crate::Report> {
    let ctx = &deps.ctx;
    let region = ctx.require_region()?;
    let partition = policy::partition(&region);
    let now = read(deps, &args.cluster, &args.name).await?;
    check_deletable(now.as_ref(), &args.cluster, &args.name)?;
    let cluster = crate::ecs::cluster::describe(deps, &args.cluster).await?;
    let own_role = match &args.infrastructure_role_arn {
        Some(_) => None,
        None => deletable_role(ctx, args, &region, partition).await?,
    };
    super::provider::detach(deps, args, cluster).await?;
    if now.is_some() {
        delete_provider(deps, &args.cluster, &args.name).await?;
    }
    if let Some(checked) = own_role {
        role::delete(ctx, checked).await?;
    }
    if args.delete_cluster {
        // Left (with a warning) while ECS still has the managed instances registered.
        crate::ecs::cluster::delete_if_empty(deps, &args.cluster).await?;
    }
    Ok(ctx.report().output(
        ecskit_contract::outputs::CAPACITY_PROVIDER_NAME,
        args.name.clone(),
    ))
}

/// The infrastructure role `--managed --delete` removes, if any: read and decided before any
/// change.
async fn deletable_role(
    ctx: &Ctx,
    args: &Args,
    region: &str,
    partition: &str,
) -> Result<Option<role::Checked>> {
    let desired = infrastructure_role(&args.name, region, &args.cluster, partition);
    let checked = role::check_converge(ctx, &desired).await?;
    if !checked.exists() {
        return Ok(None);
    }
    if checked.unmanaged_arn().is_some() {
        tracing::warn!(
            "role {} is not tagged managed-by=ecskit: ecskit did not make it, so it is left as it is",
            desired.name
        );
        return Ok(None);
    }
    check_role_cluster(&checked, &desired.name, region, &args.cluster)?;
    if checked.tag(ecskit_contract::CLUSTER_TAG).is_none() {
        tracing::warn!(
            "role {} was made by an ecskit that did not tag its cluster: it may serve another cluster of the same --name, so it is left (delete it yourself when no cluster uses it)",
            desired.name
        );
        return Ok(None);
    }
    Ok(Some(checked))
}

/// A managed instances provider as it is.
pub struct Current {
    pub managed: bool,
    /// The cluster it was made for (its `ecskit:cluster` tag).
    pub cluster: Option<String>,
    pub arn: String,
    /// None when the provider of this name is not a Managed Instances one.
    pub spec: Option<Spec>,
}

pub async fn read(deps: &Deps, cluster: &str, name: &str) -> Result<Option<Current>> {
    Ok(super::provider::describe(deps, Some(cluster), name)
        .await?
        .as_ref()
        .map(current))
}

fn current(p: &CapacityProvider) -> Current {
    let spec = p.managed_instances_provider().map(|m| {
        let lt = m.instance_launch_template();
        let net = lt.and_then(|l| l.network_configuration());
        let mut subnets = net.map(|n| n.subnets().to_vec()).unwrap_or_default();
        let mut security_groups = net
            .map(|n| n.security_groups().to_vec())
            .unwrap_or_default();
        subnets.sort();
        security_groups.sort();
        Spec {
            infrastructure_role_arn: m.infrastructure_role_arn().unwrap_or_default().to_string(),
            instance_profile_arn: lt
                .map(|l| l.ec2_instance_profile_arn().to_string())
                .unwrap_or_default(),
            subnets,
            security_groups,
            root_volume_gib: lt
                .and_then(|l| l.storage_configuration())
                .and_then(|s| s.storage_size_gib())
                .unwrap_or_default(),
            spot: lt.and_then(|l| l.capacity_option_type()) == Some(&CapacityOptionType::Spot),
        }
    });
    Current {
        managed: crate::ecs::cluster::is_managed(p.tags()),
        cluster: super::provider::tagged_cluster(p.tags()),
        arn: p.capacity_provider_arn().unwrap_or_default().to_string(),
        spec,
    }
}

/// On-Demand or Spot is chosen at creation (ECS does not change it on an update): a change of
/// it is refused right after the read, before any change.
pub fn check_capacity_option(now: Option<&Current>, name: &str, spot: bool) -> Result<()> {
    match now.and_then(|p| p.spec.as_ref()) {
        Some(spec) if spec.spot != spot => Err(Error::input(format!(
            "capacity provider {name} launches {} instances; ECS does not change that on an update",
            if spec.spot { "Spot" } else { "On-Demand" }
        ))
        .hint("delete it (--delete) and run again, or choose another --name")),
        _ => Ok(()),
    }
}

/// A provider of this name must be ours and a Managed Instances one (an Auto Scaling group
/// provider is never turned into one).
pub fn check_existing(now: Option<&Current>, name: &str) -> Result<()> {
    match now {
        Some(p) if !p.managed => Err(super::not_ours("capacity provider", name)),
        Some(p) if p.spec.is_none() => Err(Error::input(format!(
            "capacity provider {name} is over an Auto Scaling group, not ECS Managed Instances"
        ))
        .hint("delete it first (capacity-create --delete without --managed), or choose another --name")),
        _ => Ok(()),
    }
}

/// What `--managed --delete` may remove: a provider of this name made by ecskit, for this
/// cluster (or before the cluster tag), and a Managed Instances one (an Auto Scaling group
/// provider is the other mode's to delete). Decided before any change.
pub fn check_deletable(now: Option<&Current>, cluster: &str, name: &str) -> Result<()> {
    let Some(p) = now else {
        return Ok(());
    };
    super::claim(
        "capacity provider",
        name,
        p.managed,
        p.cluster.as_deref(),
        cluster,
    )?;
    if p.spec.is_none() {
        return Err(super::provider::wrong_kind(
            name,
            super::provider::Kind::AutoScalingGroup,
        ));
    }
    Ok(())
}

fn network(want: &Spec) -> ManagedInstancesNetworkConfiguration {
    ManagedInstancesNetworkConfiguration::builder()
        .set_subnets(Some(want.subnets.clone()))
        .set_security_groups(Some(want.security_groups.clone()))
        .build()
}

fn storage(want: &Spec) -> ManagedInstancesStorageConfiguration {
    ManagedInstancesStorageConfiguration::builder()
        .storage_size_gib(want.root_volume_gib)
        .build()
}

fn differences(now: &Spec, want: &Spec) -> Vec<String> {
    let mut d = Vec::new();
    let mut field = |what: &str, a: String, b: String| super::template::changed(&mut d, what, a, b);
    field(
        "infrastructure role",
        now.infrastructure_role_arn.clone(),
        want.infrastructure_role_arn.clone(),
    );
    field(
        "instance profile",
        now.instance_profile_arn.clone(),
        want.instance_profile_arn.clone(),
    );
    field("subnets", now.subnets.join(","), want.subnets.join(","));
    field(
        "security groups",
        now.security_groups.join(","),
        want.security_groups.join(","),
    );
    field(
        "storage GiB",
        now.root_volume_gib.to_string(),
        want.root_volume_gib.to_string(),
    );
    d
}

/// The provider, created or updated to `want`; returns its ARN. On-Demand or Spot is chosen at
/// creation (ECS does not change it on an update): [`check_capacity_option`] refuses a change
/// of it before any call.
pub async fn converge_provider(
    deps: &Deps,
    cluster: &str,
    name: &str,
    now: Option<Current>,
    want: &Spec,
    region: &str,
    account: &str,
) -> Result<String> {
    let option = if want.spot {
        CapacityOptionType::Spot
    } else {
        CapacityOptionType::OnDemand
    };
    let Some(now) = now else {
        let template = InstanceLaunchTemplate::builder()
            .ec2_instance_profile_arn(&want.instance_profile_arn)
            .network_configuration(network(want))
            .storage_configuration(storage(want))
            .capacity_option_type(option.clone())
            .build()
            .map_err(|e| Error::aws("building the managed instances provider", e))?;
        let config = CreateManagedInstancesProviderConfiguration::builder()
            .infrastructure_role_arn(&want.infrastructure_role_arn)
            .instance_launch_template(template)
            .build()
            .map_err(|e| Error::aws("building the managed instances provider", e))?;
        let out = deps
            .ctx
            .mutate(
                format!(
                    "create capacity provider {name} in cluster {cluster} (ECS Managed Instances, {}, {})",
                    option.as_str(),
                    want.instance_profile_arn
                ),
                deps.ecs
                    .create_capacity_provider()
                    .name(name)
                    .cluster(cluster)
                    .managed_instances_provider(config)
                    .tags(crate::ecs::cluster::tag())
                    .tags(super::provider::cluster_tag(cluster))
                    .send(),
            )
            .await?;
        return Ok(super::provider::created_arn(out, region, account, name));
    };
    let Some(spec) = now.spec.as_ref() else {
        return Err(Error::input(format!(
            "capacity provider {name} is not an ECS Managed Instances provider"
        )));
    };
    let changes = differences(spec, want);
    if !changes.is_empty() {
        let template = InstanceLaunchTemplateUpdate::builder()
            .ec2_instance_profile_arn(&want.instance_profile_arn)
            .network_configuration(network(want))
            .storage_configuration(storage(want))
            .build();
        let config = UpdateManagedInstancesProviderConfiguration::builder()
            .infrastructure_role_arn(&want.infrastructure_role_arn)
            .instance_launch_template(template)
            .build()
            .map_err(|e| Error::aws("building the managed instances provider", e))?;
        deps.ctx
            .mutate(
                format!("update capacity provider {name} ({})", changes.join(", ")),
                deps.ecs
                    .update_capacity_provider()
                    .name(name)
                    .cluster(cluster)
                    .managed_instances_provider(config)
                    .send(),
            )
            .await?;
    }
    Ok(now.arn)
}

pub async fn delete_provider(deps: &Deps, cluster: &str, name: &str) -> Result<()> {
    deps.ctx
        .mutate(
            format!("delete capacity provider {name} of cluster {cluster}"),
            deps.ecs
                .delete_capacity_provider()
                .capacity_provider(name)
                .cluster(cluster)
                .send(),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:iam::123456789012:role/acme-mi-infrastructure";

    /// A role an earlier ecskit made without the cluster tag is taken over only when this
    /// cluster's provider already uses it; else it may be another cluster's, so only used as
    /// it is. The tag names the region: the same cluster name in another region is another.
    #[test]
    fn an_untagged_ecskit_role_is_taken_only_when_this_clusters_provider_uses_it() {
        let owner = role_owner("us-west-2", "acme");
        assert_eq!(owner, "us-west-2/acme");
        assert_eq!(
            decide_role(true, None, ARN, &owner, Some(ARN)),
            RoleDecision::TakeOver
        );
        assert!(matches!(
            decide_role(true, None, ARN, &owner, None),
            RoleDecision::OnlyAsIs(_)
        ));
        let elsewhere = "arn:aws:iam::123456789012:role/other-infrastructure";
        assert!(matches!(
            decide_role(true, None, ARN, &owner, Some(elsewhere)),
            RoleDecision::OnlyAsIs(_)
        ));
        // ecskit did not make it: never taken, whoever uses it.
        assert!(matches!(
            decide_role(false, None, ARN, &owner, Some(ARN)),
            RoleDecision::OnlyAsIs(_)
        ));
        assert_eq!(
            decide_role(true, Some("us-west-2/acme"), ARN, &owner, None),
            RoleDecision::Converge
        );
        assert_eq!(
            decide_role(true, Some("us-east-1/acme"), ARN, &owner, Some(ARN)),
            RoleDecision::Another("us-east-1/acme")
        );
        assert_eq!(
            decide_role(true, Some("acme"), ARN, &owner, None),
            RoleDecision::Another("acme")
        );
    }
}
