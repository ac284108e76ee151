//! The launch template: the ECS-optimized AMI, the instance profile, the user data that joins
//! the cluster, IMDSv2, the security groups and an encrypted root volume. A change is a new
//! version with every setting (never an edit of one, never a partial version), so the group
//! can be pointed at it and an instance refresh can roll to it.

use aws_sdk_ec2::types::{
    Filter, InstanceType, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    RequestLaunchTemplateData, ResourceType, Tag, TagSpecification, VolumeType,
};
use base64::Engine;

use crate::aws::{Ctx, MANAGED_BY};
use crate::error::{AwsContext, Error, Result};
use ecskit_contract::CLUSTER_TAG;

/// The root device of the ECS-optimized Amazon Linux 2023 AMIs.
const ROOT_DEVICE: &str = "/dev/xvda";

/// The instances' CPU architecture, which picks the AMI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

/// The architecture of an instance type: Graviton families have a `g` right after their
/// generation digit (`t4g`, `m7g`, `c6gn`, `im4gn`, `g5g`), and `a1` is the first Graviton.
pub fn architecture(instance_type: &str) -> Arch {
    let family = instance_type.split('.').next().unwrap_or_default();
    let after_letters = family.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let after_digits = after_letters.trim_start_matches(|c: char| c.is_ascii_digit());
    let had_digits = after_digits.len() < after_letters.len();
    if family == "a1" || (had_digits && after_digits.starts_with('g')) {
        Arch::Arm64
    } else {
        Arch::X86_64
    }
}

/// The one architecture of all the instance types (an AMI runs on one), or what is wrong.
pub fn architecture_of(types: &[String]) -> std::result::Result<Arch, String> {
    let mut found: Option<Arch> = None;
    for t in types {
        crate::validate::instance_type(t)?;
        let a = architecture(t);
        if found.is_some_and(|f| f != a) {
            return Err(format!(
                "{} mix x86_64 and arm64: one group's AMI has one architecture",
                types.join(",")
            ));
        }
        found = Some(a);
    }
    found.ok_or_else(|| "no instance type given".to_string())
}

/// The public SSM parameter that names the newest ECS-optimized Amazon Linux 2023 AMI.
pub fn ami_parameter(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
        Arch::Arm64 => {
            "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
        }
    }
}

/// The AMI the parameter names now.
pub async fn resolve_ami(ctx: &Ctx, arch: Arch) -> Result<String> {
    let name = ami_parameter(arch);
    let out = ctx
        .ssm()
        .get_parameter()
        .name(name)
        .send()
        .await
        .context(format!(
            "reading the ECS-optimized AMI from SSM parameter {name}"
        ))?;
    let value = out.parameter.and_then(|p| p.value).unwrap_or_default();
    // The answer is another service's: it becomes the template's image only as an AMI id.
    crate::service_run::service_file::ami_id(&value).map_err(|e| {
        Error::aws(
            format!("reading the ECS-optimized AMI from SSM parameter {name}"),
            format!("the parameter does not hold an AMI id: {e}"),
        )
    })?;
    Ok(value)
}

/// The instances' user data: the agent's config joins the cluster, lets tasks use their task
/// role (in bridge and host network modes too) and lets the awslogs driver use the execution
/// role. awsvpc tasks are kept from the instance metadata service (the hop limit stops bridge
/// tasks only): a task gets its own role, never the instance's. The logging drivers are the
/// agent's default ones plus awslogs. The cluster name is a checked ECS name: it cannot add a
/// line of its own.
pub fn user_data(cluster: &str) -> String {
    format!(
        "#!/bin/bash\n\
         cat >> /etc/ecs/ecs.config <<'EOF'\n\
         ECS_CLUSTER={cluster}\n\
         ECS_ENABLE_TASK_IAM_ROLE=true\n\
         ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n\
         ECS_AVAILABLE_LOGGING_DRIVERS=[\"json-file\",\"none\",\"awslogs\"]\n\
         ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE=true\n\
         ECS_AWSVPC_BLOCK_IMDS=true\n\
         EOF\n"
    )
}

/// A template version's settings, as this step writes them and reads them back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub image_id: String,
    pub instance_type: String,
    pub instance_profile: String,
    pub user_data: String,
    /// Sorted.
    pub security_groups: Vec<String>,
    pub root_volume_gib: i32,
    pub imdsv2: bool,
    pub encrypted: bool,
}

