//! instance-profile: the container-instance role (ecsInstanceRole) and the instance profile
//! that EC2 instances launch with, convergent and idempotent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::aws::{AwsArgs, Ctx};
use crate::cli::Common;
use crate::error::AwsContext;
use crate::iam::policy::{self, Access, S3Grant};
use crate::iam::role::{self, DesiredRole};
use crate::validate;
use crate::{Error, Report, Result};

#[derive(clap::Parser, Debug)]
#[command(
    name = "instance-profile",
    next_help_heading = "instance-profile",
    version,
    about = "Create or converge the ECS container-instance role and its instance profile.",
    after_help = "Examples:\n  \
        instance-profile                     # ecsInstanceRole and its profile, as in AWS's guide\n  \
        instance-profile --s3-read acme-config/snaplex/prod --cloudwatch-logs --output env\n  \
        instance-profile --role-name ecsAnywhereRole --profile-name ecsAnywhere-profile --ecs-anywhere\n  \
        instance-profile --role-name ecsTrunkingRole --profile-name ecsTrunking-profile --trunking\n  \
        instance-profile --delete\n\n\
        Reads: ECSKIT_INSTANCE_ROLE_NAME, ECSKIT_INSTANCE_PROFILE_NAME\n\
        Prints: ECSKIT_INSTANCE_ROLE_ARN, ECSKIT_INSTANCE_ROLE_NAME, ECSKIT_INSTANCE_PROFILE_ARN, ECSKIT_INSTANCE_PROFILE_NAME, ECSKIT_CHANGED"
)]
pub struct Args {
    /// The container-instance role.
    #[arg(
        long,
        env = "ECSKIT_INSTANCE_ROLE_NAME",
        default_value = "ecsInstanceRole"
    )]
    pub role_name: String,
    /// The instance profile that holds the role.
    #[arg(
        long,
        env = "ECSKIT_INSTANCE_PROFILE_NAME",
        default_value = "ecsInstanceRole-profile"
    )]
    pub profile_name: String,
    /// Read access to BUCKET[/PREFIX] (an inline policy), repeatable.
    #[arg(
        long,
        value_name = "BUCKET[/PREFIX]",
        conflicts_with = "s3_read_only_managed"
    )]
    pub s3_read: Vec<String>,
    /// Attach AmazonS3ReadOnlyAccess (every bucket) instead of --s3-read.
    #[arg(long)]
    pub s3_read_only_managed: bool,
    /// Add the CloudWatch Logs policy (CreateLogGroup, CreateLogStream, PutLogEvents, DescribeLogStreams).
    #[arg(long)]
    pub cloudwatch_logs: bool,
    /// External instances (ECS Anywhere): attach AmazonSSMManagedInstanceCore and trust ssm.amazonaws.com too.
    #[arg(long)]
    pub ecs_anywhere: bool,
    /// Turn on ENI trunking (the `awsvpcTrunking` account setting) for this role's principal:
    /// instances launched with it take many more awsvpc tasks. Other roles are left as they are.
    #[arg(long, conflicts_with = "delete")]
    pub trunking: bool,
    /// Take over a profile that holds another role (that role is removed from it).
    #[arg(long)]
    pub replace_role: bool,
    #[command(flatten)]
    pub role: role::RoleOptions,
    /// Delete the profile and the role (only when tagged managed-by=ecskit).
    #[arg(long)]
    pub delete: bool,
    // The shared flags come last, under their own headings (Output, AWS): flattened first,
    // their headings would swallow the step's own flags.
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: AwsArgs,
}

crate::step_flags!(Args);

/// The instance-profile step.
pub struct InstanceProfile;

impl crate::step::Step for InstanceProfile {
    const STEP: ecskit_contract::Step = ecskit_contract::Step::InstanceProfile;
    type Args = Args;
    type Checked = Vec<S3Grant>;

    fn check(args: &Args) -> Result<Vec<S3Grant>> {
        plan(args)
    }

    async fn execute(ctx: &Ctx, args: &Args, grants: Vec<S3Grant>) -> Result<Report> {
        converge_all(ctx, args, &grants).await
    }
}

