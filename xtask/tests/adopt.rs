//! Adopting a service set up by hand, against the local stack: the seeds' console procedure
//! done with the aws CLI (a cluster, the two roles, a task definition, a service behind a load
//! balancer target group with a capacity provider strategy), then `cargo xtask init`, then
//! `cargo xtask deploy`: nothing changes, no mutating call. And `cargo xtask verify` end to
//! end on the adopted stack.
//!
//! Run it through `cargo xtask test -- -p xtask --test adopt` (the binaries come from the
//! workspace's test build, as in deploy.rs).

use std::process::Command;

use serde_json::{Value, json};

mod support;

use support::{aws, bin_dir, build_image, local_env, xtask_text, xtask_with};

/// The seeds' console procedure, with the aws CLI (the image pushed with image-push, since the
/// local registry stands in for ECR).
/// The plaintext credential of the hand-made task definition.
const LIVE_SECRET: &str = "live-s3cr3t-9f2c";

fn console_setup(id: &str, dir: &std::path::Path) -> Console {
    let local = format!("snaplex-{id}:4.35");
    build_image(&local, dir);
    let pushed = Command::new(bin_dir().join("image-push"))
        .args([
            &local,
            "--repository",
            &format!("snaplex-{id}"),
            "--tag",
            "4.35",
        ])
        .args(["--region", "us-west-2", "--output", "env"])
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "image-push: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    // The tag's URI in the registry that stands in for ECR, as a console user would paste it.
    let image = String::from_utf8_lossy(&pushed.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("ECSKIT_IMAGE_TAG_URI="))
        .expect("image-push prints ECSKIT_IMAGE_TAG_URI")
        .trim_matches('\'')
        .to_string();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    .to_string();
    aws(&[
        "ecs",
        "create-cluster",
        "--cluster-name",
        &format!("console-{id}"),
        "--capacity-providers",
        "FARGATE",
        "FARGATE_SPOT",
    ])
    .unwrap();
    for role in [format!("snaplex-{id}-task"), format!("snaplex-{id}-exec")] {
        aws(&[
            "iam",
            "create-role",
            "--role-name",
            &role,
            "--assume-role-policy-document",
            &trust,
        ])
        .unwrap();
    }
    aws(&[
        "iam",
        "put-role-policy",
        "--role-name",
        &format!("snaplex-{id}-task"),
        "--policy-name",
        "config",
        "--policy-document",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::cfg-{id}/snaplex/prod/*")},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": format!("arn:aws:s3:::cfg-{id}")}
        ]})
        .to_string(),
    ])
    .unwrap();
    aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        &format!("snaplex-{id}-exec"),
        "--policy-arn",
        "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
    ])
    .unwrap();
    let td = json!({
        "family": format!("snaplex-{id}"),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "512",
        "memory": "1024",
        "taskRoleArn": format!("arn:aws:iam::123456789012:role/snaplex-{id}-task"),
        "executionRoleArn": format!("arn:aws:iam::123456789012:role/snaplex-{id}-exec"),
        "containerDefinitions": [{
            "name": "jcc",
            "image": image,
            "memory": 1024,
            "essential": true,
            "portMappings": [{"containerPort": 8081, "protocol": "tcp"}],
            // A literal `${...}` (the container's shell expands it, not a deploy) and a
            // credential written as plaintext by hand: init must neither print nor write it.
            "command": ["sh", "-c", "exec jcc --org ${SL_ORG}"],
            "environment": [
                {"name": "SL_ORG", "value": "acme"},
                {"name": "DB_PASSWORD", "value": LIVE_SECRET}
            ]
        }]
    });
    aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &td.to_string(),
    ])
    .unwrap();
    let subnet = aws(&[
        "ec2",
        "describe-subnets",
        "--filters",
        "Name=default-for-az,Values=true",
    ])
    .unwrap()["Subnets"][0]["SubnetId"]
        .as_str()
        .unwrap()
        .to_string();
    let sg = aws(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=default",
    ])
    .unwrap()["SecurityGroups"][0]["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    let target_group = format!(
        "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/snaplex-{id}/0123456789abcdef"
    );
    aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &format!("console-{id}"),
        "--service-name",
        &format!("snaplex-{id}"),
        "--task-definition",
        &format!("snaplex-{id}:1"),
        "--desired-count",
        "1",
        "--capacity-provider-strategy",
        "capacityProvider=FARGATE,weight=1",
        "--load-balancers",
        &format!("targetGroupArn={target_group},containerName=jcc,containerPort=8081"),
        // DISABLED: moto answers launchType EC2 for this FARGATE-strategy service (ECS answers
        // the strategy), and service-run refuses a public IP for EC2 tasks in the file init
        // writes from that answer.
        "--network-configuration",
        &format!(
            "awsvpcConfiguration={{subnets=[{subnet}],securityGroups=[{sg}],assignPublicIp=DISABLED}}"
        ),
    ])
    .unwrap();
    Console {
        target_group,
        image,
        subnet,
        sg,
    }
}

/// What the console procedure made that the test looks for again.
struct Console {
    target_group: String,
    image: String,
    subnet: String,
    sg: String,
}

#[test]
fn a_service_made_by_hand_is_adopted_and_a_deploy_changes_nothing() {
    for var in [
        "AWS_ENDPOINT_URL",
        "ECSKIT_REGISTRY_ENDPOINT",
        "DOCKER_HOST",
    ] {
        local_env(var);
    }
    let id = format!("adopt{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let Console {
        target_group,
        image,
        subnet,
        sg,
    } = console_setup(&id, dir.path());
    let d = dir.path().to_str().unwrap();

    let (code, out, err) = xtask_text(
        &[
            "init",
            "--cluster",
            &format!("console-{id}"),
            "--service",
            &format!("snaplex-{id}"),
            "--dir",
            d,
            "--region",
            "us-west-2",
        ],
        &[],
    );
    assert_eq!(code, 0, "init failed:\n{out}\n{err}");
    assert!(out.contains("wrote ") && out.contains("next:"), "{out}");
    // The plaintext credential is neither printed nor written; its placeholder is named.
    assert!(
        !out.contains(LIVE_SECRET) && !err.contains(LIVE_SECRET),
        "{out}\n{err}"
    );
    for f in ["taskdef.json", "service.json", "ecskit.toml"] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(!text.contains(LIVE_SECRET), "{f} holds the secret:\n{text}");
    }
    assert!(out.contains("${DB_PASSWORD}"), "{out}");

    // The files hold what was clicked together.
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(f)).unwrap()).unwrap()
    };
    let service = read("service.json");
    assert_eq!(
        service["loadBalancers"][0]["targetGroupArn"],
        json!(target_group)
    );
    assert_eq!(service["desiredCount"], json!(1));
    assert!(service.get("serviceArn").is_none() && service.get("events").is_none());
    let taskdef = read("taskdef.json");
    assert_eq!(taskdef["containerDefinitions"][0]["image"], json!(image));
    assert_eq!(
        taskdef["containerDefinitions"][0]["environment"][1]["value"],
        json!("${DB_PASSWORD}")
    );
    assert_eq!(
        taskdef["containerDefinitions"][0]["command"][2],
        json!("exec jcc --org $${SL_ORG}")
    );
    assert!(taskdef.get("revision").is_none() && taskdef.get("status").is_none());
    let stack = std::fs::read_to_string(dir.path().join("ecskit.toml")).unwrap();
    for line in [
        format!("bucket = \"cfg-{id}\""),
        "prefix = \"snaplex/prod\"".to_string(),
        format!("task_role_name = \"snaplex-{id}-task\""),
        format!("execution_role_name = \"snaplex-{id}-exec\""),
        "file = \"service.json\"".to_string(),
        "allow_plaintext_secrets = true".to_string(),
    ] {
        assert!(stack.contains(&line), "{line} missing from:\n{stack}");
    }

    // Deploy right after, the whole chain: the stack has no [image] (the task definition names
    // the live image), the roles are referenced, the task definition and the service are what
    // ECS has, so no step changes anything.
    let stack_path = dir.path().join("ecskit.toml");
    let deploy = || {
        xtask_with(
            &[
                "deploy",
                "--stack",
                stack_path.to_str().unwrap(),
                "--output",
                "json",
            ],
            &[("DB_PASSWORD", LIVE_SECRET)],
        )
    };
    let (code, summary, err) = deploy();
    assert_eq!(code, 0, "deploy failed:\n{summary:#}\n{err}");
    let service_file = dir.path().join("service.json");
    assert!(
        err.contains(&format!("--service-file {}", service_file.display())),
        "service-run got the stack's service file: {err}"
    );
    let steps = summary["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["role-create", "taskdef-register", "service-run"],
        "{summary:#}"
    );
    for step in steps {
        assert_eq!(step["changed"], false, "{step:#}\n{err}");
        assert_eq!(step["aws_calls"]["mutating"], 0, "{step:#}\n{err}");
    }
    // The service still runs the hand-made revision 1.
    let services = aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &format!("console-{id}"),
        "--services",
        &format!("snaplex-{id}"),
    ])
    .unwrap();
    assert!(
        services["services"][0]["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with(&format!("snaplex-{id}:1")),
        "{services:#}"
    );

    // verify end to end on the adopted stack: every check passes (the permission check warns
    // that the emulator has no policy simulator), and nothing is changed.
    let calls = dir.path().join("verify.calls");
    let (code, out, err) = xtask_text(
        &[
            "verify",
            "--stack",
            stack_path.to_str().unwrap(),
            "--output",
            "json",
        ],
        &[
            ("ECSKIT_CALL_LOG", calls.to_str().unwrap()),
            ("DB_PASSWORD", LIVE_SECRET),
        ],
    );
    let checks: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    assert_eq!(code, 0, "{checks:#}\n{err}");
    assert_eq!(checks["ok"], true);
    let list = checks["checks"].as_array().unwrap();
    for (kind, resource) in [
        ("role", format!("role/snaplex-{id}-task")),
        ("role", format!("role/snaplex-{id}-exec")),
        ("image", format!("snaplex-{id}:4.35")),
        ("network", subnet.clone()),
        ("network", sg.clone()),
    ] {
        assert!(
            list.iter().any(|c| c["kind"] == kind
                && c["level"] == "ok"
                && c["resource"].as_str().unwrap().ends_with(&resource)),
            "no passing {kind} check of {resource}: {checks:#}"
        );
    }
    let log = std::fs::read_to_string(&calls).unwrap();
    let counted = ecskit_contract::calls::count(&log);
    assert!(counted.total > 0, "the checks made calls: {log}");
    assert_eq!(counted.mutating, 0, "{log}");

    // A role trusted by ec2 instead of ecs-tasks: verify fails naming it, exit 2.
    let task_role_trusts = |service: &str| {
        aws(&[
            "iam",
            "update-assume-role-policy",
            "--role-name",
            &format!("snaplex-{id}-task"),
            "--policy-document",
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        ])
        .unwrap()
    };
    task_role_trusts("ec2.amazonaws.com");
    let (code, out, err) = xtask_text(
        &["verify", "--stack", stack_path.to_str().unwrap()],
        &[("DB_PASSWORD", LIVE_SECRET)],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("failure  role ")
                && l.contains(&format!("role/snaplex-{id}-task"))),
        "{out}"
    );
    assert!(out.ends_with("check(s), 1 failed\n"), "{out}");

    // The service file's subnets from two VPCs: verify fails naming them, and so does the
    // deploy's verify, before any change.
    task_role_trusts("ecs-tasks.amazonaws.com");
    let vpc = aws(&["ec2", "create-vpc", "--cidr-block", "10.7.0.0/16"]).unwrap()["Vpc"]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();
    let other = aws(&[
        "ec2",
        "create-subnet",
        "--vpc-id",
        &vpc,
        "--cidr-block",
        "10.7.1.0/24",
    ])
    .unwrap()["Subnet"]["SubnetId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut service = read("service.json");
    service["networkConfiguration"]["awsvpcConfiguration"]["subnets"] = json!([subnet, other]);
    std::fs::write(dir.path().join("service.json"), service.to_string()).unwrap();
    let (code, out, err) = xtask_text(
        &["verify", "--stack", stack_path.to_str().unwrap()],
        &[("DB_PASSWORD", LIVE_SECRET)],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("failure")).collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0].starts_with(&format!(
            "failure  network {subnet},{other}: the subnets belong to 2 VPCs"
        )),
        "{out}"
    );
    let (code, summary, err) = deploy();
    assert_eq!(code, 2, "{summary:#}\n{err}");
    assert!(err.contains("the subnets belong to 2 VPCs"), "{err}");
    for step in summary["steps"].as_array().unwrap() {
        assert_eq!(
            step["aws_calls"]["mutating"], 0,
            "refused before any change: {step:#}"
        );
    }
    let last = summary["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (&last["step"], &last["exit_code"]),
        (&json!("service-run"), &json!(2))
    );
}
