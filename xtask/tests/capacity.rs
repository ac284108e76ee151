//! A stack with EC2 capacity (`[capacity]`, capacity-create) against the local stack, with the
//! real binaries: capacity-create runs after instance-profile and before service-run, the
//! service's capacity provider strategy names the stack's provider, a container instance of
//! the group registered the way the ECS agent registers takes the service's task, a second
//! deploy changes nothing, and destroy removes the capacity after the service, then the
//! cluster. A bad `[capacity]` is refused by the stack check before any call.
//!
//! moto launches the group's instance but runs no ECS agent, so the test registers it the way
//! the agent does (RegisterContainerInstance with the instance's identity document). Nor does
//! moto's service scheduler start tasks: the task that shows the placement is one of the
//! service's task definition with the service's strategy (task-run), which ECS places on the
//! group's instance through the capacity provider.
//!
//! Run it through `cargo xtask test -- -p xtask --test capacity` (and `cargo build -p
//! capacity-create -p instance-profile -p task-run` beside the other binaries).

mod support;

use serde_json::Value;
use support::{aws, bin_dir, build_image, local_env, step, xtask};

/// The example task definition, for EC2 instances.
fn ec2_taskdef(dir: &std::path::Path) -> String {
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let text = std::fs::read_to_string(examples.join("taskdef.json")).unwrap();
    let path = dir.join("taskdef-ec2.json");
    std::fs::write(&path, text.replace("[\"FARGATE\"]", "[\"EC2\"]")).unwrap();
    path.display().to_string()
}

