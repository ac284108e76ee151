//! `--delete`: deregister a family's ACTIVE revisions tagged managed-by=ecskit, keeping the
//! newest `--keep`. `--prune` (after a register): the same, but a revision a service uses is
//! kept too, and so is the one just registered. Revisions someone else registered are left
//! alone, with a warning.
//!
//! Which services count for `--prune`: those of every cluster in the region (ListClusters),
//! unless `--in-use-cluster` names the ones to look in. Every cluster is the default because a
//! revision deregistered under a service in a cluster nobody named is the one its rollback
//! (`service-run --rollback`, a circuit breaker's) can no longer be started from by name; the
//! cost is one ListServices and a DescribeServices per ten services.

use std::collections::HashSet;

use super::{Args, revisions};
use crate::Report;
use crate::aws::{Ctx, is_managed};
use crate::error::{AwsContext, Result};
use ecskit_contract::outputs;

pub async fn delete(ctx: &Ctx, args: &Args, family: &str) -> Result<Report> {
    let found = revisions::active_revisions(&ctx.ecs(), family).await?;
    let keep = args.keep.unwrap_or(0);
    let (deregistered, kept) =
        deregister_beyond(ctx, family, &found, keep, &HashSet::new()).await?;
    let mut report = ctx
        .report()
        .output(outputs::TASK_FAMILY, family)
        .detail("deregistered", deregistered);
    if let Some((rev, arn)) = found.first().filter(|_| keep > 0) {
        report = report
            .output(outputs::TASK_DEFINITION_ARN, arn.clone())
            .output(outputs::TASK_REVISION, *rev);
    }
    Ok(report.detail("kept", kept))
}

/// `--prune` after the register: deregisters the family's ACTIVE revisions beyond the newest
/// `--keep` that no service uses, never `registered` (the revision this run registered or found
/// unchanged). `planned`: a dry run that would have registered `registered`, which is then
/// not among the ACTIVE revisions yet but counts as the newest. Returns (deregistered, kept).
pub async fn prune(
    ctx: &Ctx,
    args: &Args,
    family: &str,
    registered: &str,
    planned: bool,
) -> Result<(Vec<String>, Vec<String>)> {
    let found = revisions::active_revisions(&ctx.ecs(), family).await?;
    let mut used = in_use(ctx, &args.prune_clusters).await?;
    used.insert(revision_key(registered).to_string());
    let keep = args.keep.unwrap_or(0);
    let keep = if planned {
        keep.saturating_sub(1)
    } else {
        keep
    };
    deregister_beyond(ctx, family, &found, keep, &used).await
}

/// `family:revision` from an ARN or a `family:revision` (the emulator stores what it was given).
fn revision_key(reference: &str) -> &str {
    reference
        .rsplit_once("task-definition/")
        .map_or(reference, |(_, t)| t)
}

/// The task definitions the services of these clusters (all, when none is named) run or are
/// deploying, as `family:revision`.
async fn in_use(ctx: &Ctx, clusters: &[String]) -> Result<HashSet<String>> {
    let ecs = ctx.ecs();
    let clusters = if clusters.is_empty() {
        let mut all = Vec::new();
        let mut pages = ecs.list_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            all.extend(
                page.context("listing the clusters whose services may use a revision")?
                    .cluster_arns()
                    .iter()
                    .cloned(),
            );
        }
        all
    } else {
        clusters.to_vec()
    };
    let mut used = HashSet::new();
    for cluster in &clusters {
        let mut arns = Vec::new();
        let mut pages = ecs.list_services().cluster(cluster).into_paginator().send();
        while let Some(page) = pages.next().await {
            arns.extend(
                page.context(format!("listing the services of cluster {cluster}"))?
                    .service_arns()
                    .iter()
                    .cloned(),
            );
        }
        // DescribeServices takes ten services a call.
        for batch in arns.chunks(10) {
            let out = ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch.to_vec()))
                .send()
                .await
                .context(format!("describing the services of cluster {cluster}"))?;
            for svc in out.services() {
                let deploying = svc.deployments().iter().filter_map(|d| d.task_definition());
                let sets = svc.task_sets().iter().filter_map(|t| t.task_definition());
                for td in svc
                    .task_definition()
                    .into_iter()
                    .chain(deploying)
                    .chain(sets)
                {
                    used.insert(revision_key(td).to_string());
                }
            }
        }
    }
    Ok(used)
}

/// Deregisters the revisions (newest first) beyond the first `keep`, except those in `spared`
/// (`family:revision`) and those ecskit did not register. Returns (deregistered, kept).
async fn deregister_beyond(
    ctx: &Ctx,
    family: &str,
    found: &[(i64, String)],
    keep: usize,
    spared: &HashSet<String>,
) -> Result<(Vec<String>, Vec<String>)> {
    let ecs = ctx.ecs();
    let mut deregistered = Vec::new();
    let mut kept = Vec::new();
    for (i, (rev, arn)) in found.iter().enumerate() {
        if i < keep {
            kept.push(arn.clone());
            continue;
        }
        if spared.contains(revision_key(arn)) {
            tracing::info!("keeping {family}:{rev}: a service uses it");
            kept.push(arn.clone());
            continue;
        }
        let tags = ecs
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .context(format!("listing the tags of {arn}"))?;
        let pairs = tags
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
        if !is_managed(pairs) {
            tracing::warn!("leaving {family}:{rev} alone: it is not tagged managed-by=ecskit");
            kept.push(arn.clone());
            continue;
        }
        ctx.mutate(
            format!("deregister task definition {family}:{rev}"),
            ecs.deregister_task_definition().task_definition(arn).send(),
        )
        .await?;
        deregistered.push(arn.clone());
    }
    Ok((deregistered, kept))
}
