//! THE mapping from the stack file to each binary's flags, for deploying and for deleting.

use crate::stack::Stack;

use super::Step;

/// Whether the step deploys or removes what it deployed (`--delete`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Deploy,
    Delete,
}

/// THE mapping from the stack file to each binary's flags, for deploying and for deleting.
///
/// Values that another step produces are not here: they travel as `ECSKIT_*` variables (the
/// image URI and role ARNs into taskdef-register, the task definition ARN into service-run).
/// `--output` and `--dry-run` are added by the runner.
pub fn step_args(step: Step, s: &Stack, mode: Mode) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    fn kv(a: &mut Vec<String>, flag: &str, value: &str) {
        a.push(flag.to_string());
        a.push(value.to_string());
    }
    match step {
        // The service's before task: its task definition is the one taskdef-register just
        // registered (ECSKIT_TASK_DEFINITION_ARN), its cluster and network the service's.
        // Nothing to delete: destroy leaves it out.
        Step::TaskRun => {
            if let (Mode::Deploy, Some(b)) = (mode, &s.before) {
                kv(&mut a, "--cluster", &s.cluster);
                let command = b.command.clone().unwrap_or_default();
                // The attached `--flag=value` form: a value that starts with `-` is never read
                // as another flag.
                a.push(format!(
                    "--command={}",
                    serde_json::to_string(&command).unwrap_or_default()
                ));
                if let Some(c) = &b.container {
                    a.push(format!("--container={c}"));
                }
                for (k, v) in &b.env {
                    a.push(format!("--env={k}={v}"));
                }
                if s.service_file.is_none() {
                    placement_args(&mut a, s);
                }
                network_args(&mut a, s);
                // A migration may sit in RUNNING for long: the before task's `timeout` is the
                // one limit, so no-progress gets the same (task-run's default is 10 minutes).
                let limit = format!("{}s", b.timeout.unwrap_or(30 * 60));
                kv(&mut a, "--timeout", &limit);
                kv(&mut a, "--no-progress-timeout", &limit);
            }
        }
        Step::ImagePush => {
            // image-push SOURCE --repository NAME [--tag T]... [--pull]; the registry endpoint
            // comes from ECSKIT_REGISTRY_ENDPOINT when the environment sets it (local stack).
            kv(&mut a, "--repository", &s.repository);
            match mode {
                Mode::Deploy => {
                    for t in &s.tags {
                        kv(&mut a, "--tag", t);
                    }
                    a.insert(0, s.image_source.clone());
                    if s.image_pull {
                        a.push("--pull".into());
                    }
                }
                // --force: the repository still holds the images this stack pushed.
                Mode::Delete => a.extend(["--delete".into(), "--force".into()]),
            }
        }
        Step::RoleCreate => {
            kv(&mut a, "--name", &s.role_base);
            kv(&mut a, "--bucket", &s.bucket);
            kv(&mut a, "--prefix", &s.prefix);
            kv(&mut a, "--access", &s.access);
            if let Some(n) = &s.task_role_name {
                kv(&mut a, "--task-role-name", n);
            }
            if let Some(n) = &s.execution_role_name {
                kv(&mut a, "--execution-role-name", n);
            }
            if mode == Mode::Delete {
                a.push("--delete".into());
            }
        }
        Step::InstanceProfile => {
            let p = s.instance_profile.clone().unwrap_or_default();
            if let Some(n) = &p.role_name {
                kv(&mut a, "--role-name", n);
            }
            if let Some(n) = &p.profile_name {
                kv(&mut a, "--profile-name", n);
            }
            match mode {
                Mode::Deploy => {
                    if let Some(target) = &s.instance_s3_read {
                        kv(&mut a, "--s3-read", target);
                    }
                    if p.cloudwatch_logs {
                        a.push("--cloudwatch-logs".into());
                    }
                }
                Mode::Delete => a.push("--delete".into()),
            }
        }
        // The cluster's EC2 capacity, in the instance profile's name; removed with --delete
        // (after the services that ran on it, before the profile).
        Step::CapacityCreate => {
            if let Some(c) = &s.capacity {
                let profile = s
                    .instance_profile
                    .as_ref()
                    .and_then(|p| p.profile_name.as_deref());
                a = crate::stack::capacity_args(
                    c,
                    &s.app,
                    &s.cluster,
                    profile,
                    mode == Mode::Delete,
                );
            }
        }
        Step::ConfigUpload => {
            kv(&mut a, "--bucket", &s.bucket);
            kv(&mut a, "--prefix", &s.prefix);
            match mode {
                Mode::Deploy => {
                    if s.config_delete_stale {
                        a.push("--delete".into());
                    }
                    a.extend(s.config_files.iter().map(|p| p.display().to_string()));
                }
                // --delete-bucket removes the bucket (tagged managed-by=ecskit) and its objects.
                Mode::Delete => a.push("--delete-bucket".into()),
            }
        }
        Step::TaskdefRegister => match mode {
            // --image, --task-role-arn and --execution-role-arn read ECSKIT_IMAGE_URI,
            // ECSKIT_TASK_ROLE_ARN and ECSKIT_EXECUTION_ROLE_ARN from the environment.
            Mode::Deploy => {
                kv(&mut a, "--file", &s.taskdef_file.display().to_string());
                kv(&mut a, "--family", &s.family);
                if s.allow_plaintext_secrets {
                    a.push("--allow-plaintext-secrets".into());
                }
            }
            // Deregisters every revision of the family (no --keep).
            Mode::Delete => {
                kv(&mut a, "--family", &s.family);
                a.push("--delete".into());
            }
        },
        Step::ServiceRun => {
            // --task-definition reads ECSKIT_TASK_DEFINITION_ARN.
            kv(&mut a, "--cluster", &s.cluster);
            kv(&mut a, "--service", &s.service);
            match mode {
                Mode::Deploy => {
                    // With a service file, the count and the launch type (or capacity provider
                    // strategy) are the file's: the stack's defaults would override them.
                    match &s.service_file {
                        Some(f) => kv(&mut a, "--service-file", &f.display().to_string()),
                        None => {
                            kv(&mut a, "--desired-count", &s.count.to_string());
                            placement_args(&mut a, s);
                        }
                    }
                    network_args(&mut a, s);
                    a.extend(s.rollout.args());
                    if !s.wait {
                        a.push("--no-wait".into());
                    }
                    if let Some(t) = s.timeout {
                        kv(&mut a, "--timeout", &t.to_string());
                    }
                }
                Mode::Delete => a.extend(["--delete".into(), "--delete-cluster".into()]),
            }
        }
    }
    a
}

