//! `capacity-create --verify`: what would otherwise fail only when an instance boots, minutes
//! after the deploy reported success: an instance profile that is missing or whose role EC2
//! cannot assume (the instance never gets credentials, the agent never registers), and an AMI
//! parameter that does not resolve in this region. Reads only.

use serde_json::Value;

use super::Args;
use super::template::{self, Arch};
use crate::aws::Ctx;
use crate::verify::{Check, Checks};

/// The services a trust policy lets assume the role (statements that Allow sts:AssumeRole).
pub fn trusted_services(doc: &Value) -> Vec<String> {
    use crate::iam::policy::{assume_statements, strings};
    assume_statements(doc)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|st| strings(st.pointer("/Principal/Service")))
        .collect()
}

/// The instance profile exists and holds a role that trusts ec2.amazonaws.com.
async fn instance_profile(ctx: &Ctx, name: &str) -> Check {
    let out = match ctx
        .iam()
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            return Check::failure(
                "instance profile",
                name,
                "does not exist: the instances could not launch (run instance-profile first)",
            );
        }
        Err(e) => {
            return Check::warning(
                "instance profile",
                name,
                format!("could not be read: {}", crate::error::flatten(&e)),
            );
        }
    };
    let Some(role) = out.instance_profile().and_then(|p| p.roles().first()) else {
        return Check::failure(
            "instance profile",
            name,
            "holds no role: the instances would get no credentials and never join the cluster",
        );
    };
    let role_name = role.role_name();
    let trusted = role
        .assume_role_policy_document()
        .map(crate::iam::policy::decode)
        .and_then(|d| d.ok())
        .map(|d| trusted_services(&d))
        .unwrap_or_default();
    if trusted.iter().any(|s| s == "ec2.amazonaws.com") {
        Check::ok(
            "instance profile",
            name,
            format!("exists; its role {role_name} trusts ec2.amazonaws.com"),
        )
    } else {
        let who = if trusted.is_empty() {
            "no service".to_string()
        } else {
            trusted.join(", ")
        };
        Check::failure(
            "instance profile",
            name,
            format!(
                "its role {role_name} lets {who} assume it, not ec2.amazonaws.com: the instances would get no credentials"
            ),
        )
    }
}

/// Every check of one run: the instance profile, and the AMI parameter unless an AMI is
/// pinned (or AWS picks it: `--managed`).
pub async fn checks(ctx: &Ctx, args: &Args, arch: Arch) -> Checks {
    let mut checks = vec![instance_profile(ctx, &args.instance_profile).await];
    if !args.managed && args.ami.is_none() {
        let parameter = template::ami_parameter(arch);
        checks.push(match template::resolve_ami(ctx, arch).await {
            Ok(ami) => Check::ok("ami", parameter, format!("resolves to {ami}")),
            Err(e) => Check::failure("ami", parameter, format!("does not resolve: {e}")),
        });
    }
    Checks(checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_allowed_assume_role_statements_count() {
        let doc = json!({"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": ["ec2.amazonaws.com"]}},
            {"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": {"Service": "ssm.amazonaws.com"}},
            {"Effect": "Allow", "Action": "s3:GetObject", "Principal": {"Service": "ecs.amazonaws.com"}},
        ]});
        assert_eq!(trusted_services(&doc), ["ec2.amazonaws.com"]);
        assert!(trusted_services(&json!({})).is_empty());
    }
}
