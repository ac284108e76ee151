//! The stack's EC2 capacity (`[capacity]`): the section as written, its check, and the
//! capacity provider strategy the services then run with.

use ecskit_contract::validate;
use serde::Deserialize;

/// capacity-create's settings: one launch template, Auto Scaling group and capacity provider
/// for the cluster of the stack's services.
#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Capacity {
    /// The capacity provider, group and template (default: `APP-ec2`).
    pub name: Option<String>,
    /// One architecture; several (or `spot`) make a mixed-instances group.
    #[serde(default)]
    pub instance_types: Vec<String>,
    #[serde(default)]
    pub spot: bool,
    /// Pin the AMI (default: the ECS-optimized Amazon Linux 2023 AMI, read on every deploy).
    pub ami: Option<String>,
    pub min_size: Option<u32>,
    pub max_size: Option<u32>,
    pub desired_capacity: Option<u32>,
    pub target_capacity: Option<u32>,
    pub root_volume_size: Option<u32>,
    /// The group's subnets and the instances' security groups (default: the default VPC's).
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// ECS Managed Instances: AWS launches the instances (no template or group of ours).
    #[serde(default)]
    pub managed: bool,
    /// With `managed`: the infrastructure role (default: capacity-create makes `NAME-infrastructure`).
    pub infrastructure_role_arn: Option<String>,
}

impl Capacity {
    /// The provider's name: the section's, or `APP-ec2`.
    pub fn provider_name(&self, app: &str) -> String {
        self.name.clone().unwrap_or_else(|| format!("{app}-ec2"))
    }
}

/// The section's problems that need no call, found by the stack check before the deploy's first
/// change (the same checks as capacity-create's own, from the contract crate). What needs a call
/// (an AMI that does not exist, a name taken by another cluster's capacity) capacity-create finds
/// in its own run, before its own first change, but after the deploy's earlier steps ran.
pub(super) fn check_capacity(c: &Capacity, app: &str, problems: &mut Vec<String>) {
    let name = c.provider_name(app);
    if let Err(e) = validate::capacity_provider_name(&name) {
        let from = if c.name.is_none() {
            " (the default, from app.name: set capacity.name)"
        } else {
            ""
        };
        problems.push(format!("capacity.name: {e}{from}"));
    }
    for (i, t) in c.instance_types.iter().enumerate() {
        if let Err(e) = validate::instance_type(t) {
            problems.push(format!("capacity.instance_types[{i}]: {e}"));
        }
    }
    if let Some(ami) = &c.ami
        && let Err(e) = validate::ami_id(ami)
    {
        problems.push(format!("capacity.ami: {e}"));
    }
    for (i, s) in c.subnets.iter().enumerate() {
        if let Err(e) = validate::subnet_id(s) {
            problems.push(format!("capacity.subnets[{i}]: {e}"));
        }
    }
    for (i, s) in c.security_groups.iter().enumerate() {
        if let Err(e) = validate::security_group_id(s) {
            problems.push(format!("capacity.security_groups[{i}]: {e}"));
        }
    }
    if let Some(arn) = &c.infrastructure_role_arn
        && let Err(e) = validate::role_arn(arn)
    {
        problems.push(format!("capacity.infrastructure_role_arn: {e}"));
    }
    if c.managed
        && let Err(e) = validate::managed_capacity_name(&name, c.infrastructure_role_arn.is_none())
    {
        problems.push(format!("capacity.name: {e}"));
    }
    if c.managed {
        // AWS picks the instances and their AMI: these keys would be silently unused.
        for (key, set) in [
            ("instance_types", !c.instance_types.is_empty()),
            ("ami", c.ami.is_some()),
            ("min_size", c.min_size.is_some()),
            ("max_size", c.max_size.is_some()),
            ("desired_capacity", c.desired_capacity.is_some()),
            ("target_capacity", c.target_capacity.is_some()),
        ] {
            if set {
                problems.push(format!(
                    "capacity.{key}: not with capacity.managed (ECS Managed Instances picks the instances)"
                ));
            }
        }
    } else if c.infrastructure_role_arn.is_some() {
        problems.push("capacity.infrastructure_role_arn: only with capacity.managed = true".into());
    }
    // capacity-create's own defaults stand in for what the section leaves out, so the stack is
    // refused here, before the deploy's first change, for what the step would refuse mid-deploy.
    if !c.managed {
        let sizes = validate::CapacitySizes {
            min: c.min_size.map_or(0, i64::from),
            max: c.max_size.map_or(2, i64::from),
            desired: c.desired_capacity.map(i64::from),
            target_capacity: c.target_capacity.map_or(100, i64::from),
            root_volume_gib: c.root_volume_size.map_or(30, i64::from),
        };
        problems.extend(sizes.problems(|k| format!("capacity.{k}")));
    } else if let Some(gib) = c.root_volume_size
        && !(30..=16_384).contains(&gib)
    {
        problems.push(format!(
            "capacity.root_volume_size {gib}: must be 30 (the AMI's snapshot) to 16384 GiB"
        ));
    }
}