/// Where the service (and its before task) runs: on the stack's capacity provider, or with
/// its launch type.
fn placement_args(a: &mut Vec<String>, s: &Stack) {
    match &s.capacity_strategy {
        Some(strategy) => a.extend(["--capacity-provider-strategy".into(), strategy.clone()]),
        None => a.extend(["--launch-type".into(), s.launch_type.clone()]),
    }
}

/// The service's network, the same flags for service-run and its before task (task-run): the
/// one-off task runs where the service will.
fn network_args(a: &mut Vec<String>, s: &Stack) {
    for subnet in &s.network.subnets {
        a.extend(["--subnets".into(), subnet.clone()]);
    }
    for sg in &s.network.security_groups {
        a.extend(["--security-groups".into(), sg.clone()]);
    }
    // Passed both ways: the binaries' default depends on whether they use the default VPC, and
    // the stack file's `false` must win over it.
    if let Some(public) = s.network.assign_public_ip {
        a.push(format!("--assign-public-ip={public}"));
    }
}

/// The order of a service's steps in a deploy: the chain's, with the before task (task-run)
/// between the registered task definition and the service it must run ahead of.
pub const ORDER: [Step; 8] = [
    Step::ImagePush,
    Step::RoleCreate,
    Step::InstanceProfile,
    Step::CapacityCreate,
    Step::ConfigUpload,
    Step::TaskdefRegister,
    Step::TaskRun,
    Step::ServiceRun,
];