/// Checks all input; returns the S3 grants.
pub fn plan(args: &Args) -> Result<Vec<S3Grant>> {
    let mut problems = Vec::new();
    if let Err(e) = validate::iam_name(&args.role_name, 64) {
        problems.push(format!("--role-name: {e}"));
    }
    if let Err(e) = validate::iam_name(&args.profile_name, 128) {
        problems.push(format!("--profile-name: {e}"));
    }
    args.role.check(&mut problems);
    let mut grants = Vec::new();
    for spec in &args.s3_read {
        if spec.contains(':') && !spec.starts_with("s3://") {
            problems.push(format!(
                "--s3-read {spec}: expected BUCKET[/PREFIX] (read only, no access suffix)"
            ));
            continue;
        }
        match S3Grant::parse(spec, Access::Read) {
            Ok(g) => grants.push(g),
            Err(e) => problems.push(format!("--s3-read {spec}: {e}")),
        }
    }
    if !problems.is_empty() {
        return Err(Error::inputs(problems));
    }
    Ok(grants)
}

/// The role as it should be.
pub fn desired(args: &Args, grants: &[S3Grant], partition: &str) -> DesiredRole {
    let ec2 = policy::aws_managed(
        partition,
        "service-role/",
        "AmazonEC2ContainerServiceforEC2Role",
    );
    let s3ro = policy::aws_managed(partition, "", "AmazonS3ReadOnlyAccess");
    let ssm = policy::aws_managed(partition, "", "AmazonSSMManagedInstanceCore");
    let mut managed = BTreeSet::from([ec2.clone()]);
    if args.s3_read_only_managed {
        managed.insert(s3ro.clone());
    }
    if args.ecs_anywhere {
        managed.insert(ssm.clone());
    }
    let mut inline = BTreeMap::new();
    if !grants.is_empty() {
        inline.insert(
            format!("{}s3-read", role::INLINE_PREFIX),
            policy::s3_grants(partition, grants),
        );
    }
    if args.cloudwatch_logs {
        inline.insert(
            format!("{}cloudwatch-logs", role::INLINE_PREFIX),
            policy::cloudwatch_logs(partition),
        );
    }
    let services: &[&str] = if args.ecs_anywhere {
        &["ec2.amazonaws.com", "ssm.amazonaws.com"]
    } else {
        &["ec2.amazonaws.com"]
    };
    DesiredRole {
        name: args.role_name.clone(),
        path: args.role.path.clone(),
        trust: policy::service_trust(services),
        inline,
        managed,
        managed_known: BTreeSet::from([ec2, s3ro, ssm]),
        tags: role::tags(&args.role.tag),
        permissions_boundary: args.role.permissions_boundary.clone(),
        description: "ECS container-instance role (ecskit)".into(),
    }
}

pub struct Profile {
    pub arn: String,
    pub roles: Vec<String>,
    tags: BTreeMap<String, String>,
}

/// The instance profile, or None when there is none of that name (capacity-create reads its ARN).
pub async fn get_profile(ctx: &Ctx, name: &str) -> Result<Option<Profile>> {
    match ctx
        .iam()
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .context(format!("reading instance profile {name}"))
    {
        Ok(out) => {
            let p = out.instance_profile.ok_or_else(|| {
                Error::aws(
                    format!("reading instance profile {name}"),
                    "no profile in the answer",
                )
            })?;
            Ok(Some(Profile {
                arn: p.arn().to_string(),
                roles: p
                    .roles()
                    .iter()
                    .map(|r| r.role_name().to_string())
                    .collect(),
                tags: p
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
            }))
        }
        Err(e) if e.is_aws(&["NoSuchEntity"]) => Ok(None),
        Err(e) => Err(e),
    }
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter()
        .filter_map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect()
}

