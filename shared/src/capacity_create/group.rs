//! The Auto Scaling group over the subnets: the template's version pinned (so a new version is
//! one visible update, and an instance refresh has a target), new instances protected from
//! scale-in (managed termination protection needs it), and a mixed-instances policy when more
//! than one instance type or Spot is asked for.

use aws_sdk_autoscaling::types::{
    DesiredConfiguration, InstanceRefresh, InstanceRefreshStatus, InstancesDistribution,
    LaunchTemplate, LaunchTemplateOverrides, LaunchTemplateSpecification, MixedInstancesPolicy,
    RefreshPreferences, ScaleInProtectedInstances, StandbyInstances, Tag,
};

use super::Args;
use crate::aws::{Ctx, MANAGED_BY};
use crate::error::{AwsContext, Result};
use ecskit_contract::CLUSTER_TAG;

/// The group as this step sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub min: i32,
    pub max: i32,
    /// Set when given, and on an update only while no capacity provider's managed scaling owns
    /// the desired capacity (or the sizes leave the group's desired count outside them).
    pub desired: Option<i32>,
    /// Sorted.
    pub subnets: Vec<String>,
    pub template_id: String,
    pub version: i64,
    pub instance_types: Vec<String>,
    pub spot: bool,
}

impl Spec {
    fn mixed(&self) -> bool {
        self.instance_types.len() > 1 || self.spot
    }
}

/// The group as it is.
pub struct Current {
    pub arn: String,
    pub managed: bool,
    /// The cluster it was made for (its `ecskit:cluster` tag).
    pub cluster: Option<String>,
    pub instances: usize,
    /// Each instance's launch template version, as the group reports it.
    instance_versions: Vec<Option<String>>,
    /// The group's EC2 instances.
    pub instance_ids: Vec<String>,
    desired: i32,
    spec: Spec,
    protected: bool,
}

/// What converging left: the group's ARN, how many instances it has, and how many of them run
/// another launch template version than the one the group now launches.
pub struct Converged {
    pub arn: String,
    pub instances: usize,
    pub stale: usize,
}

