//! `--delete`: deregister a family's ACTIVE revisions tagged managed-by=ecskit, keeping the
//! newest `--keep`. Revisions someone else registered are left alone, with a warning.

use super::{Args, revisions};
use crate::Report;
use crate::aws::{Ctx, is_managed};
use crate::error::{AwsContext, Result};
use ecskit_contract::outputs;

pub async fn delete(ctx: &Ctx, args: &Args, family: &str) -> Result<Report> {
    let ecs = ctx.ecs();
    let found = revisions::active_revisions(&ecs, family).await?;
    let mut deregistered = Vec::new();
    let mut kept = Vec::new();
    for (i, (rev, arn)) in found.iter().enumerate() {
        if i < args.keep {
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
    let mut report = ctx
        .report()
        .output(outputs::TASK_FAMILY, family)
        .detail("deregistered", deregistered);
    if let Some((rev, arn)) = found.first().filter(|_| args.keep > 0) {
        report = report
            .output(outputs::TASK_DEFINITION_ARN, arn.clone())
            .output(outputs::TASK_REVISION, *rev);
    }
    Ok(report.detail("kept", kept))
}
