//! The convergent role logic both steps share: bring one role to a desired state (trust,
//! inline policies, the managed policies the step manages, tags, permissions boundary) with
//! no mutating call when it already matches, print what differs, and delete it again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_iam::types::Tag;
use serde_json::Value;

use super::policy;
use crate::aws::Ctx;
use crate::error::{AwsContext, Error, Result};

pub use crate::aws::MANAGED_BY;

/// The flags both IAM steps take for what they create: path, permissions boundary and tags.
#[derive(clap::Args, Clone, Debug)]
pub struct RoleOptions {
    /// IAM path of the roles (and, for instance-profile, of the profile).
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Managed policy ARN used as the roles' permissions boundary.
    #[arg(long, value_name = "ARN")]
    pub permissions_boundary: Option<String>,
    /// A tag KEY=VALUE on what is created, repeatable (managed-by=ecskit is always added).
    #[arg(long, value_parser = crate::cli::key_value, value_name = "KEY=VALUE")]
    pub tag: Vec<(String, String)>,
}

impl RoleOptions {
    /// Adds a problem, naming the flag, for each bad value.
    pub fn check(&self, problems: &mut Vec<String>) {
        if let Err(e) = crate::validate::iam_path(&self.path) {
            problems.push(format!("--path: {e}"));
        }
        if let Some(b) = &self.permissions_boundary
            && let Err(e) = crate::validate::arn(b, Some("iam"), Some("policy/"))
        {
            problems.push(format!("--permissions-boundary: {e}"));
        }
        for (k, _) in &self.tag {
            if k == MANAGED_BY.0 {
                problems.push(format!(
                    "--tag: the key '{k}' is reserved: ecskit sets managed-by=ecskit itself"
                ));
            }
        }
    }
}

/// Inline policies whose names start with this are the step's own: one that is no longer
/// wanted is removed. Others are left alone.
pub const INLINE_PREFIX: &str = "ecskit-";

/// One role as the step wants it.
#[derive(Clone, Debug)]
pub struct DesiredRole {
    pub name: String,
    pub path: String,
    pub trust: Value,
    /// Inline policies by name (names start with [`INLINE_PREFIX`]).
    pub inline: BTreeMap<String, Value>,
    /// Managed policy ARNs to attach.
    pub managed: BTreeSet<String>,
    /// Managed policy ARNs the step owns: attached ones not in `managed` are detached.
    pub managed_known: BTreeSet<String>,
    /// Tags, `managed-by=ecskit` included.
    pub tags: BTreeMap<String, String>,
    pub permissions_boundary: Option<String>,
    pub description: String,
}

impl DesiredRole {
    pub fn arn(&self, partition: &str, account: &str) -> String {
        format!(
            "arn:{partition}:iam::{account}:role{}{}",
            self.path, self.name
        )
    }
}

/// The tags of a step: the user's, plus `managed-by=ecskit` (which the user cannot override).
pub fn tags(user: &[(String, String)]) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = user.iter().cloned().collect();
    tags.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    tags
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// What a role looks like now.
pub struct Current {
    arn: String,
    path: String,
    trust: Value,
    tags: BTreeMap<String, String>,
    boundary: Option<String>,
}

async fn get_role(ctx: &Ctx, name: &str) -> Result<Option<Current>> {
    match ctx
        .iam()
        .get_role()
        .role_name(name)
        .send()
        .await
        .context(format!("reading role {name}"))
    {
        Ok(out) => {
            let role = out.role.ok_or_else(|| {
                Error::aws(format!("reading role {name}"), "no role in the answer")
            })?;
            current_of(&role, name).map(Some)
        }
        Err(e) if e.is_aws(&["NoSuchEntity"]) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The role as GetRole (or CreateRole) answers it.
fn current_of(role: &aws_sdk_iam::types::Role, name: &str) -> Result<Current> {
    let trust = match role.assume_role_policy_document() {
        Some(doc) => policy::decode(doc)
            .map_err(|e| Error::aws(format!("reading the trust policy of {name}"), e))?,
        None => Value::Null,
    };
    Ok(Current {
        arn: role.arn().to_string(),
        path: role.path().to_string(),
        trust,
        tags: role
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        boundary: role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string),
    })
}

async fn inline_names(ctx: &Ctx, name: &str) -> Result<Vec<String>> {
    let pages = ctx
        .iam()
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut names = Vec::new();
    for page in pages {
        names.extend(
            page.context(format!("listing the inline policies of {name}"))?
                .policy_names()
                .iter()
                .cloned(),
        );
    }
    Ok(names)
}

async fn attached_arns(ctx: &Ctx, name: &str) -> Result<Vec<String>> {
    let pages = ctx
        .iam()
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut arns = Vec::new();
    for page in pages {
        let page = page.context(format!("listing the managed policies of {name}"))?;
        arns.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string)),
        );
    }
    Ok(arns)
}