/// The steps a stack has, in [`ORDER`]: instance-profile only when configured, config-upload
/// only when there are config files, task-run only with a `[before]` task, capacity-create only
/// with `[capacity]`.
pub fn stack_steps(s: &Stack) -> Vec<Step> {
    ORDER
        .into_iter()
        .filter(|step| match step {
            Step::InstanceProfile => s.instance_profile.is_some(),
            Step::CapacityCreate => s.capacity.is_some(),
            Step::ImagePush => s.push_image,
            Step::ConfigUpload => !s.config_files.is_empty(),
            Step::TaskRun => s.before.is_some(),
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::stack;

    #[test]
    fn args_map_the_stack_file_to_flags() {
        let s = stack();
        assert_eq!(
            step_args(Step::ImagePush, &s, Mode::Deploy),
            [
                "web:1",
                "--repository",
                "web",
                "--tag",
                "1",
                "--tag",
                "latest"
            ]
        );
        assert_eq!(
            step_args(Step::RoleCreate, &s, Mode::Deploy),
            [
                "--name",
                "web",
                "--bucket",
                "web-config",
                "--prefix",
                "web",
                "--access",
                "read"
            ]
        );
        let cfg = step_args(Step::ConfigUpload, &s, Mode::Deploy);
        assert_eq!(&cfg[..4], ["--bucket", "web-config", "--prefix", "web"]);
        assert!(cfg[4].ends_with("a.properties"), "{cfg:?}");
        assert_eq!(
            step_args(Step::ServiceRun, &s, Mode::Deploy),
            [
                "--cluster",
                "web",
                "--service",
                "web",
                "--desired-count",
                "1",
                "--launch-type",
                "FARGATE",
                "--subnets",
                "subnet-a",
                "--subnets",
                "subnet-b",
                "--assign-public-ip=true",
                "--no-wait"
            ]
        );
    }

    #[test]
    fn delete_args_name_the_same_resources() {
        let s = stack();
        // This stack has no [capacity] (stack/capacity.rs tests its delete flags).
        for step in Step::CHAIN
            .into_iter()
            .filter(|s| *s != Step::CapacityCreate)
        {
            let a = step_args(step, &s, Mode::Delete);
            assert!(
                a.iter().any(|f| f.starts_with("--delete")),
                "{}: {a:?}",
                step.binary()
            );
        }
        assert_eq!(
            step_args(Step::TaskdefRegister, &s, Mode::Delete),
            ["--family", "web", "--delete"]
        );
        assert_eq!(
            step_args(Step::ServiceRun, &s, Mode::Delete),
            [
                "--cluster",
                "web",
                "--service",
                "web",
                "--delete",
                "--delete-cluster"
            ]
        );
    }

    #[test]
    fn steps_follow_the_stack_file() {
        let mut s = stack();
        assert_eq!(
            stack_steps(&s),
            [
                Step::ImagePush,
                Step::RoleCreate,
                Step::ConfigUpload,
                Step::TaskdefRegister,
                Step::ServiceRun
            ]
        );
        s.config_files.clear();
        s.instance_profile = Some(Default::default());
        assert!(stack_steps(&s).contains(&Step::InstanceProfile));
        assert!(!stack_steps(&s).contains(&Step::ConfigUpload));
    }

    #[test]
    fn the_before_task_runs_in_the_services_cluster_and_network() {
        let mut s = stack();
        assert!(step_args(Step::TaskRun, &s, Mode::Deploy).is_empty());
        s.before = Some(crate::stack::Before {
            command: Some(vec!["bin/migrate".into(), "--to".into(), "it's 7".into()]),
            container: Some("app".into()),
            env: [("MODE".to_string(), "once".to_string())].into(),
            timeout: Some(600),
        });
        assert_eq!(
            step_args(Step::TaskRun, &s, Mode::Deploy),
            [
                "--cluster",
                "web",
                r#"--command=["bin/migrate","--to","it's 7"]"#,
                "--container=app",
                "--env=MODE=once",
                "--launch-type",
                "FARGATE",
                "--subnets",
                "subnet-a",
                "--subnets",
                "subnet-b",
                "--assign-public-ip=true",
                "--timeout",
                "600s",
                "--no-progress-timeout",
                "600s"
            ]
        );
        assert!(step_args(Step::TaskRun, &s, Mode::Delete).is_empty());
        assert_eq!(
            stack_steps(&s)[3..],
            [Step::TaskdefRegister, Step::TaskRun, Step::ServiceRun]
        );
    }
}
