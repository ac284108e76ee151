//! capacity-create: EC2 capacity for a cluster in one step: a launch template (the
//! ECS-optimized AMI, the instance profile, user data that joins the cluster), an Auto Scaling
//! group over the subnets, and an ECS capacity provider over the group, attached to the cluster.
//!
//! Everything it makes is named after `--name` and tagged managed-by=ecskit and
//! ecskit:cluster=CLUSTER; a launch template, group or capacity provider of that name that is
//! not tagged managed-by=ecskit, or is tagged for another cluster, is refused (exit 2), never
//! taken over. Every resource is read, and every refusal decided, before the first mutating
//! call.

mod group;
pub mod managed;
mod provider;
mod template;
pub mod verify;

use crate::aws::{AwsArgs, Ctx};
use crate::cli::Common;
use crate::ecs::Deps;
use crate::ecs::network::NetworkFlags;
use crate::validate;
use crate::{Error, Report, Result};
use ecskit_contract::outputs as o;

pub use group::{Rollout, Spec as GroupSpec, roll};
pub use template::{Arch, ami_parameter, architecture, check_image, user_data};

#[derive(clap::Parser, Debug)]
#[command(
    name = "capacity-create",
    next_help_heading = "capacity-create",
    version,
    about = "Create or converge EC2 capacity for an ECS cluster: launch template, Auto Scaling group, capacity provider.",
    after_help = "Examples:\n  \
        eval \"$(instance-profile --output env)\"     # ECSKIT_INSTANCE_PROFILE_NAME\n  \
        capacity-create --cluster acme --name acme-ec2 --instance-type t3.medium --max-size 4\n  \
        capacity-create --cluster acme --name acme-arm --instance-type m7g.large,m6g.large --spot\n  \
        capacity-create --cluster acme --name acme-mi --managed   # ECS Managed Instances\n  \
        capacity-create --cluster acme --name acme-ec2 --delete\n\n\
        Reads: ECSKIT_CLUSTER, ECSKIT_CAPACITY_PROVIDER_NAME, ECSKIT_INSTANCE_PROFILE_NAME\n\
        Prints: ECSKIT_CAPACITY_PROVIDER_NAME, ECSKIT_CAPACITY_PROVIDER_ARN, ECSKIT_AUTO_SCALING_GROUP_NAME, \
        ECSKIT_LAUNCH_TEMPLATE_ID, ECSKIT_LAUNCH_TEMPLATE_VERSION, ECSKIT_AMI_ID, ECSKIT_PREVIOUS_AMI_ID (after an AMI update), ECSKIT_CHANGED\n\n\
        Exit codes: 0 success, 1 AWS failure, 2 bad input (nothing changed)"
)]
pub struct Args {
    /// The cluster the instances join (created with Fargate capacity when missing).
    #[arg(long, env = "ECSKIT_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// The capacity provider, and the name of its Auto Scaling group and launch template (not
    /// starting with aws, ecs or fargate: ECS keeps those).
    #[arg(
        long,
        env = "ECSKIT_CAPACITY_PROVIDER_NAME",
        default_value = "ec2-capacity"
    )]
    pub name: String,
    /// The instance profile the instances launch with (instance-profile's output).
    #[arg(
        long,
        env = ecskit_contract::outputs::env::INSTANCE_PROFILE_NAME,
        default_value = "ecsInstanceRole-profile"
    )]
    pub instance_profile: String,
    /// Instance types, one architecture; more than one (or --spot) makes a mixed-instances group.
    #[arg(long, value_delimiter = ',', default_value = "t3.small")]
    pub instance_type: Vec<String>,
    /// Launch Spot instances (a mixed-instances policy, price-capacity-optimized).
    #[arg(long)]
    pub spot: bool,
    /// Pin the AMI (default: the ECS-optimized Amazon Linux 2023 AMI of the instance types'
    /// architecture, read from its public SSM parameter on every run).
    #[arg(long, value_name = "AMI_ID")]
    pub ami: Option<String>,
    /// Also accept a pinned --ami owned by account ACCOUNT_ID (12 digits; repeatable, or
    /// comma-separated). Otherwise a pinned AMI must be Amazon's or the caller's account's own:
    /// anyone can publish a public AMI.
    #[arg(
        long,
        value_name = "ACCOUNT_ID",
        env = "ECSKIT_ALLOW_AMI_OWNER",
        value_delimiter = ','
    )]
    pub allow_ami_owner: Vec<String>,
    /// Start again an instance refresh that failed or was cancelled for this very launch
    /// template version (by default it is not restarted: a warning says so, and nothing
    /// changes; one for an older version is superseded by a refresh to this one). A stack
    /// deploy passes it as ECSKIT_RETRY_REFRESH=true in the environment.
    #[arg(long, env = "ECSKIT_RETRY_REFRESH")]
    pub retry_refresh: bool,
    /// The group's minimum size.
    #[arg(long, default_value_t = 0)]
    pub min_size: i32,
    /// The group's maximum size.
    #[arg(long, default_value_t = 2)]
    pub max_size: i32,
    /// The group's desired capacity when it is created (afterwards managed scaling owns it: a
    /// later run sets it only while no managed scaling runs the group, or when new sizes leave
    /// the group's count outside them).
    #[arg(long)]
    pub desired_capacity: Option<i32>,
    /// Managed scaling's target: how full (percent) the instances are kept.
    #[arg(long, default_value_t = 100)]
    pub target_capacity: i32,
    /// The encrypted root volume's size in GiB (the AMI's own snapshot is 30).
    #[arg(long, default_value_t = 30)]
    pub root_volume_size: i32,
    /// Subnets of the group (default: the default VPC's default subnets).
    #[arg(long, value_delimiter = ',', help_heading = "Network")]
    pub subnets: Vec<String>,
    /// Security groups of the instances (default: the default VPC's `default` group).
    #[arg(long, value_delimiter = ',', help_heading = "Network")]
    pub security_groups: Vec<String>,
    /// Leave the cluster's default capacity provider strategy as it is (by default it becomes
    /// NAME:1, so services and tasks without a launch type or strategy run here).
    #[arg(long)]
    pub no_default_strategy: bool,
    /// Check before any change that the instance profile exists and its role trusts
    /// ec2.amazonaws.com, and that the AMI parameter resolves; a failed check is exit 2.
    #[arg(long, env = "ECSKIT_VERIFY", conflicts_with = "delete")]
    pub verify: bool,
    /// ECS Managed Instances: AWS launches and patches the instances. One capacity provider
    /// with a managed instances provider (the infrastructure role, the instance profile, the
    /// subnets and security groups), no launch template or group of ours.
    // --allow-ami-owner and --retry-refresh are not refused with it: they may come from the CI
    // job's environment (ECSKIT_ALLOW_AMI_OWNER, ECSKIT_RETRY_REFRESH), set for every stack the
    // job deploys, and have nothing to act on here (no AMI, no group).
    #[arg(long, help_heading = "ECS Managed Instances", conflicts_with_all = [
        "ami", "desired_capacity", "instance_type", "min_size", "max_size", "target_capacity",
    ])]
    pub managed: bool,
    /// The infrastructure role ECS launches managed instances with (default: the step makes
    /// NAME-infrastructure, trusted by ECS, with AmazonECSInfrastructureRolePolicyForManagedInstances).
    #[arg(
        long,
        value_name = "ARN",
        requires = "managed",
        help_heading = "ECS Managed Instances"
    )]
    pub infrastructure_role_arn: Option<String>,
    /// Delete the capacity provider, the group and the launch template (only when tagged
    /// managed-by=ecskit and made for this cluster), after taking the provider out of the cluster.
    #[arg(long, help_heading = "Delete")]
    pub delete: bool,
    /// With --delete: then delete the cluster too, when ecskit made it (tagged managed-by=ecskit)
    /// and it is left empty (no service, task or container instance). The group's own container
    /// instances, whose EC2 instances go with the group, are deregistered first.
    #[arg(long, requires = "delete", help_heading = "Delete")]
    pub delete_cluster: bool,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: AwsArgs,
}