/// The template as it is: its id, tags and newest version's settings.
pub struct Current {
    pub id: String,
    pub managed: bool,
    /// The cluster it was made for (its `ecskit:cluster` tag).
    pub cluster: Option<String>,
    pub latest: i64,
    pub spec: Option<Spec>,
}

/// What converging left: the template, the version the group must launch, and the image a
/// new version replaced.
pub struct Converged {
    pub id: String,
    pub version: i64,
    pub replaced_image: Option<String>,
}

pub async fn read(ctx: &Ctx, name: &str) -> Result<Option<Current>> {
    let ec2 = ctx.ec2();
    // A filter, not LaunchTemplateNames: a missing name is then an empty answer, not an error.
    let out = ec2
        .describe_launch_templates()
        .filters(
            Filter::builder()
                .name("launch-template-name")
                .values(name)
                .build(),
        )
        .send()
        .await
        .context(format!("reading launch template {name}"))?;
    let Some(t) = out
        .launch_templates()
        .iter()
        .find(|t| t.launch_template_name() == Some(name))
    else {
        return Ok(None);
    };
    let id = t.launch_template_id().unwrap_or_default().to_string();
    let tags = || {
        t.tags()
            .iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
    };
    let managed = crate::aws::is_managed(tags());
    let cluster = super::tagged_cluster(tags());
    let latest = t.latest_version_number().unwrap_or(1);
    let versions = ec2
        .describe_launch_template_versions()
        .launch_template_id(&id)
        .versions(latest.to_string())
        .send()
        .await
        .context(format!("reading launch template {name}'s version {latest}"))?;
    let spec = versions
        .launch_template_versions()
        .first()
        .and_then(|v| v.launch_template_data())
        .map(spec_of);
    Ok(Some(Current {
        id,
        managed,
        cluster,
        latest,
        spec,
    }))
}

fn spec_of(d: &aws_sdk_ec2::types::ResponseLaunchTemplateData) -> Spec {
    let root = d
        .block_device_mappings()
        .iter()
        .find(|b| b.device_name() == Some(ROOT_DEVICE))
        .and_then(|b| b.ebs());
    let mut security_groups = d.security_group_ids().to_vec();
    security_groups.sort();
    Spec {
        image_id: d.image_id().unwrap_or_default().to_string(),
        instance_type: d
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        instance_profile: d
            .iam_instance_profile()
            .and_then(|p| p.name())
            .unwrap_or_default()
            .to_string(),
        user_data: d
            .user_data()
            .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok())
            .and_then(|u| String::from_utf8(u).ok())
            .unwrap_or_default(),
        security_groups,
        root_volume_gib: root.and_then(|e| e.volume_size()).unwrap_or_default(),
        imdsv2: d
            .metadata_options()
            .and_then(|m| m.http_tokens())
            .is_some_and(|t| *t == LaunchTemplateHttpTokensState::Required),
        encrypted: root.and_then(|e| e.encrypted()) == Some(true),
    }
}

fn data(spec: &Spec) -> RequestLaunchTemplateData {
    RequestLaunchTemplateData::builder()
        .image_id(&spec.image_id)
        .instance_type(InstanceType::from(spec.instance_type.as_str()))
        .iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .name(&spec.instance_profile)
                .build(),
        )
        .user_data(base64::engine::general_purpose::STANDARD.encode(&spec.user_data))
        // IMDSv2 only, one hop: the agent (host network) reads it, a task's container does not
        // get the instance role's credentials from it.
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(if spec.imdsv2 {
                    LaunchTemplateHttpTokensState::Required
                } else {
                    LaunchTemplateHttpTokensState::Optional
                })
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .http_put_response_hop_limit(1)
                .build(),
        )
        .set_security_group_ids(Some(spec.security_groups.clone()))
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(ROOT_DEVICE)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .encrypted(spec.encrypted)
                        .volume_size(spec.root_volume_gib)
                        .volume_type(VolumeType::Gp3)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .build()
}

