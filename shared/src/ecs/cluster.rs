//! The cluster: created when missing (FARGATE and FARGATE_SPOT capacity providers, tagged
//! managed-by=ecskit), left as it is when it exists, deleted only when empty and ours.

use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, Cluster, ClusterField, ClusterSetting, ClusterSettingName, Tag,
};

use super::{Deps, MANAGED_BY};
use crate::error::{AwsContext, Result};

/// The ACTIVE cluster, if there is one.
pub async fn describe(deps: &Deps, name: &str) -> Result<Option<Cluster>> {
    let out = deps
        .ecs
        .describe_clusters()
        .clusters(name)
        .include(ClusterField::Tags)
        .send()
        .await
        .context(format!("describing cluster {name}"))?;
    Ok(out
        .clusters
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.status() == Some("ACTIVE")))
}

/// The cluster a deploy runs in: its ARN, and whether EC2 tasks can be placed in it.
pub struct Ensured {
    pub arn: String,
    pub ec2_capacity: bool,
}

impl Ensured {
    /// What an existing cluster's DescribeClusters answer says.
    fn of(c: &Cluster, name: &str) -> Ensured {
        Ensured {
            arn: c.cluster_arn().unwrap_or(name).to_string(),
            ec2_capacity: has_ec2_capacity(c),
        }
    }
}

/// Whether EC2 tasks can be placed in the cluster: a container instance has joined it, or it
/// has a capacity provider that is not Fargate's (read from the DescribeClusters answer).
pub fn has_ec2_capacity(c: &Cluster) -> bool {
    c.registered_container_instances_count() > 0
        || c.capacity_providers()
            .iter()
            .any(|p| !p.starts_with("FARGATE"))
}

/// The cluster, created when it does not exist (with Fargate capacity only).
pub async fn ensure(deps: &Deps, name: &str, container_insights: bool) -> Result<Ensured> {
    if let Some(c) = describe(deps, name).await? {
        if container_insights {
            let on = c.settings().iter().any(|s| {
                s.name() == Some(&ClusterSettingName::ContainerInsights)
                    && s.value() != Some("disabled")
            });
            if !on {
                tracing::warn!(
                    "cluster {name} exists without Container Insights; an existing cluster is left as it is"
                );
            }
        }
        return Ok(Ensured::of(&c, name));
    }
    // Several service-runs of one new cluster often start together (a deploy of many services
    // runs up to --jobs of them at once), and each would find no cluster and create it. They
    // take turns here, and the ones after the first find it made.
    let _turn = if deps.ctx.dry_run {
        None
    } else {
        let turn = take_turn(deps, name).await?;
        if let Some(c) = describe(deps, name).await? {
            return Ok(Ensured::of(&c, name));
        }
        Some(turn)
    };
    let mut arn = computed_arn(deps, name).await?;
    if deps.ctx.apply(format!(
        "create cluster {name} (FARGATE, FARGATE_SPOT{})",
        if container_insights {
            ", Container Insights"
        } else {
            ""
        }
    )) {
        let out = deps
            .ecs
            .create_cluster()
            .cluster_name(name)
            .capacity_providers("FARGATE")
            .capacity_providers("FARGATE_SPOT")
            .default_capacity_provider_strategy(
                CapacityProviderStrategyItem::builder()
                    .capacity_provider("FARGATE")
                    .weight(1)
                    .build()
                    .expect("provider is set"),
            )
            .settings(
                ClusterSetting::builder()
                    .name(ClusterSettingName::ContainerInsights)
                    .value(if container_insights {
                        "enabled"
                    } else {
                        "disabled"
                    })
                    .build(),
            )
            .tags(tag())
            .send()
            .await
            .context(format!("creating cluster {name}"))?;
        if let Some(a) = out.cluster().and_then(|c| c.cluster_arn()) {
            arn = a.to_string();
        }
    }
    Ok(Ensured {
        arn,
        ec2_capacity: false,
    })
}

/// An exclusive lock on a file named after the region and cluster, held until it is dropped:
/// the processes creating one cluster on this machine take turns. ECS answers a repeated
/// CreateCluster with the same settings with the cluster it has, so the turns keep the report
/// true (one "create cluster", one mutating call) rather than keep anything from breaking.
/// The lock lives in this user's private directory ([`crate::turns`]); a turn held past the
/// bound is an error that names the lock file, not a wait without end.
async fn take_turn(deps: &Deps, name: &str) -> Result<std::fs::File> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (deps.ctx.region(), name).hash(&mut h);
    crate::turns::take(
        &format!("cluster-{:016x}.lock", h.finish()),
        &format!("creating cluster {name}"),
        crate::turns::Patience::DEFAULT,
    )
    .await
}