crate::step_flags!(Args);

/// The capacity-create step.
pub struct CapacityCreate;

impl crate::step::Step for CapacityCreate {
    const STEP: ecskit_contract::Step = ecskit_contract::Step::CapacityCreate;
    type Args = Args;
    type Checked = Arch;

    fn check(args: &Args) -> Result<Arch> {
        check(args)
    }

    async fn execute(ctx: &Ctx, args: &Args, arch: Arch) -> Result<Report> {
        let deps = Deps::new(ctx.clone(), ctx.progress.clone(), Default::default());
        let checks = match args.verify {
            true => {
                let checks = verify::checks(ctx, args, arch).await;
                checks.conclude()?;
                Some(checks)
            }
            false => None,
        };
        let report = match (args.managed, args.delete) {
            (true, false) => managed::converge(&deps, args).await,
            (true, true) => managed::delete(&deps, args).await,
            (false, true) => delete(&deps, args).await,
            (false, false) => converge(&deps, args, arch).await,
        }?;
        Ok(match checks {
            Some(c) => c.add_to(report),
            None => report,
        })
    }
}

/// Checks all input without a call; returns the instances' architecture.
pub fn check(args: &Args) -> Result<Arch> {
    let mut problems = Vec::new();
    // The cluster's name goes into the instances' user data: only a valid ECS name (letters,
    // digits, '-', '_') can, so no line of the agent's config is ever written by the input.
    if let Err(e) = validate::ecs_name(&args.cluster, 255) {
        problems.push(format!("--cluster: {e}"));
    }
    if let Err(e) = validate::capacity_provider_name(&args.name) {
        problems.push(format!("--name: {e}"));
    }
    if let Err(e) = validate::iam_name(&args.instance_profile, 128) {
        problems.push(format!("--instance-profile: {e}"));
    }
    let arch = match template::architecture_of(&args.instance_type) {
        Ok(a) => Some(a),
        Err(e) => {
            problems.push(format!("--instance-type: {e}"));
            None
        }
    };
    if let Some(ami) = &args.ami
        && let Err(e) = validate::ami_id(ami)
    {
        problems.push(format!("--ami: {e}"));
    }
    for o in &args.allow_ami_owner {
        if let Err(e) = validate::account_id(o) {
            problems.push(format!("--allow-ami-owner: {e}"));
        }
    }
    if let Some(arn) = &args.infrastructure_role_arn
        && let Err(e) = validate::role_arn(arn)
    {
        problems.push(format!("--infrastructure-role-arn: {e}"));
    }
    if args.managed
        && let Err(e) =
            validate::managed_capacity_name(&args.name, args.infrastructure_role_arn.is_none())
    {
        problems.push(format!("--name: {e}"));
    }
    for s in &args.subnets {
        if let Err(e) = validate::subnet_id(s) {
            problems.push(format!("--subnets: {e}"));
        }
    }
    for s in &args.security_groups {
        if let Err(e) = validate::security_group_id(s) {
            problems.push(format!("--security-groups: {e}"));
        }
    }
    // The same checks as the stack file's [capacity] (in the contract crate, so the orchestrator
    // refuses a bad section before its deploy's first change).
    problems.extend(
        validate::CapacitySizes {
            min: args.min_size.into(),
            max: args.max_size.into(),
            desired: args.desired_capacity.map(i64::from),
            target_capacity: args.target_capacity.into(),
            root_volume_gib: args.root_volume_size.into(),
        }
        .problems(|k| format!("--{}", k.replace('_', "-"))),
    );
    match (problems.is_empty(), arch) {
        (true, Some(a)) => Ok(a),
        _ => Err(Error::inputs(problems)),
    }
}