/// The template as `want` says: created, or a new version when its newest differs.
pub async fn converge(
    ctx: &Ctx,
    name: &str,
    cluster: &str,
    now: Option<Current>,
    want: &Spec,
) -> Result<Converged> {
    let ec2 = ctx.ec2();
    let Some(now) = now else {
        let mut id = format!("(launch template {name})");
        if let Some(out) = ctx
            .mutate(
                format!(
                    "create launch template {name} ({}, {}, {})",
                    want.image_id, want.instance_type, want.instance_profile
                ),
                ec2.create_launch_template()
                    .launch_template_name(name)
                    .version_description("ecskit")
                    .launch_template_data(data(want))
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::LaunchTemplate)
                            .tags(Tag::builder().key(MANAGED_BY.0).value(MANAGED_BY.1).build())
                            .tags(Tag::builder().key(CLUSTER_TAG).value(cluster).build())
                            .build(),
                    )
                    .send(),
            )
            .await?
        {
            id = out
                .launch_template()
                .and_then(|t| t.launch_template_id())
                .unwrap_or_default()
                .to_string();
        }
        return Ok(Converged {
            id,
            version: 1,
            replaced_image: None,
        });
    };
    if now.spec.as_ref() == Some(want) {
        return Ok(Converged {
            id: now.id,
            version: now.latest,
            replaced_image: None,
        });
    }
    let changes = differences(now.spec.as_ref(), want);
    let mut version = now.latest + 1;
    if let Some(out) = ctx
        .mutate(
            format!("create launch template {name} version {version} ({changes})"),
            ec2.create_launch_template_version()
                .launch_template_id(&now.id)
                .version_description("ecskit")
                .launch_template_data(data(want))
                .send(),
        )
        .await?
    {
        version = out
            .launch_template_version()
            .and_then(|v| v.version_number())
            .unwrap_or(version);
    }
    Ok(Converged {
        id: now.id,
        version,
        replaced_image: now.spec.map(|s| s.image_id),
    })
}

/// What a new version changes, in words: `image ami-1 -> ami-2, instance type t3.small -> t3.medium`.
fn differences(now: Option<&Spec>, want: &Spec) -> String {
    let Some(now) = now else {
        return "the newest version could not be read".into();
    };
    let mut d = Vec::new();
    let mut field = |what: &str, a: String, b: String| changed(&mut d, what, a, b);
    field("image", now.image_id.clone(), want.image_id.clone());
    field(
        "instance type",
        now.instance_type.clone(),
        want.instance_type.clone(),
    );
    field(
        "instance profile",
        now.instance_profile.clone(),
        want.instance_profile.clone(),
    );
    field(
        "security groups",
        now.security_groups.join(","),
        want.security_groups.join(","),
    );
    field(
        "root volume GiB",
        now.root_volume_gib.to_string(),
        want.root_volume_gib.to_string(),
    );
    if now.user_data != want.user_data {
        d.push("user data".into());
    }
    if now.imdsv2 != want.imdsv2 {
        d.push("IMDSv2 required".into());
    }
    if now.encrypted != want.encrypted {
        d.push("encrypted root volume".into());
    }
    d.join(", ")
}

/// `what a -> b` when a setting changes: how every difference of this step is said.
pub(super) fn changed(d: &mut Vec<String>, what: &str, a: String, b: String) {
    if a != b {
        d.push(format!("{what} {a} -> {b}"));
    }
}

/// Tags a template an earlier ecskit made without the cluster tag for `cluster`.
pub async fn tag_cluster(ctx: &Ctx, name: &str, id: &str, cluster: &str) -> Result<()> {
    ctx.mutate(
        format!("tag launch template {name} {CLUSTER_TAG}={cluster} (made before ecskit tagged the cluster)"),
        ctx.ec2()
            .create_tags()
            .resources(id)
            .tags(Tag::builder().key(CLUSTER_TAG).value(cluster).build())
            .send(),
    )
    .await?;
    Ok(())
}