pub async fn read(ctx: &Ctx, name: &str) -> Result<Option<Current>> {
    let out = ctx
        .autoscaling()
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .context(format!("reading Auto Scaling group {name}"))?;
    let Some(g) = out
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(name))
    else {
        return Ok(None);
    };
    let tags = || {
        g.tags()
            .iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
    };
    let managed = crate::aws::is_managed(tags());
    let cluster = super::tagged_cluster(tags());
    // A mixed-instances policy, when there is one, is what the group launches with.
    let (lt, types, spot) = match g.mixed_instances_policy() {
        Some(m) => {
            let lt = m.launch_template();
            (
                lt.and_then(|l| l.launch_template_specification()),
                lt.map(|l| {
                    l.overrides()
                        .iter()
                        .filter_map(|o| o.instance_type().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
                m.instances_distribution()
                    .and_then(|d| d.on_demand_percentage_above_base_capacity())
                    == Some(0),
            )
        }
        None => (g.launch_template(), Vec::new(), false),
    };
    let mut subnets: Vec<String> = g
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    subnets.sort();
    Ok(Some(Current {
        arn: g.auto_scaling_group_arn().unwrap_or_default().to_string(),
        managed,
        cluster,
        instances: g.instances().len(),
        instance_ids: g
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect(),
        instance_versions: g
            .instances()
            .iter()
            .map(|i| {
                i.launch_template()
                    .and_then(|l| l.version())
                    .map(str::to_string)
            })
            .collect(),
        desired: g.desired_capacity().unwrap_or_default(),
        protected: g.new_instances_protected_from_scale_in() == Some(true),
        spec: Spec {
            min: g.min_size().unwrap_or_default(),
            max: g.max_size().unwrap_or_default(),
            desired: None,
            subnets,
            template_id: lt
                .and_then(|l| l.launch_template_id())
                .unwrap_or_default()
                .to_string(),
            version: lt
                .and_then(|l| l.version())
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            instance_types: types,
            spot,
        },
    }))
}

fn template_spec(want: &Spec) -> LaunchTemplateSpecification {
    LaunchTemplateSpecification::builder()
        .launch_template_id(&want.template_id)
        .version(want.version.to_string())
        .build()
}

fn mixed_policy(want: &Spec) -> MixedInstancesPolicy {
    MixedInstancesPolicy::builder()
        .launch_template(
            LaunchTemplate::builder()
                .launch_template_specification(template_spec(want))
                .set_overrides(Some(
                    want.instance_types
                        .iter()
                        .map(|t| LaunchTemplateOverrides::builder().instance_type(t).build())
                        .collect(),
                ))
                .build(),
        )
        .instances_distribution(
            InstancesDistribution::builder()
                .on_demand_base_capacity(0)
                .on_demand_percentage_above_base_capacity(if want.spot { 0 } else { 100 })
                .spot_allocation_strategy("price-capacity-optimized")
                .build(),
        )
        .build()
}

/// The desired capacity an update sets, if any. Once a capacity provider's managed scaling owns
/// it (`scaling_owns`), the count ECS chose is kept: `--desired-capacity` (which a stack passes
/// on every deploy) applies only at creation, and again only when new sizes leave the group's
/// count outside them (then the given one, or the nearest size).
fn desired_on_update(now: &Current, want: &Spec, scaling_owns: bool) -> Option<i32> {
    if !(want.min..=want.max).contains(&now.desired) {
        return Some(
            want.desired
                .unwrap_or(now.desired.clamp(want.min, want.max)),
        );
    }
    if !scaling_owns {
        return want.desired;
    }
    if let Some(d) = want.desired.filter(|d| *d != now.desired) {
        tracing::info!(
            "desired capacity {d} not set: the group has {}, which its capacity provider's managed scaling chose",
            now.desired
        );
    }
    None
}

/// Whether the group differs from `want`, in words.
fn differences(now: &Current, want: &Spec, desired: Option<i32>) -> Vec<String> {
    let mut d = Vec::new();
    let s = &now.spec;
    if (s.min, s.max) != (want.min, want.max) {
        d.push(format!(
            "size {}..{} -> {}..{}",
            s.min, s.max, want.min, want.max
        ));
    }
    if let Some(desired) = desired
        && desired != now.desired
    {
        d.push(format!("desired {} -> {desired}", now.desired));
    }
    if s.subnets != want.subnets {
        d.push(format!(
            "subnets {} -> {}",
            s.subnets.join(","),
            want.subnets.join(",")
        ));
    }
    if (&s.template_id, s.version) != (&want.template_id, want.version) {
        d.push(format!(
            "launch template version {} -> {}",
            s.version, want.version
        ));
    }
    let types_now = if s.instance_types.is_empty() {
        "one type".to_string()
    } else {
        s.instance_types.join(",")
    };
    let types_want = if want.mixed() {
        want.instance_types.join(",")
    } else {
        "one type".to_string()
    };
    if types_now != types_want || s.spot != want.spot {
        d.push(format!(
            "instance types {types_now}{} -> {types_want}{}",
            if s.spot { " (Spot)" } else { "" },
            if want.spot { " (Spot)" } else { "" }
        ));
    }
    if !now.protected {
        d.push("new instances protected from scale-in".into());
    }
    d
}

#[allow(clippy::too_many_arguments)]
pub async fn converge(
    ctx: &Ctx,
    args: &Args,
    now: Option<Current>,
    want: &Spec,
    scaling_owns: bool,
    region: &str,
    account: &str,
) -> Result<Converged> {
    let asg = ctx.autoscaling();
    let name = &args.name;
    let Some(now) = now else {
        let desired = want.desired.unwrap_or(want.min);
        let mut call = asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(want.min)
            .max_size(want.max)
            .desired_capacity(desired)
            .vpc_zone_identifier(want.subnets.join(","))
            .new_instances_protected_from_scale_in(true)
            .tags(
                Tag::builder()
                    .key(MANAGED_BY.0)
                    .value(MANAGED_BY.1)
                    .propagate_at_launch(true)
                    .build(),
            )
            .tags(
                Tag::builder()
                    .key(CLUSTER_TAG)
                    .value(&args.cluster)
                    .propagate_at_launch(true)
                    .build(),
            );
        call = if want.mixed() {
            call.mixed_instances_policy(mixed_policy(want))
        } else {
            call.launch_template(template_spec(want))
        };
        ctx.mutate(
            format!(
                "create Auto Scaling group {name} ({}..{} instances, desired {desired}, {})",
                want.min,
                want.max,
                want.instance_types.join(",")
            ),
            call.send(),
        )
        .await?;
        let arn = match read(ctx, name).await? {
            Some(g) => g.arn,
            // A dry run: the ARN holds a UUID that only AWS knows.
            None => format!(
                "arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{name}"
            ),
        };
        return Ok(Converged {
            arn,
            instances: 0,
            stale: 0,
        });
    };
    let desired = desired_on_update(&now, want, scaling_owns);
    let changes = differences(&now, want, desired);
    if !changes.is_empty() {
        let mut call = asg
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(want.min)
            .max_size(want.max)
            .set_desired_capacity(desired)
            .vpc_zone_identifier(want.subnets.join(","))
            .new_instances_protected_from_scale_in(true);
        call = if want.mixed() {
            call.mixed_instances_policy(mixed_policy(want))
        } else {
            call.launch_template(template_spec(want))
        };
        ctx.mutate(
            format!("update Auto Scaling group {name} ({})", changes.join(", ")),
            call.send(),
        )
        .await?;
    }
    let version = want.version.to_string();
    let stale = now
        .instance_versions
        .iter()
        .filter(|v| v.as_deref() != Some(version.as_str()))
        .count();
    Ok(Converged {
        arn: now.arn,
        instances: now.instances,
        stale,
    })
}

/// Tags a group an earlier ecskit made without the cluster tag for `cluster`.
pub async fn tag_cluster(ctx: &Ctx, name: &str, cluster: &str) -> Result<()> {
    ctx.mutate(
        format!("tag Auto Scaling group {name} {CLUSTER_TAG}={cluster} (made before ecskit tagged the cluster)"),
        ctx.autoscaling()
            .create_or_update_tags()
            .tags(
                Tag::builder()
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .key(CLUSTER_TAG)
                    .value(cluster)
                    .propagate_at_launch(true)
                    .build(),
            )
            .send(),
    )
    .await?;
    Ok(())
}

/// What the group's instances need from an instance refresh.
pub struct Rollout<'a> {
    /// The group's name.
    pub name: &'a str,
    /// The group as this run set it: the refresh's desired configuration (the template and
    /// its exact version, or the mixed-instances policy over them).
    pub spec: &'a Spec,
    /// The group's instances, and how many of them run another template version than the
    /// pinned one.
    pub instances: usize,
    pub stale: usize,
    /// The AMI this run's new template version replaced, and the new one.
    pub image_change: Option<(&'a str, &'a str)>,
    /// `--retry-refresh`: start again a refresh that failed for this very template version.
    pub retry: bool,
}

/// An instance refresh that has not ended: another cannot start while it runs.
fn running(s: &InstanceRefreshStatus) -> bool {
    matches!(
        s,
        InstanceRefreshStatus::Pending
            | InstanceRefreshStatus::InProgress
            | InstanceRefreshStatus::Cancelling
            | InstanceRefreshStatus::RollbackInProgress
            | InstanceRefreshStatus::Baking
    )
}

/// An instance refresh that ended without replacing the instances.
fn gave_up(s: &InstanceRefreshStatus) -> bool {
    matches!(
        s,
        InstanceRefreshStatus::Failed
            | InstanceRefreshStatus::Cancelled
            | InstanceRefreshStatus::RollbackFailed
            | InstanceRefreshStatus::RollbackSuccessful
    )
}

/// The refresh's target: the group's template at its exact version.
fn desired_configuration(spec: &Spec) -> DesiredConfiguration {
    let b = DesiredConfiguration::builder();
    if spec.mixed() {
        b.mixed_instances_policy(mixed_policy(spec)).build()
    } else {
        b.launch_template(template_spec(spec)).build()
    }
}

/// The template id and version a refresh was started for (from its desired configuration;
/// none when it was started without one).
fn refresh_target(r: &InstanceRefresh) -> Option<(String, String)> {
    let d = r.desired_configuration()?;
    let lt = d.launch_template().or_else(|| {
        d.mixed_instances_policy()
            .and_then(|m| m.launch_template())
            .and_then(|l| l.launch_template_specification())
    })?;
    Some((
        lt.launch_template_id()?.to_string(),
        lt.version()?.to_string(),
    ))
}

/// A new AMI reaches running instances only by replacing them: an instance refresh to the
/// pinned version (its desired configuration; instances already on it are skipped), launching
/// before terminating, and refreshing the instances that managed termination protection guards
/// too (ECS drains their tasks first). Started when this run made a new AMI's version, and on a
/// later run when the last refresh failed or was cancelled while instances still run an older
/// version, unless that refresh was for this very version: it would most likely fail again, so
/// it is restarted only with `--retry-refresh` (a warning says so, and nothing changes). Never
/// while one is running (the next run starts one if that one ends without replacing them).
pub async fn roll(ctx: &Ctx, r: &Rollout<'_>) -> Result<()> {
    let name = r.name;
    if r.instances == 0 {
        if let Some((_, new)) = r.image_change {
            tracing::info!(
                "Auto Scaling group {name} has no instances: new ones launch with {new}"
            );
        }
        return Ok(());
    }
    if r.image_change.is_none() && r.stale == 0 {
        return Ok(());
    }
    // The newest refresh comes first.
    let last = ctx
        .autoscaling()
        .describe_instance_refreshes()
        .auto_scaling_group_name(name)
        .max_records(1)
        .send()
        .await
        .context(format!(
            "reading Auto Scaling group {name}'s instance refreshes"
        ))?;
    let last = last.instance_refreshes().first();
    let status = last.and_then(|i| i.status()).cloned();
    if let Some(status) = status.as_ref().filter(|s| running(s)) {
        tracing::warn!(
            "an instance refresh of Auto Scaling group {name} is {}: no other is started; a later run starts one if it ends without replacing the instances",
            status.as_str()
        );
        return Ok(());
    }
    let version = r.spec.version.to_string();
    let same_version = last
        .and_then(refresh_target)
        .is_some_and(|(id, v)| id == r.spec.template_id && v == version);
    let action = match (r.image_change, &status) {
        (Some((old, new)), _) => format!(
            "roll the {} instance(s) of Auto Scaling group {name} from {old} to {new} (instance refresh)",
            r.instances
        ),
        (None, Some(status)) if gave_up(status) && same_version && !r.retry => {
            tracing::warn!(
                "the last instance refresh of Auto Scaling group {name}, to launch template version {version}, is {}: it is not started again ({} instance(s) still run an older version); see why with aws autoscaling describe-instance-refreshes --auto-scaling-group-name {name}, then run again with --retry-refresh (or, for a stack deploy, ECSKIT_RETRY_REFRESH=true in the environment)",
                status.as_str(),
                r.stale
            );
            return Ok(());
        }
        (None, Some(status)) if gave_up(status) => format!(
            "roll the {} instance(s) of Auto Scaling group {name} still on an older launch template version {} (the last instance refresh is {})",
            r.stale,
            if same_version {
                "again (--retry-refresh)".to_string()
            } else {
                format!("to version {version}")
            },
            status.as_str()
        ),
        (None, _) => return Ok(()),
    };
    ctx.mutate(
        action,
        ctx.autoscaling()
            .start_instance_refresh()
            .auto_scaling_group_name(name)
            .desired_configuration(desired_configuration(r.spec))
            .preferences(
                RefreshPreferences::builder()
                    .min_healthy_percentage(100)
                    .max_healthy_percentage(200)
                    .skip_matching(true)
                    .scale_in_protected_instances(ScaleInProtectedInstances::Refresh)
                    .standby_instances(StandbyInstances::Ignore)
                    .build(),
            )
            .send(),
    )
    .await?;
    Ok(())
}

pub async fn delete(ctx: &Ctx, name: &str) -> Result<()> {
    // Forced: managed termination protection keeps every instance from scale-in, so the
    // group would otherwise never empty.
    ctx.mutate(
        format!("delete Auto Scaling group {name} and its instances"),
        ctx.autoscaling()
            .delete_auto_scaling_group()
            .auto_scaling_group_name(name)
            .force_delete(true)
            .send(),
    )
    .await?;
    Ok(())
}