/// capacity-create's flags for the section: the cluster and instance profile are the stack's.
/// `--delete` needs only what names the resources (and takes the cluster with it).
pub fn args(
    c: &Capacity,
    app: &str,
    cluster: &str,
    profile: Option<&str>,
    delete: bool,
) -> Vec<String> {
    let mut a = vec![
        "--cluster".to_string(),
        cluster.to_string(),
        "--name".to_string(),
        c.provider_name(app),
    ];
    if c.managed {
        a.push("--managed".into());
        if let Some(arn) = &c.infrastructure_role_arn {
            a.push(format!("--infrastructure-role-arn={arn}"));
        }
    }
    if delete {
        // One [capacity] serves the one cluster of the stack's services, and its removal comes
        // after theirs: the cluster goes with it (when ecskit made it and nothing else is in it).
        a.extend(["--delete".into(), "--delete-cluster".into()]);
        return a;
    }
    if let Some(p) = profile {
        a.extend(["--instance-profile".into(), p.to_string()]);
    }
    if !c.instance_types.is_empty() {
        a.push(format!("--instance-type={}", c.instance_types.join(",")));
    }
    if c.spot {
        a.push("--spot".into());
    }
    for (flag, v) in [
        ("--min-size", c.min_size),
        ("--max-size", c.max_size),
        ("--desired-capacity", c.desired_capacity),
        ("--target-capacity", c.target_capacity),
        ("--root-volume-size", c.root_volume_size),
    ] {
        if let Some(v) = v {
            a.push(format!("{flag}={v}"));
        }
    }
    if let Some(ami) = &c.ami {
        a.push(format!("--ami={ami}"));
    }
    if !c.subnets.is_empty() {
        a.push(format!("--subnets={}", c.subnets.join(",")));
    }
    if !c.security_groups.is_empty() {
        a.push(format!("--security-groups={}", c.security_groups.join(",")));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::tests::{MANY, dir};

    #[test]
    fn a_capacity_section_places_the_services_on_its_provider() {
        let d = dir();
        let text = format!("{MANY}\n[capacity]\ninstance_types = [\"t3.medium\"]\nmax_size = 4\n");
        let s = parse(&text, &d).unwrap_or_else(|p| panic!("{}", p.join("\n")));
        for svc in &s.services {
            let c = svc.capacity.as_ref().unwrap();
            assert_eq!(c.provider_name(&svc.app), format!("{}-ec2", svc.app));
            assert_eq!(
                svc.capacity_strategy.as_deref(),
                Some(format!("{}-ec2:1", svc.app).as_str())
            );
        }
    }

    #[test]
    fn a_capacity_sections_problems_are_said() {
        let d = dir();
        let text = format!(
            "{MANY}\n[capacity]\nname = \"no spaces\"\ninstance_types = [\"t3\"]\nmin_size = 3\nmax_size = 2\nmax_sise = 1\n"
        );
        let joined = parse(&text, &d).unwrap_err().join("\n");
        assert!(joined.contains("max_sise"), "{joined}");
        let text = format!(
            "{MANY}\n[capacity]\nname = \"no spaces\"\ninstance_types = [\"t3\"]\nmin_size = 3\nmax_size = 2\n"
        );
        let joined = parse(&text, &d).unwrap_err().join("\n");
        for want in [
            "capacity.name: ",
            "capacity.instance_types[0]: 't3'",
            "capacity.min_size 3 is more than capacity.max_size 2",
        ] {
            assert!(joined.contains(want), "{want}:\n{joined}");
        }
        // The default name comes from app.name: one ECS would refuse says where to fix it.
        let text =
            format!("{MANY}\n[capacity]\n").replacen("name = \"shop\"", "name = \"ecs-shop\"", 1);
        let joined = parse(&text, &d).unwrap_err().join("\n");
        assert!(
            joined.contains("capacity.name: 'ecs-shop-ec2' starts with aws, ecs or fargate, which ECS keeps for its own capacity providers (the default, from app.name: set capacity.name)"),
            "{joined}"
        );
    }

    #[test]
    fn managed_capacity_takes_no_instance_settings_and_deletes_by_name() {
        let d = dir();
        let text = format!(
            "{MANY}\n[capacity]\nmanaged = true\ninstance_types = [\"t3.small\"]\nmax_size = 2\n"
        );
        let joined = parse(&text, &d).unwrap_err().join("\n");
        for key in ["capacity.instance_types", "capacity.max_size"] {
            assert!(
                joined.contains(&format!("{key}: not with capacity.managed")),
                "{joined}"
            );
        }
        let text = format!("{MANY}\n[capacity]\nmanaged = true\nspot = true\n");
        let s = parse(&text, &d).unwrap_or_else(|p| panic!("{}", p.join("\n")));
        let c = s.services[0].capacity.as_ref().unwrap();
        assert_eq!(
            super::args(c, "shop", "shop", Some("p"), false),
            [
                "--cluster",
                "shop",
                "--name",
                "shop-ec2",
                "--managed",
                "--instance-profile",
                "p",
                "--spot"
            ]
        );
        assert_eq!(
            super::args(c, "shop", "shop", Some("p"), true),
            [
                "--cluster",
                "shop",
                "--name",
                "shop-ec2",
                "--managed",
                "--delete",
                "--delete-cluster"
            ]
        );
    }

    /// The AMI owner check is not the stack file's to switch off (the file may come from a pull
    /// request, with its `ami`): the opt-in is the CI job's `ECSKIT_ALLOW_AMI_OWNER`, which
    /// capacity-create inherits. A stack file with the key is refused naming it.
    #[test]
    fn a_stack_file_cannot_allow_an_ami_owner() {
        let d = dir();
        let text = format!(
            "{MANY}\n[capacity]\nami = \"ami-0123456789abcdef0\"\nallow_ami_owners = [\"111122223333\"]\n"
        );
        let joined = parse(&text, &d).unwrap_err().join("\n");
        assert!(
            joined.contains("unknown key `capacity.allow_ami_owners`"),
            "{joined}"
        );
    }
}