/// A role read before the step's first mutating call, with every refusal already decided.
///
/// A step that converges or deletes two roles checks both first ([`check_converge`],
/// [`check_delete`]) and only then acts ([`converge`], [`delete`]): exit 2 must mean that
/// nothing was changed, so the second role's refusal may not come after the first role's
/// changes.
pub struct Checked {
    name: String,
    current: Option<Current>,
}

impl Checked {
    /// The ARN of a role that exists and is not tagged `managed-by=ecskit`: someone else made
    /// it (a console set-up that `cargo xtask init` adopted), so a step references it as it is
    /// and makes no call that would change it.
    pub fn unmanaged_arn(&self) -> Option<&str> {
        self.current
            .as_ref()
            .filter(|cur| {
                !crate::aws::is_managed(cur.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            })
            .map(|cur| cur.arn.as_str())
    }

    /// The role's ARN, when it exists.
    pub fn arn(&self) -> Option<&str> {
        self.current.as_ref().map(|cur| cur.arn.as_str())
    }

    /// Whether the role exists.
    pub fn exists(&self) -> bool {
        self.current.is_some()
    }

    /// The value of one of the role's tags.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.current
            .as_ref()
            .and_then(|cur| cur.tags.get(key))
            .map(String::as_str)
    }

    /// Whether the role's trust policy lets `service` (`ecs.amazonaws.com`) assume it.
    pub fn trusts_service(&self, service: &str) -> bool {
        let Some(cur) = &self.current else {
            return false;
        };
        let statements = match &cur.trust["Statement"] {
            Value::Array(list) => list.clone(),
            one => vec![one.clone()],
        };
        statements.iter().any(|st| {
            st["Effect"] == "Allow"
                && match &st["Principal"]["Service"] {
                    Value::String(s) => s == service,
                    Value::Array(list) => list.iter().any(|s| s == service),
                    _ => false,
                }
        })
    }
}

/// The managed policy ARNs attached to a role (a read).
pub async fn attached_policies(ctx: &Ctx, name: &str) -> Result<Vec<String>> {
    attached_arns(ctx, name).await
}

/// Reads the role and refuses what converging cannot do (IAM cannot move a role to another
/// path). No mutating call.
pub async fn check_converge(ctx: &Ctx, desired: &DesiredRole) -> Result<Checked> {
    let name = &desired.name;
    let current = get_role(ctx, name).await?;
    // A role ecskit does not manage is only referenced (see [`Checked::unmanaged_arn`]), so
    // its path is not ecskit's to refuse.
    if let Some(cur) = &current
        && cur.path != desired.path
        && crate::aws::is_managed(cur.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        return Err(Error::input(format!(
            "role {name} exists with path {} but --path is {}",
            cur.path, desired.path
        ))
        .hint("IAM cannot move a role: pass its current --path, or delete it first"));
    }
    Ok(Checked {
        name: name.clone(),
        current,
    })
}

/// Reads the role and refuses to delete one ecskit did not make. No mutating call.
pub async fn check_delete(ctx: &Ctx, name: &str) -> Result<Checked> {
    let current = get_role(ctx, name).await?;
    if let Some(cur) = &current
        && !crate::aws::is_managed(cur.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        return Err(Error::input(format!("role {name} is not tagged managed-by=ecskit: ecskit did not create it and will not delete it"))
            .hint("delete it yourself, or pick another name"));
    }
    Ok(Checked {
        name: name.to_string(),
        current,
    })
}