/// The profile holds exactly our role, is tagged, and is visible.
/// `read`: the profile as this run read it before its first change, when it did.
async fn converge_profile(
    ctx: &Ctx,
    args: &Args,
    tags: &BTreeMap<String, String>,
    partition: &str,
    account: &str,
    read: Option<Option<Profile>>,
) -> Result<String> {
    let iam = ctx.iam();
    let name = &args.profile_name;
    let role_name = &args.role_name;
    let mut current = match read {
        Some(r) => r,
        None => get_profile(ctx, name).await?,
    };
    // Whether the profile was created or its role changed: only then is it waited for.
    let mut changed = false;
    if current.is_none() && ctx.apply(format!("create instance profile {name}")) {
        changed = true;
        match iam
            .create_instance_profile()
            .instance_profile_name(name)
            .path(&args.role.path)
            .set_tags(Some(iam_tags(tags)))
            .send()
            .await
            .context(format!("creating instance profile {name}"))
        {
            Ok(_) => {}
            Err(e) if e.is_aws(&["EntityAlreadyExists"]) => {
                tracing::info!(
                    "instance profile {name} already exists (a retried create): converging it"
                );
            }
            Err(e) => return Err(e),
        }
        // IAM is eventually consistent: a profile just created (or created by the lost first
        // attempt) may not be readable yet. Reading it once and taking "missing" for the
        // dry-run case would skip adding the role and still report success.
        wait_for_profile(ctx, name).await?;
        current = get_profile(ctx, name).await?;
        if current.is_none() {
            return Err(Error::aws(
                format!("reading instance profile {name}"),
                "it was created but IAM does not return it",
            ));
        }
    }
    let Some(profile) = current else {
        // Dry-run and the profile does not exist yet.
        ctx.apply(format!("add role {role_name} to instance profile {name}"));
        return Ok(format!(
            "arn:{partition}:iam::{account}:instance-profile{}{name}",
            args.role.path
        ));
    };
    let others: Vec<&String> = profile.roles.iter().filter(|r| *r != role_name).collect();
    if !others.is_empty() {
        conflict(args, &profile)?;
        for other in others {
            tracing::warn!(
                "instance profile {name} holds role {other}: replacing it with {role_name}"
            );
            if ctx.apply(format!("remove role {other} from instance profile {name}")) {
                changed = true;
                iam.remove_role_from_instance_profile()
                    .instance_profile_name(name)
                    .role_name(other)
                    .send()
                    .await
                    .context(format!(
                        "removing role {other} from instance profile {name}"
                    ))?;
            }
        }
    }
    if !profile.roles.contains(role_name)
        && ctx.apply(format!("add role {role_name} to instance profile {name}"))
    {
        changed = true;
        let added = iam
            .add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(role_name)
            .send()
            .await
            .context(format!(
                "adding role {role_name} to instance profile {name}"
            ));
        match added {
            Ok(_) => {}
            // A retried add whose first answer was lost: the profile (which holds one role at
            // most) already holds it. Anything else in it is an error.
            Err(e) if e.is_aws(&["LimitExceeded"]) => {
                let holds = get_profile(ctx, name)
                    .await?
                    .is_some_and(|p| p.roles.iter().any(|r| r == role_name));
                if !holds {
                    return Err(e);
                }
                tracing::info!(
                    "instance profile {name} already holds role {role_name} (a retried add)"
                );
            }
            Err(e) => return Err(e),
        }
    }
    let wrong: BTreeMap<String, String> = tags
        .iter()
        .filter(|(k, v)| profile.tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !wrong.is_empty() {
        let list: Vec<String> = wrong.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tracing::warn!("instance profile {name} lacks the tags {}", list.join(", "));
        if ctx.apply(format!(
            "tag instance profile {name} with {}",
            list.join(", ")
        )) {
            iam.tag_instance_profile()
                .instance_profile_name(name)
                .set_tags(Some(iam_tags(&wrong)))
                .send()
                .await
                .context(format!("tagging instance profile {name}"))?;
        }
    }
    // A profile this run created or gave its role may not be visible to EC2 yet; one left as
    // it was is.
    if changed && !ctx.dry_run {
        wait_for_profile(ctx, name).await?;
    }
    Ok(profile.arn)
}

/// Waits until IAM returns the profile. Not the SDK's `InstanceProfileExists` waiter: it
/// retries only on the code `NoSuchEntityException`, while IAM answers `NoSuchEntity`, so it
/// fails on the very read it is meant to wait through. Sleeps with the SDK config's sleep.
async fn wait_for_profile(ctx: &Ctx, name: &str) -> Result<()> {
    use aws_sdk_iam::config::AsyncSleep;
    let sleep = ctx.sdk_config().sleep_impl();
    let mut delay = Duration::from_secs(1);
    let mut waited = Duration::ZERO;
    loop {
        if get_profile(ctx, name).await?.is_some() {
            return Ok(());
        }
        if waited >= Duration::from_secs(60) {
            return Err(Error::aws(
                format!("waiting for instance profile {name} to be visible"),
                "IAM still does not return it after 60s",
            ));
        }
        tracing::debug!("instance profile {name} not visible yet: reading it again in {delay:?}");
        match &sleep {
            Some(s) => s.sleep(delay).await,
            None => tokio::time::sleep(delay).await,
        }
        waited += delay;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// The error for a profile that holds another role, unless `--replace-role` was given.
fn conflict(args: &Args, profile: &Profile) -> Result<()> {
    let others: Vec<&str> = profile
        .roles
        .iter()
        .map(String::as_str)
        .filter(|r| *r != args.role_name)
        .collect();
    if others.is_empty() || args.replace_role {
        return Ok(());
    }
    Err(Error::input(format!(
        "instance profile {} holds role {}, not {}",
        args.profile_name,
        others.join(", "),
        args.role_name
    ))
    .hint(format!(
        "pass --replace-role to put {} in its place, or choose another --profile-name",
        args.role_name
    )))
}

async fn delete_profile(ctx: &Ctx, args: &Args) -> Result<()> {
    let iam = ctx.iam();
    let name = &args.profile_name;
    let Some(profile) = get_profile(ctx, name).await? else {
        tracing::info!("instance profile {name} does not exist: nothing to delete");
        return Ok(());
    };
    if !crate::aws::is_managed(profile.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        tracing::warn!(
            "instance profile {name} is not tagged managed-by=ecskit: leaving it (only the role is removed from it)"
        );
        return Ok(());
    }
    for r in &profile.roles {
        if ctx.apply(format!("remove role {r} from instance profile {name}")) {
            iam.remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(r)
                .send()
                .await
                .context(format!("removing role {r} from instance profile {name}"))?;
        }
    }
    if ctx.apply(format!("delete instance profile {name}")) {
        iam.delete_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .context(format!("deleting instance profile {name}"))?;
    }
    Ok(())
}

async fn converge_all(ctx: &Ctx, args: &Args, grants: &[S3Grant]) -> Result<Report> {
    let region = ctx.require_region()?;
    let partition = policy::partition(&region);
    let account = ctx.account_id().await?;
    let desired = desired(args, grants, partition);
    // The role and the profile are read, and every refusal decided, before the first
    // mutating call: exit 2 means nothing was changed.
    let (role_arn, profile_arn) = if args.delete {
        let checked = role::check_delete(ctx, &desired.name).await?;
        delete_profile(ctx, args).await?;
        role::delete(ctx, checked).await?;
        (
            desired.arn(partition, &account),
            format!(
                "arn:{partition}:iam::{account}:instance-profile{}{}",
                args.role.path, args.profile_name
            ),
        )
    } else {
        // A profile that holds another role is refused before anything is changed.
        let mut read = None;
        if !args.replace_role {
            let p = get_profile(ctx, &args.profile_name).await?;
            if let Some(p) = &p {
                conflict(args, p)?;
            }
            read = Some(p);
        }
        let checked = role::check_converge(ctx, &desired).await?;
        let role_arn = role::converge(ctx, &desired, checked, partition, &account).await?;
        let profile_arn =
            converge_profile(ctx, args, &desired.tags, partition, &account, read).await?;
        if args.trunking {
            trunking(ctx, &role_arn).await?;
        }
        (role_arn, profile_arn)
    };
    Ok(ctx
        .report()
        .output(ecskit_contract::outputs::INSTANCE_ROLE_ARN, role_arn)
        .output(
            ecskit_contract::outputs::INSTANCE_ROLE_NAME,
            args.role_name.clone(),
        )
        .output(ecskit_contract::outputs::INSTANCE_PROFILE_ARN, profile_arn)
        .output(
            ecskit_contract::outputs::INSTANCE_PROFILE_NAME,
            args.profile_name.clone(),
        ))
}

/// ECS's `awsvpcTrunking` setting for the role's principal, turned on when it is not. The
/// setting is per principal: the instances' role, never the caller's or the account default.
async fn trunking(ctx: &Ctx, role_arn: &str) -> Result<()> {
    let ecs = ctx.ecs();
    let now = ecs
        .list_account_settings()
        .name(aws_sdk_ecs::types::SettingName::AwsvpcTrunking)
        .principal_arn(role_arn)
        .effective_settings(true)
        .send()
        .await
        .context(format!("reading the awsvpcTrunking setting of {role_arn}"))?;
    let on = now.settings().iter().any(|s| {
        s.name() == Some(&aws_sdk_ecs::types::SettingName::AwsvpcTrunking)
            && s.value() == Some("enabled")
    });
    if !on {
        ctx.mutate(
            format!("turn on awsvpcTrunking for {role_arn}"),
            ecs.put_account_setting()
                .name(aws_sdk_ecs::types::SettingName::AwsvpcTrunking)
                .value("enabled")
                .principal_arn(role_arn)
                .send(),
        )
        .await?;
    }
    Ok(())
}