/// A pinned `--ami` as EC2 describes it: it must exist, run on the instance types'
/// architecture and boot from EBS (the template's encrypted gp3 root volume is an EBS mapping).
/// It must also be available and Amazon's (`ImageOwnerAlias` amazon), this account's, or of an
/// owner the user allowed (`--allow-ami-owner`): anyone can make an AMI public, and its
/// instances would run with the instance profile's role inside the cluster.
/// Read before any change; each mismatch is bad input.
pub async fn check_image(
    ctx: &Ctx,
    image: &str,
    arch: Arch,
    account: &str,
    allowed: &[String],
) -> Result<()> {
    let missing = || {
        Error::input(format!(
            "--ami {image}: no such AMI in this region (or not shared with this account)"
        ))
        .hint("check the AMI id and the region, or leave --ami out to use the ECS-optimized AMI")
    };
    let out = match ctx.ec2().describe_images().image_ids(image).send().await {
        Ok(out) => out,
        Err(e) => {
            use aws_sdk_ec2::error::ProvideErrorMetadata;
            let code = e
                .as_service_error()
                .and_then(|s| s.code())
                .unwrap_or_default();
            if code.starts_with("InvalidAMIID") {
                return Err(missing());
            }
            return Err(e).context(format!("reading AMI {image}"));
        }
    };
    let Some(found) = out.images().iter().find(|i| i.image_id() == Some(image)) else {
        return Err(missing());
    };
    let owner = found.owner_id().unwrap_or_default();
    let alias = found.image_owner_alias().unwrap_or_default();
    if alias != "amazon" && owner != account && !allowed.iter().any(|a| a == owner) {
        return Err(Error::input(format!(
            "--ami {image}: owned by account {owner}{}, which is neither Amazon nor this account ({account})",
            if alias.is_empty() {
                String::new()
            } else {
                format!(" ({alias})")
            }
        ))
        .hint(format!(
            "pin an Amazon or own AMI, or trust its owner with --allow-ami-owner {owner} (for a stack deploy: ECSKIT_ALLOW_AMI_OWNER={owner} in the job's environment)"
        )));
    }
    let state = found.state().map(|s| s.as_str()).unwrap_or_default();
    if state != "available" {
        return Err(Error::input(format!(
            "--ami {image}: its state is {state}, not available"
        ))
        .hint("pin an available AMI, or leave --ami out to use the ECS-optimized AMI"));
    }
    let want = match arch {
        Arch::X86_64 => "x86_64",
        Arch::Arm64 => "arm64",
    };
    let has = found.architecture().map(|a| a.as_str()).unwrap_or_default();
    if has != want {
        return Err(Error::input(format!(
            "--ami {image}: the AMI is for {has}, the instance types are {want}"
        ))
        .hint(format!(
            "pin an {want} AMI, or pick instance types of the AMI's architecture"
        )));
    }
    let root = found
        .root_device_type()
        .map(|r| r.as_str())
        .unwrap_or_default();
    if root != "ebs" {
        return Err(Error::input(format!(
            "--ami {image}: its root device is {root}, not ebs: the template's encrypted gp3 root volume needs an EBS-backed AMI"
        ))
        .hint("pin an EBS-backed AMI (the ECS-optimized ones are)"));
    }
    Ok(())
}

pub async fn delete(ctx: &Ctx, name: &str, id: &str) -> Result<()> {
    ctx.mutate(
        format!("delete launch template {name}"),
        ctx.ec2()
            .delete_launch_template()
            .launch_template_id(id)
            .send(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graviton_families_are_arm64() {
        for t in [
            "t4g.small",
            "m7g.large",
            "c6gn.xlarge",
            "im4gn.large",
            "g5g.xlarge",
            "a1.medium",
            "x2gd.large",
        ] {
            assert_eq!(architecture(t), Arch::Arm64, "{t}");
        }
        for t in [
            "t3.small",
            "g4dn.xlarge",
            "m7a.large",
            "c7i.large",
            "inf2.xlarge",
            "x2idn.large",
        ] {
            assert_eq!(architecture(t), Arch::X86_64, "{t}");
        }
    }

    #[test]
    fn user_data_joins_the_cluster_with_task_roles_and_awslogs() {
        assert_eq!(
            user_data("acme"),
            "#!/bin/bash\ncat >> /etc/ecs/ecs.config <<'EOF'\nECS_CLUSTER=acme\n\
             ECS_ENABLE_TASK_IAM_ROLE=true\nECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true\n\
             ECS_AVAILABLE_LOGGING_DRIVERS=[\"json-file\",\"none\",\"awslogs\"]\n\
             ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE=true\nECS_AWSVPC_BLOCK_IMDS=true\nEOF\n"
        );
    }
}