/// The cluster a resource is tagged for (`ecskit:cluster`), from its tags as `(key, value)`.
pub(crate) fn tagged_cluster<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    tags.into_iter()
        .find(|(k, _)| *k == ecskit_contract::CLUSTER_TAG)
        .map(|(_, v)| v.to_string())
}

/// Whose an existing resource of `--name` is, for this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Tagged managed-by=ecskit and for this cluster.
    Ours,
    /// Tagged managed-by=ecskit by a version that did not tag the cluster: taken as this
    /// cluster's (its other checks passed) and tagged so on the next change.
    Untagged,
}

/// A resource of `--name` is this run's only when ecskit made it for this cluster: one not tagged
/// managed-by=ecskit, or tagged for another cluster, is refused (exit 2) before any change, so a
/// name two clusters share never lets one cluster's run change or delete the other's capacity.
pub(crate) fn claim(
    what: &str,
    name: &str,
    managed: bool,
    tagged: Option<&str>,
    cluster: &str,
) -> Result<Claim> {
    if !managed {
        return Err(not_ours(what, name));
    }
    match tagged {
        Some(c) if c == cluster => Ok(Claim::Ours),
        Some(other) => Err(Error::input(format!(
            "{what} {name} belongs to cluster {other} (tagged {}={other}), not {cluster}: this run does not change or delete it",
            ecskit_contract::CLUSTER_TAG
        ))
        .hint(format!(
            "pass --cluster {other} to manage it, or give cluster {cluster} its own capacity with another --name"
        ))),
        None => Ok(Claim::Untagged),
    }
}