/// Brings the role to `desired` and returns its ARN. In dry-run, announces what it would do.
/// `account` and `partition` are used to compute the ARN of a role that does not exist yet.
/// `checked` comes from [`check_converge`] for the same role.
pub async fn converge(
    ctx: &Ctx,
    desired: &DesiredRole,
    checked: Checked,
    partition: &str,
    account: &str,
) -> Result<String> {
    let name = &desired.name;
    debug_assert_eq!(&checked.name, name);
    let iam = ctx.iam();
    let trust_text = desired.trust.to_string();
    let mut current = checked.current;
    let mut created = false;
    if current.is_none() && ctx.apply(format!("create role {name}")) {
        let mut req = iam
            .create_role()
            .role_name(name)
            .path(&desired.path)
            .description(&desired.description)
            .assume_role_policy_document(&trust_text)
            .set_tags(Some(iam_tags(&desired.tags)));
        if let Some(b) = &desired.permissions_boundary {
            req = req.permissions_boundary(b);
        }
        let answered = match req.send().await.context(format!("creating role {name}")) {
            Ok(out) => {
                created = true;
                out.role
            }
            // A retried create whose first answer was lost: the role is there, converge it.
            Err(e) if e.is_aws(&["EntityAlreadyExists"]) => {
                tracing::info!("role {name} already exists (a retried create): converging it");
                None
            }
            Err(e) => return Err(e),
        };
        wait_for_role(ctx, name).await?;
        // A role this run created is what CreateRole answered, with no policy yet: it is not
        // read again (GetRole, and the two policy lists below).
        current = match answered {
            Some(role) => Some(current_of(&role, name)?),
            None => get_role(ctx, name).await?,
        };
    }

    let arn = match &current {
        Some(cur) => {
            if !created {
                converge_existing(ctx, desired, cur).await?;
            }
            cur.arn.clone()
        }
        None => desired.arn(partition, account),
    };

    // Inline policies: put what is missing or different, remove our own that are not wanted.
    // A role that does not exist (dry-run), or that this run just created, has none.
    let existing = if current.is_some() && !created {
        inline_names(ctx, name).await?
    } else {
        Vec::new()
    };
    for (pname, doc) in &desired.inline {
        let now = if existing.contains(pname) {
            let out = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(pname)
                .send()
                .await
                .context(format!("reading inline policy {pname} of {name}"))?;
            Some(
                policy::decode(out.policy_document())
                    .map_err(|e| Error::aws(format!("reading inline policy {pname}"), e))?,
            )
        } else {
            None
        };
        let action = match &now {
            Some(now) if policy::same(now, doc) => continue,
            Some(now) => {
                tracing::warn!(
                    "inline policy {pname} of role {name} differs:\n{}",
                    policy::diff(now, doc)
                );
                format!("update inline policy {pname} of role {name}")
            }
            None => format!("put inline policy {pname} on role {name}"),
        };
        if ctx.apply(action) {
            iam.put_role_policy()
                .role_name(name)
                .policy_name(pname)
                .policy_document(doc.to_string())
                .send()
                .await
                .context(format!("putting inline policy {pname} on role {name}"))?;
        }
    }
    for pname in existing
        .iter()
        .filter(|p| p.starts_with(INLINE_PREFIX) && !desired.inline.contains_key(*p))
    {
        if ctx.apply(format!(
            "delete inline policy {pname} of role {name} (no longer wanted)"
        )) {
            iam.delete_role_policy()
                .role_name(name)
                .policy_name(pname)
                .send()
                .await
                .context(format!("deleting inline policy {pname} of role {name}"))?;
        }
    }

    // Managed policies.
    let attached = if current.is_some() && !created {
        attached_arns(ctx, name).await?
    } else {
        Vec::new()
    };
    for p in desired.managed.iter().filter(|p| !attached.contains(p)) {
        if ctx.apply(format!("attach {p} to role {name}")) {
            iam.attach_role_policy()
                .role_name(name)
                .policy_arn(p)
                .send()
                .await
                .context(format!("attaching {p} to role {name}"))?;
        }
    }
    for p in attached
        .iter()
        .filter(|p| desired.managed_known.contains(*p) && !desired.managed.contains(*p))
    {
        if ctx.apply(format!("detach {p} from role {name} (no longer wanted)")) {
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(p)
                .send()
                .await
                .context(format!("detaching {p} from role {name}"))?;
        }
    }
    Ok(arn)
}