pub fn tag() -> Tag {
    Tag::builder().key(MANAGED_BY.0).value(MANAGED_BY.1).build()
}

pub fn is_managed(tags: &[Tag]) -> bool {
    tags.iter()
        .any(|t| t.key() == Some(MANAGED_BY.0) && t.value() == Some(MANAGED_BY.1))
}

/// `arn:aws:ecs:REGION:ACCOUNT:cluster/NAME`, for dry runs (the real run prints the answer's).
async fn computed_arn(deps: &Deps, name: &str) -> Result<String> {
    let region = deps.ctx.require_region()?;
    let account = deps.ctx.account_id().await?;
    Ok(format!("arn:aws:ecs:{region}:{account}:cluster/{name}"))
}

/// Deletes the cluster when it is empty and tagged managed-by=ecskit; otherwise says why not.
/// Returns the cluster's ARN when one existed.
pub async fn delete_if_empty(deps: &Deps, name: &str) -> Result<Option<String>> {
    delete_if_empty_after(deps, name, &[]).await
}

/// [`delete_if_empty`] after this run deregistered the container instances `deregistered`: in
/// a dry run they are still registered, so they do not count, and the action says the cluster
/// goes once they are deregistered (as the real run would do).
pub async fn delete_if_empty_after(
    deps: &Deps,
    name: &str,
    deregistered: &[String],
) -> Result<Option<String>> {
    let Some(c) = describe(deps, name).await? else {
        tracing::info!("cluster {name} does not exist: nothing to delete");
        return Ok(None);
    };
    let arn = c.cluster_arn().unwrap_or(name).to_string();
    if !is_managed(c.tags()) {
        tracing::warn!("cluster {name} is not tagged managed-by=ecskit: left as it is");
        return Ok(Some(arn));
    }
    // The service this run deleted may still count as active for a moment; ask for the list
    // (every page: one more page may hold a live service).
    let mut service_arns = Vec::new();
    let mut pages = deps
        .ecs
        .list_services()
        .cluster(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.context(format!("listing the services of cluster {name}"))?;
        service_arns.extend(page.service_arns().iter().cloned());
    }
    // Deleted services stay listed for a while as INACTIVE: count only the live ones.
    let mut live = 0;
    for chunk in service_arns.chunks(10) {
        let out = deps
            .ecs
            .describe_services()
            .cluster(name)
            .set_services(Some(chunk.to_vec()))
            .send()
            .await
            .context(format!("describing the services of cluster {name}"))?;
        live += out
            .services()
            .iter()
            .filter(|s| s.status() != Some("INACTIVE"))
            .count();
    }
    let tasks = c.running_tasks_count() + c.pending_tasks_count();
    if live > 0 || tasks > 0 {
        tracing::warn!(
            "cluster {name} still has {live} service(s) and {tasks} task(s): left as it is"
        );
        return Ok(Some(arn));
    }
    // ECS refuses to delete a cluster with registered container instances: say so, not fail.
    // Listed (ACTIVE, DRAINING, ...; not INACTIVE) rather than counted: the count lags behind a
    // deregistration this run just made.
    // Every page: a dry run must not take the first page's instances (this run's) for all.
    let mut listed: Vec<String> = Vec::new();
    if c.registered_container_instances_count() != 0 {
        let mut pages = deps
            .ecs
            .list_container_instances()
            .cluster(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.context(format!("listing the container instances of cluster {name}"))?;
            listed.extend(page.container_instance_arns().iter().cloned());
        }
    }
    // Only a dry run still finds the ones this run deregistered (a real run's list no longer
    // has them).
    let (pending, others): (Vec<_>, Vec<_>) = listed
        .into_iter()
        .partition(|arn| deps.ctx.dry_run && deregistered.contains(arn));
    let instances = others.len();
    if instances > 0 {
        tracing::warn!(
            "cluster {name} still has {instances} container instance(s): left as it is (run the removal again once they are gone)"
        );
        return Ok(Some(arn));
    }
    let action = match pending.len() {
        0 => format!("delete cluster {name}"),
        n => format!("delete cluster {name} once its {n} container instance(s) are deregistered"),
    };
    if deps.ctx.apply(action) {
        deps.ecs
            .delete_cluster()
            .cluster(name)
            .send()
            .await
            .context(format!("deleting cluster {name}"))?;
    }
    Ok(Some(arn))
}
