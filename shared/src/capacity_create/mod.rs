//! capacity-create: EC2 capacity for a cluster in one step: a launch template (the
//! ECS-optimized AMI, the instance profile, user data that joins the cluster), an Auto Scaling
//! group over the subnets, and an ECS capacity provider over the group, attached to the cluster.
//!
//! Everything it makes is named after `--name` and tagged managed-by=ecskit; a launch template,
//! group or capacity provider of that name that is not tagged is refused (exit 2), never taken
//! over. Every resource is read, and every refusal decided, before the first mutating call.

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

pub use template::{Arch, ami_parameter, architecture, user_data};

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
    /// The group's minimum size.
    #[arg(long, default_value_t = 0)]
    pub min_size: i32,
    /// The group's maximum size.
    #[arg(long, default_value_t = 2)]
    pub max_size: i32,
    /// The group's desired capacity when it is created (afterwards managed scaling owns it;
    /// given on a later run, it is set again).
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
    /// managed-by=ecskit), after taking the provider out of the cluster.
    #[arg(long, help_heading = "Delete")]
    pub delete: bool,
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
        && let Err(e) = crate::service_run::service_file::ami_id(ami)
    {
        problems.push(format!("--ami: {e}"));
    }
    if let Some(arn) = &args.infrastructure_role_arn
        && let Err(e) = validate::role_arn(arn)
    {
        problems.push(format!("--infrastructure-role-arn: {e}"));
    }
    for s in &args.subnets {
        if let Err(e) = crate::service_run::service_file::subnet_id(s) {
            problems.push(format!("--subnets: {e}"));
        }
    }
    for s in &args.security_groups {
        if let Err(e) = crate::service_run::service_file::security_group_id(s) {
            problems.push(format!("--security-groups: {e}"));
        }
    }
    if args.min_size < 0 || args.max_size < 1 || args.min_size > args.max_size {
        problems.push(format!(
            "--min-size {} and --max-size {}: need 0 <= min <= max and max >= 1",
            args.min_size, args.max_size
        ));
    }
    if let Some(d) = args.desired_capacity
        && !(args.min_size..=args.max_size).contains(&d)
    {
        problems.push(format!(
            "--desired-capacity {d}: must lie between --min-size {} and --max-size {}",
            args.min_size, args.max_size
        ));
    }
    if !(1..=100).contains(&args.target_capacity) {
        problems.push(format!(
            "--target-capacity {}: must be 1 to 100 (percent)",
            args.target_capacity
        ));
    }
    if !(30..=16_384).contains(&args.root_volume_size) {
        problems.push(format!(
            "--root-volume-size {}: must be 30 (the AMI's snapshot) to 16384 GiB",
            args.root_volume_size
        ));
    }
    match (problems.is_empty(), arch) {
        (true, Some(a)) => Ok(a),
        _ => Err(Error::inputs(problems)),
    }
}

/// An existing resource of `--name` that this tool did not make: refused, never taken over.
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
    if tpl_now.as_ref().is_some_and(|t| !t.managed) {
        return Err(not_ours("launch template", &args.name));
    }
    if grp_now.as_ref().is_some_and(|g| !g.managed) {
        return Err(not_ours("Auto Scaling group", &args.name));
    }
    provider::check_existing(cp_now.as_ref(), &args.name, grp_now.as_ref())?;
    if let Some(joined) = tpl_now
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| joined_cluster(&s.user_data))
        .filter(|c| *c != args.cluster)
    {
        return Err(other_cluster(&args.name, &joined, &args.cluster));
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
    let tpl = template::converge(ctx, &args.name, tpl_now, &want).await?;
    let grp = group::converge(
        ctx,
        args,
        grp_now,
        &group::Spec {
            min: args.min_size,
            max: args.max_size,
            desired: args.desired_capacity,
            subnets,
            template_id: tpl.id.clone(),
            version: tpl.version,
            instance_types: args.instance_type.clone(),
            spot: args.spot,
        },
        &region,
        &account,
    )
    .await?;
    let mut previous_ami = None;
    if let Some(old) = tpl.replaced_image.as_deref().filter(|old| *old != image) {
        group::roll(ctx, &args.name, &grp, old, &image).await?;
        previous_ami = Some(old.to_string());
    }
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

async fn delete(deps: &Deps, args: &Args) -> Result<Report> {
    let ctx = &deps.ctx;
    let tpl = template::read(ctx, &args.name).await?;
    let grp = group::read(ctx, &args.name).await?;
    let cp = provider::read(deps, &args.name).await?;
    let cluster = crate::ecs::cluster::describe(deps, &args.cluster).await?;
    // Refusals before the first change: a resource of this name that is not ours stops the
    // whole delete, so no half of someone else's capacity is taken apart.
    if tpl.as_ref().is_some_and(|t| !t.managed) {
        return Err(not_ours("launch template", &args.name));
    }
    if grp.as_ref().is_some_and(|g| !g.managed) {
        return Err(not_ours("Auto Scaling group", &args.name));
    }
    if cp.as_ref().is_some_and(|c| !c.managed) {
        return Err(not_ours("capacity provider", &args.name));
    }
    provider::detach(deps, args, cluster).await?;
    if cp.is_some() {
        provider::delete(deps, &args.name).await?;
    }
    if grp.is_some() {
        group::delete(ctx, &args.name).await?;
    }
    if let Some(t) = tpl {
        template::delete(ctx, &args.name, &t.id).await?;
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