/// Trust, tags and permissions boundary of a role that already existed.
async fn converge_existing(ctx: &Ctx, desired: &DesiredRole, cur: &Current) -> Result<()> {
    let name = &desired.name;
    let iam = ctx.iam();
    if !policy::same(&cur.trust, &desired.trust) {
        tracing::warn!(
            "trust policy of role {name} differs:\n{}",
            policy::diff(&cur.trust, &desired.trust)
        );
        if ctx.apply(format!("update trust policy of role {name}")) {
            iam.update_assume_role_policy()
                .role_name(name)
                .policy_document(desired.trust.to_string())
                .send()
                .await
                .context(format!("updating the trust policy of role {name}"))?;
        }
    }
    let wrong: BTreeMap<String, String> = desired
        .tags
        .iter()
        .filter(|(k, v)| cur.tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !wrong.is_empty() {
        for (k, v) in &wrong {
            match cur.tags.get(k) {
                Some(old) => tracing::warn!("tag {k} of role {name} is '{old}', wanted '{v}'"),
                None => tracing::warn!("tag {k}={v} is missing on role {name}"),
            }
        }
        let list: Vec<String> = wrong.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if ctx.apply(format!("tag role {name} with {}", list.join(", "))) {
            iam.tag_role()
                .role_name(name)
                .set_tags(Some(iam_tags(&wrong)))
                .send()
                .await
                .context(format!("tagging role {name}"))?;
        }
    }
    if let Some(b) = &desired.permissions_boundary
        && cur.boundary.as_ref() != Some(b)
    {
        tracing::warn!(
            "permissions boundary of role {name} is {}, wanted {b}",
            cur.boundary.as_deref().unwrap_or("none")
        );
        if ctx.apply(format!("set permissions boundary {b} on role {name}")) {
            iam.put_role_permissions_boundary()
                .role_name(name)
                .permissions_boundary(b)
                .send()
                .await
                .context(format!("setting the permissions boundary of role {name}"))?;
        }
    }
    Ok(())
}

/// IAM is eventually consistent: a role just created is confirmed readable before it is
/// reported. (A role that ECS can assume is a later matter: see the README.)
pub async fn wait_for_role(ctx: &Ctx, name: &str) -> Result<()> {
    use aws_sdk_iam::client::Waiters;
    ctx.iam()
        .wait_until_role_exists()
        .role_name(name)
        .wait(Duration::from_secs(60))
        .await
        .map_err(|e| {
            Error::aws(
                format!("waiting for role {name} to be visible"),
                crate::error::flatten(&e),
            )
        })?;
    Ok(())
}

/// Deletes a role that carries `managed-by=ecskit`: removes it from its instance profiles,
/// deletes its inline policies, detaches its managed policies, then deletes it. A missing role
/// is fine (nothing to do); an untagged one is refused.
/// `checked` comes from [`check_delete`] for the same role.
pub async fn delete(ctx: &Ctx, checked: Checked) -> Result<bool> {
    let iam = ctx.iam();
    let name = checked.name.as_str();
    if checked.current.is_none() {
        tracing::info!("role {name} does not exist: nothing to delete");
        return Ok(false);
    }
    let profiles = iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .send()
        .await
        .context(format!("listing the instance profiles of role {name}"))?;
    for p in profiles.instance_profiles() {
        let pname = p.instance_profile_name();
        if ctx.apply(format!("remove role {name} from instance profile {pname}")) {
            iam.remove_role_from_instance_profile()
                .instance_profile_name(pname)
                .role_name(name)
                .send()
                .await
                .context(format!(
                    "removing role {name} from instance profile {pname}"
                ))?;
        }
    }
    for pname in inline_names(ctx, name).await? {
        if ctx.apply(format!("delete inline policy {pname} of role {name}")) {
            iam.delete_role_policy()
                .role_name(name)
                .policy_name(&pname)
                .send()
                .await
                .context(format!("deleting inline policy {pname} of role {name}"))?;
        }
    }
    for arn in attached_arns(ctx, name).await? {
        if ctx.apply(format!("detach {arn} from role {name}")) {
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(&arn)
                .send()
                .await
                .context(format!("detaching {arn} from role {name}"))?;
        }
    }
    if ctx.apply(format!("delete role {name}")) {
        iam.delete_role()
            .role_name(name)
            .send()
            .await
            .context(format!("deleting role {name}"))?;
    }
    Ok(true)
}