/// The cluster a template's instances join (its user data's `ECS_CLUSTER=` line).
fn joined_cluster(user_data: &str) -> Option<String> {
    user_data
        .lines()
        .find_map(|l| l.trim().strip_prefix("ECS_CLUSTER="))
        .map(str::to_string)
}

/// Capacity made for one cluster is never moved to another by a run that names another (a
/// forgotten --cluster, a renamed stack): its instances would join the new cluster while the old
/// one's capacity provider keeps scaling the group for tasks that never land there.
fn other_cluster(name: &str, joined: &str, asked: &str) -> Error {
    Error::input(format!(
        "capacity {name} was made for cluster {joined}, not {asked}: its instances join {joined}"
    ))
    .hint(format!(
        "pass --cluster {joined}, or give this cluster its own capacity with another --name (or remove {name} first with --delete --cluster {joined})"
    ))
}

fn not_ours(what: &str, name: &str) -> Error {
    Error::input(format!(
        "{what} {name} exists and is not tagged managed-by=ecskit: it is not this step's to change"
    ))
    .hint("choose another --name, or tag it managed-by=ecskit if it is meant to be managed here")
}

async fn network(deps: &Deps, args: &Args) -> Result<(Vec<String>, Vec<String>)> {
    let flags = NetworkFlags {
        subnets: args.subnets.clone(),
        security_groups: args.security_groups.clone(),
        assign_public_ip: Some(false),
    };
    let conf = crate::ecs::network::resolve(deps, &flags, false).await?;
    let vpc = conf.awsvpc_configuration();
    let mut subnets: Vec<String> = vpc.map(|v| v.subnets().to_vec()).unwrap_or_default();
    let mut groups: Vec<String> = vpc
        .map(|v| v.security_groups().to_vec())
        .unwrap_or_default();
    subnets.sort();
    subnets.dedup();
    groups.sort();
    groups.dedup();
    Ok((subnets, groups))
}