/// The instance registered as the ECS agent registers it: its identity document (what the
/// agent reads from the instance metadata service) and its resources.
fn register_like_the_agent(cluster: &str, instance: &Value) -> String {
    let document = serde_json::json!({
        "instanceId": instance["InstanceId"],
        "imageId": instance["ImageId"],
        "instanceType": instance["InstanceType"],
        "availabilityZone": instance["Placement"]["AvailabilityZone"],
        "privateIp": instance["PrivateIpAddress"],
        "region": "us-west-2",
        "accountId": "123456789012",
    });
    let out = aws(&[
        "ecs",
        "register-container-instance",
        "--cluster",
        cluster,
        "--instance-identity-document",
        &document.to_string(),
        "--total-resources",
        "name=CPU,type=INTEGER,integerValue=2048",
        "name=MEMORY,type=INTEGER,integerValue=3800",
    ])
    .unwrap();
    out["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_ec2_stack_places_its_task_on_an_instance_of_its_capacity() {
    for var in [
        "AWS_ENDPOINT_URL",
        "ECSKIT_REGISTRY_ENDPOINT",
        "DOCKER_HOST",
    ] {
        local_env(var);
    }
    for b in ["capacity-create", "instance-profile", "task-run"] {
        assert!(
            bin_dir().join(b).exists(),
            "{b} is missing: cargo build -p {b}"
        );
    }
    let app = format!("ec2-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("ecskit-capacity-it-{app}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let image = format!("{app}:1");
    build_image(&image, &dir);
    let stack = support::stack_file(&dir, &app, &image);
    let text = std::fs::read_to_string(&stack)
        .unwrap()
        .replace("launch_type = \"FARGATE\"", "launch_type = \"EC2\"")
        .replace(
            &format!(
                "file = \"{}\"",
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../examples/taskdef.json")
                    .display()
            ),
            &format!("file = \"{}\"", ec2_taskdef(&dir)),
        );
    assert!(text.contains("taskdef-ec2.json"), "{text}");
    std::fs::write(
        &stack,
        format!(
            "{text}[instance_profile]\nprofile_name = \"{app}-profile\"\nrole_name = \"{app}-instance\"\n\
             [capacity]\ninstance_types = [\"t3.medium\"]\nmax_size = 2\ndesired_capacity = 1\n"
        ),
    )
    .unwrap();

    let (code, first, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 0, "deploy failed:\n{first:#}\n{stderr}");
    let names: Vec<&str> = first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    let at = |n: &str| names.iter().position(|s| *s == n).unwrap();
    assert!(at("instance-profile") < at("capacity-create"), "{names:?}");
    assert!(at("capacity-create") < at("service-run"), "{names:?}");
    let capacity = step(&first, "capacity-create");
    let provider = format!("{app}-ec2");
    assert_eq!(
        capacity["outputs"]["capacity_provider_name"],
        provider.as_str()
    );

    // The service runs on the stack's capacity provider. moto drops a service's
    // capacityProviderStrategy from DescribeServices (../shared/notes/local-aws.md), so the
    // request is read from the command line the orchestrator ran.
    let service = aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &app,
        "--services",
        &app,
    ])
    .unwrap();
    let service_run = stderr
        .lines()
        .find(|l| l.starts_with("[service-run] $ "))
        .unwrap_or_else(|| panic!("no service-run command line:\n{stderr}"));
    assert!(
        service_run.contains(&format!("--capacity-provider-strategy {provider}:1"))
            && !service_run.contains("--launch-type"),
        "{service_run}"
    );
    // The launch template names the stack's instance profile.
    let versions = aws(&[
        "ec2",
        "describe-launch-template-versions",
        "--launch-template-name",
        &provider,
    ])
    .unwrap();
    assert_eq!(
        versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]["IamInstanceProfile"]["Name"],
        format!("{app}-profile").as_str()
    );

    // The group's instance joins the cluster, as its agent would.
    let group = aws(&[
        "autoscaling",
        "describe-auto-scaling-groups",
        "--auto-scaling-group-names",
        &provider,
    ])
    .unwrap();
    let instance_id = group["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap_or_else(|| panic!("the group launched no instance: {group:#}"))
        .to_string();
    let instance = aws(&["ec2", "describe-instances", "--instance-ids", &instance_id]).unwrap();
    let container_instance =
        register_like_the_agent(&app, &instance["Reservations"][0]["Instances"][0]);

    // A task of the service's task definition, with the service's strategy, lands on it.
    let td = service["services"][0]["taskDefinition"]
        .as_str()
        .unwrap()
        .to_string();
    let out = std::process::Command::new(bin_dir().join("task-run"))
        .args(["--cluster", &app, "--task-definition", &td])
        .args(["--capacity-provider-strategy", &format!("{provider}:1")])
        .args(["--no-wait", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let task_arn = run["task_arn"].as_str().unwrap().to_string();
    let task = aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        &app,
        "--tasks",
        &task_arn,
    ])
    .unwrap();
    assert_eq!(
        task["tasks"][0]["containerInstanceArn"],
        container_instance.as_str(),
        "{task:#}"
    );
    assert_eq!(task["tasks"][0]["capacityProviderName"], provider.as_str());

    // Again: nothing changes, capacity-create makes no mutating call.
    let (code, second, stderr) = xtask(&["deploy", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 0, "second deploy failed:\n{second:#}\n{stderr}");
    let capacity = step(&second, "capacity-create");
    assert_eq!(capacity["changed"], false, "{capacity:#}");
    assert_eq!(capacity["aws_calls"]["mutating"], 0, "{capacity:#}");

    // The test's own task (not the stack's) is stopped first: moto never stops the tasks of an
    // instance that goes away, and a cluster with a task is left by destroy.
    aws(&["ecs", "stop-task", "--cluster", &app, "--task", &task_arn]).unwrap();

    // destroy removes the capacity (after the service), the cluster and the profile.
    let (code, gone, stderr) = xtask(&["destroy", "--stack", &stack, "--yes", "--output", "json"]);
    assert_eq!(code, 0, "destroy failed:\n{gone:#}\n{stderr}");
    let removed: Vec<&str> = gone["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    let at = |n: &str| removed.iter().position(|s| *s == n).unwrap();
    assert!(at("service-run") < at("capacity-create"), "{removed:?}");
    assert!(
        at("capacity-create") < at("instance-profile"),
        "{removed:?}"
    );
    let group = aws(&[
        "autoscaling",
        "describe-auto-scaling-groups",
        "--auto-scaling-group-names",
        &provider,
    ])
    .unwrap();
    assert_eq!(group["AutoScalingGroups"], serde_json::json!([]));
    let providers = aws(&[
        "ecs",
        "describe-capacity-providers",
        "--capacity-providers",
        &provider,
    ])
    .unwrap();
    assert_eq!(providers["capacityProviders"], serde_json::json!([]));
    let templates = aws(&[
        "ec2",
        "describe-launch-templates",
        "--filters",
        &format!("Name=launch-template-name,Values={provider}"),
    ])
    .unwrap();
    assert_eq!(templates["LaunchTemplates"], serde_json::json!([]));
    // The cluster went with the capacity: ecskit made it, and its one container instance (the
    // group's, registered above) was deregistered with the group.
    let clusters = aws(&["ecs", "describe-clusters", "--clusters", &app]).unwrap();
    assert!(
        clusters["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "INACTIVE"),
        "the cluster is left: {clusters:#}\n{stderr}"
    );
    let profile = aws(&[
        "iam",
        "get-instance-profile",
        "--instance-profile-name",
        &format!("{app}-profile"),
    ]);
    assert!(
        profile.is_err(),
        "the instance profile is left: {profile:?}"
    );
}

/// A `[capacity]` value capacity-create would refuse is refused by the stack check, before the
/// deploy's first step: exit 2 naming each field, no AWS call at all (the call log stays empty),
/// and nothing made (not the instance profile's role, which comes first in the chain).
#[test]
fn a_bad_capacity_section_is_refused_before_the_first_change() {
    local_env("AWS_ENDPOINT_URL");
    let app = format!("ec2bad-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("ecskit-capacity-it-{app}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let stack = support::stack_file(&dir, &app, &format!("{app}:1"));
    let text = std::fs::read_to_string(&stack).unwrap();
    std::fs::write(
        &stack,
        format!(
            "{text}[instance_profile]\nprofile_name = \"{app}-profile\"\nrole_name = \"{app}-instance\"\n\
             [capacity]\ninstance_types = [\"t3.medium\", \"T3 large\"]\nmax_size = 2\ndesired_capacity = 5\n\
             target_capacity = 0\nsubnets = [\"subnet-12345678\", \"net-1\"]\nsecurity_groups = [\"sg-1\"]\n\
             ami = \"ami-xyz\"\n"
        ),
    )
    .unwrap();
    let calls = dir.join("calls.log");
    let (code, stdout, stderr) = support::xtask_text(
        &["deploy", "--stack", &stack],
        &[("ECSKIT_CALL_LOG", calls.to_str().unwrap())],
    );
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    for field in [
        "capacity.instance_types[1]: 'T3 large' is not an instance type",
        "capacity.desired_capacity 5: must lie between capacity.min_size 0 and capacity.max_size 2",
        "capacity.target_capacity 0: must be 1 to 100",
        "capacity.subnets[1]: 'net-1' is not a subnet id",
        "capacity.security_groups[0]: 'sg-1' is not a security group id",
        "capacity.ami: 'ami-xyz' is not an AMI id",
    ] {
        assert!(stderr.contains(field), "{field}:\n{stderr}");
    }
    let logged = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(logged.is_empty(), "AWS calls were made:\n{logged}");
    assert!(
        aws(&["iam", "get-role", "--role-name", &format!("{app}-instance")]).is_err(),
        "the instance role was made"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A managed `[capacity]` whose name leaves no room for the infrastructure role's suffix is
/// refused by the stack check (the step would fail at the role, after the earlier steps ran).
#[test]
fn a_managed_capacity_name_too_long_for_its_role_is_refused_before_the_first_change() {
    local_env("AWS_ENDPOINT_URL");
    let app = format!("ec2long-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("ecskit-capacity-it-{app}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let stack = support::stack_file(&dir, &app, &format!("{app}:1"));
    let text = std::fs::read_to_string(&stack).unwrap();
    let name = "m".repeat(50);
    std::fs::write(
        &stack,
        format!("{text}[capacity]\nmanaged = true\nname = \"{name}\"\n"),
    )
    .unwrap();
    let calls = dir.join("calls.log");
    let (code, stdout, stderr) = support::xtask_text(
        &["deploy", "--stack", &stack],
        &[("ECSKIT_CALL_LOG", calls.to_str().unwrap())],
    );
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("capacity.name: '{name}' is 50 characters")),
        "{stderr}"
    );
    assert!(
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .is_empty()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