async fn converge(deps: &Deps, args: &Args, arch: Arch) -> Result<Report> {
    let ctx = &deps.ctx;
    let region = ctx.require_region()?;
    let account = ctx.account_id().await?;
    // Reads first: every refusal is decided before the first mutating call.
    let image = match &args.ami {
        Some(ami) => ami.clone(),
        None => template::resolve_ami(ctx, arch).await?,
    };
    let (subnets, groups) = network(deps, args).await?;
    let tpl_now = template::read(ctx, &args.name).await?;
    let grp_now = group::read(ctx, &args.name).await?;
    let cp_now = provider::read(deps, &args.name).await?;
    let cluster_now = crate::ecs::cluster::describe(deps, &args.cluster).await?;
    let claims = claims(args, tpl_now.as_ref(), grp_now.as_ref(), cp_now.as_ref())?;
    provider::check_existing(cp_now.as_ref(), &args.name, grp_now.as_ref())?;
    if let Some(image) = &args.ami {
        template::check_image(ctx, image, arch, &account, &args.allow_ami_owner).await?;
    }
    // Capacity an earlier ecskit made without the cluster tag, and that joins this cluster: it
    // is tagged for it now, so a later run for another cluster refuses it.
    if let (Some(t), Some(Claim::Untagged)) = (&tpl_now, claims.template) {
        template::tag_cluster(ctx, &args.name, &t.id, &args.cluster).await?;
    }
    if let Some(Claim::Untagged) = claims.group {
        group::tag_cluster(ctx, &args.name, &args.cluster).await?;
    }
    if let (Some(p), Some(Claim::Untagged)) = (&cp_now, claims.provider) {
        provider::tag_cluster(deps, &args.name, &p.arn, &args.cluster).await?;
    }

    let want = template::Spec {
        image_id: image.clone(),
        instance_type: args.instance_type[0].clone(),
        instance_profile: args.instance_profile.clone(),
        user_data: user_data(&args.cluster),
        security_groups: groups,
        root_volume_gib: args.root_volume_size,
        imdsv2: true,
        encrypted: true,
    };
    // Once the provider's managed scaling runs the group, the desired count is ECS's.
    let scaling_owns = cp_now.as_ref().is_some_and(|p| p.scaling_on);
    let tpl = template::converge(ctx, &args.name, &args.cluster, tpl_now, &want).await?;
    let grp_spec = group::Spec {
        min: args.min_size,
        max: args.max_size,
        desired: args.desired_capacity,
        subnets,
        template_id: tpl.id.clone(),
        version: tpl.version,
        instance_types: args.instance_type.clone(),
        spot: args.spot,
    };
    let grp = group::converge(
        ctx,
        args,
        grp_now,
        &grp_spec,
        scaling_owns,
        &region,
        &account,
    )
    .await?;
    let previous_ami = tpl.replaced_image.filter(|old| *old != image);
    group::roll(
        ctx,
        &group::Rollout {
            name: &args.name,
            spec: &grp_spec,
            instances: grp.instances,
            stale: grp.stale,
            image_change: previous_ami.as_deref().map(|old| (old, image.as_str())),
            retry: args.retry_refresh,
        },
    )
    .await?;
    let cp_arn = provider::converge(deps, args, cp_now, &grp.arn, &region, &account).await?;
    provider::attach(deps, args, cluster_now).await?;
    let mut report = ctx
        .report()
        .output(o::CAPACITY_PROVIDER_NAME, args.name.clone())
        .output(o::CAPACITY_PROVIDER_ARN, cp_arn)
        .output(o::AUTO_SCALING_GROUP_NAME, args.name.clone())
        .output(o::LAUNCH_TEMPLATE_ID, tpl.id)
        .output(o::LAUNCH_TEMPLATE_VERSION, tpl.version.to_string())
        .output(o::AMI_ID, image);
    if let Some(old) = previous_ami {
        report = report.output(o::PREVIOUS_AMI_ID, old);
    }
    Ok(report)
}

/// What each existing resource of `--name` is to this run; the first one that is not this
/// cluster's, or whose instances join another cluster, refuses the whole run.
struct Claims {
    template: Option<Claim>,
    group: Option<Claim>,
    provider: Option<Claim>,
}

fn claims(
    args: &Args,
    tpl: Option<&template::Current>,
    grp: Option<&group::Current>,
    cp: Option<&provider::Current>,
) -> Result<Claims> {
    let (name, cluster) = (&args.name, &args.cluster);
    let template = tpl
        .map(|t| {
            claim(
                "launch template",
                name,
                t.managed,
                t.cluster.as_deref(),
                cluster,
            )
        })
        .transpose()?;
    let group = grp
        .map(|g| {
            claim(
                "Auto Scaling group",
                name,
                g.managed,
                g.cluster.as_deref(),
                cluster,
            )
        })
        .transpose()?;
    let provider = cp
        .map(|p| {
            claim(
                "capacity provider",
                name,
                p.managed,
                p.cluster.as_deref(),
                cluster,
            )
        })
        .transpose()?;
    // Made before the cluster tag: the template's user data still says which cluster its
    // instances join.
    if let Some(joined) = tpl
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| joined_cluster(&s.user_data))
        .filter(|c| c != cluster)
    {
        return Err(other_cluster(name, &joined, cluster));
    }
    for (what, c) in [
        ("launch template", template),
        ("Auto Scaling group", group),
        ("capacity provider", provider),
    ] {
        if c == Some(Claim::Untagged) {
            tracing::info!(
                "{what} {name} was made by an earlier ecskit without the {} tag: taken as cluster {cluster}'s",
                ecskit_contract::CLUSTER_TAG
            );
        }
    }
    Ok(Claims {
        template,
        group,
        provider,
    })
}

/// The Auto Scaling group provider of this name, for `--delete` without `--managed`: a Managed
/// Instances provider of this name (it belongs to the cluster, and is looked for there too) is
/// refused before any change, never taken out of the cluster or deleted by this mode.
pub async fn group_provider_to_delete(
    deps: &Deps,
    cluster: &str,
    name: &str,
) -> Result<Option<provider::Current>> {
    let found = match provider::describe(deps, None, name).await? {
        Some(p) => Some(p),
        None => provider::describe(deps, Some(cluster), name).await?,
    };
    let now = found.as_ref().map(provider::current);
    if let Some(p) = &now
        && p.kind != provider::Kind::AutoScalingGroup
    {
        return Err(provider::wrong_kind(name, p.kind));
    }
    Ok(now)
}

/// The container instances of `cluster` that run on the group's EC2 instances (which the
/// group's forced delete terminates), deregistered so the cluster can go: ECS keeps a
/// terminating instance registered for minutes, and refuses to delete a cluster until then.
/// Only the group's own instances are deregistered; any other keeps the cluster. Returns the
/// container instances deregistered (in a dry run: that would be).
async fn deregister_instances(deps: &Deps, cluster: &str, group: &[String]) -> Result<Vec<String>> {
    use crate::error::AwsContext;
    let mut deregistered = Vec::new();
    if group.is_empty() {
        return Ok(deregistered);
    }
    let mut listed = Vec::new();
    let mut pages = deps
        .ecs
        .list_container_instances()
        .cluster(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.context(format!(
            "listing the container instances of cluster {cluster}"
        ))?;
        listed.extend(page.container_instance_arns().iter().cloned());
    }
    for chunk in listed.chunks(100) {
        let out = deps
            .ecs
            .describe_container_instances()
            .cluster(cluster)
            .set_container_instances(Some(chunk.to_vec()))
            .send()
            .await
            .context(format!(
                "reading the container instances of cluster {cluster}"
            ))?;
        for ci in out.container_instances() {
            let Some(ec2) = ci
                .ec2_instance_id()
                .filter(|id| group.iter().any(|g| g == id))
            else {
                continue;
            };
            let arn = ci.container_instance_arn().unwrap_or_default();
            deregistered.push(arn.to_string());
            deps.ctx
                .mutate(
                    format!("deregister container instance {ec2} (of the deleted group) from cluster {cluster}"),
                    deps.ecs
                        .deregister_container_instance()
                        .cluster(cluster)
                        .container_instance(arn)
                        .force(true)
                        .send(),
                )
                .await?;
        }
    }
    Ok(deregistered)
}

async fn delete(deps: &Deps, args: &Args) -> Result<Report> {
    let ctx = &deps.ctx;
    let cp = group_provider_to_delete(deps, &args.cluster, &args.name).await?;
    let tpl = template::read(ctx, &args.name).await?;
    let grp = group::read(ctx, &args.name).await?;
    let cluster = crate::ecs::cluster::describe(deps, &args.cluster).await?;
    // Refusals before the first change: a resource of this name that is not ours, or is
    // another cluster's, stops the whole delete, so no half of someone else's capacity is
    // taken apart.
    claims(args, tpl.as_ref(), grp.as_ref(), cp.as_ref())?;
    let exists = cluster.is_some();
    provider::detach(deps, args, cluster).await?;
    if cp.is_some() {
        provider::delete(deps, &args.name).await?;
    }
    let mut deregistered = Vec::new();
    if let Some(g) = &grp {
        group::delete(ctx, &args.name).await?;
        if args.delete_cluster && exists {
            deregistered = deregister_instances(deps, &args.cluster, &g.instance_ids).await?;
        }
    }
    if let Some(t) = tpl {
        template::delete(ctx, &args.name, &t.id).await?;
    }
    if args.delete_cluster && exists {
        crate::ecs::cluster::delete_if_empty_after(deps, &args.cluster, &deregistered).await?;
    }
    if !ctx.report().changed {
        tracing::info!("no capacity named {} exists: nothing to delete", args.name);
    }
    Ok(ctx
        .report()
        .output(o::CAPACITY_PROVIDER_NAME, args.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["capacity-create"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    fn problems(extra: &[&str]) -> String {
        check(&args(extra)).unwrap_err().render()
    }

    #[test]
    fn a_cluster_name_that_would_write_agent_settings_is_refused() {
        let e = problems(&["--cluster", "acme\nECS_ENABLE_TASK_IAM_ROLE=false"]);
        assert!(e.contains("--cluster"), "{e}");
    }

    #[test]
    fn names_ecs_keeps_and_short_names_are_refused() {
        for bad in ["ecs-capacity", "FARGATE_x", "awsome", "ab", "a b"] {
            let e = problems(&["--name", bad]);
            assert!(e.contains("--name"), "{bad}: {e}");
        }
        assert!(check(&args(&["--name", "acme-ec2"])).is_ok());
        // The default is a name ECS accepts.
        assert!(check(&args(&[])).is_ok());
    }

    #[test]
    fn sizes_and_ids_are_checked_together() {
        let e = problems(&[
            "--min-size",
            "3",
            "--max-size",
            "2",
            "--desired-capacity",
            "5",
            "--target-capacity",
            "0",
            "--root-volume-size",
            "8",
            "--ami",
            "ami-xyz",
            "--subnets",
            "subnet-12345678,net-1",
            "--security-groups",
            "sg-1",
        ]);
        for flag in [
            "--min-size",
            "--desired-capacity",
            "--target-capacity",
            "--root-volume-size",
            "--ami",
            "--subnets",
            "--security-groups",
        ] {
            assert!(e.contains(flag), "{flag}: {e}");
        }
    }

    #[test]
    fn a_managed_name_leaves_room_for_its_infrastructure_role() {
        let long = "m".repeat(50);
        let e = problems(&["--managed", "--name", &long]);
        assert!(e.contains("--name: 'mmm"), "{e}");
        assert!(e.contains("at most 49"), "{e}");
        assert!(check(&args(&["--managed", "--name", &"m".repeat(49)])).is_ok());
        // A role given by ARN: the name names no role.
        assert!(
            check(&args(&[
                "--managed",
                "--name",
                &long,
                "--infrastructure-role-arn",
                "arn:aws:iam::123456789012:role/acme-infra"
            ]))
            .is_ok()
        );
    }

    #[test]
    fn instance_types_of_two_architectures_are_refused() {
        let e = problems(&["--instance-type", "t3.small,t4g.small"]);
        assert!(e.contains("architecture"), "{e}");
        assert_eq!(
            check(&args(&["--instance-type", "m7g.large,c6gn.xlarge"])).unwrap(),
            Arch::Arm64
        );
    }

    #[test]
    fn managed_takes_no_instance_settings_and_a_checked_role_arn() {
        for flag in [
            "--ami=ami-12345678",
            "--instance-type=t3.small",
            "--max-size=3",
        ] {
            let e = Args::try_parse_from(["capacity-create", "--managed", flag]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{flag}");
        }
        let e =
            Args::try_parse_from(["capacity-create", "--infrastructure-role-arn=x"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let e = problems(&[
            "--managed",
            "--infrastructure-role-arn",
            "arn:aws:iam::123456789012:user/x",
        ]);
        assert!(e.contains("--infrastructure-role-arn"), "{e}");
        assert!(
            check(&args(&[
                "--managed",
                "--infrastructure-role-arn",
                "arn:aws:iam::123456789012:role/acme-infra"
            ]))
            .is_ok()
        );
    }
}
