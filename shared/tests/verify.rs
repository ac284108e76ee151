//! verify against the local stack: a good task definition passes; each broken resource the
//! checks exist for fails with the resource named; no check makes a mutating call.

mod image_support;

use ecskit::verify::{self, Level, Network, TaskSubject};
use ecskit_testkit::{LocalStack, local_stack};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";

fn trust(service: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]})
    .to_string()
}

/// The roles, an SSM parameter, a Secrets Manager secret, an env file and a log group: what a
/// good task definition names.
async fn good_resources(stack: &LocalStack, task_role_trusts: &str) {
    let ctx = stack.ctx(false).await;
    let iam = ctx.iam();
    for (name, service) in [
        ("web-task", task_role_trusts),
        ("web-execution", "ecs-tasks.amazonaws.com"),
    ] {
        iam.create_role()
            .role_name(name)
            .assume_role_policy_document(trust(service))
            .send()
            .await
            .unwrap();
    }
    ctx.ssm()
        .put_parameter()
        .name("/web/token")
        .value("s3cr3t-token")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    ctx.secrets_manager()
        .create_secret()
        .name("web-db")
        .secret_string(r#"{"password":"hunter2"}"#)
        .send()
        .await
        .unwrap();
    let s3 = ctx.s3();
    s3.create_bucket()
        .bucket("web-config")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("web-config")
        .key("web/app.env")
        .body(b"A=1\n".to_vec().into())
        .send()
        .await
        .unwrap();
    ctx.logs()
        .create_log_group()
        .log_group_name("/ecs/web")
        .send()
        .await
        .unwrap();
}

async fn secret_arn(stack: &LocalStack) -> String {
    let ctx = stack.ctx(false).await;
    ctx.secrets_manager()
        .describe_secret()
        .secret_id("web-db")
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

fn task_definition(image: &str, secret_arn: &str, cpu: &str, log_group: &str) -> Value {
    json!({
        "family": "web",
        "cpu": "256",
        "memory": "512",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "taskRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/web-task"),
        "executionRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/web-execution"),
        "runtimePlatform": {"cpuArchitecture": cpu, "operatingSystemFamily": "LINUX"},
        "containerDefinitions": [{
            "name": "app",
            "image": image,
            "secrets": [
                {"name": "TOKEN", "valueFrom": format!("arn:aws:ssm:us-west-2:{ACCOUNT}:parameter/web/token")},
                {"name": "DB_PASSWORD", "valueFrom": format!("{secret_arn}:password::")}
            ],
            "environmentFiles": [{"value": "arn:aws:s3:::web-config/web/app.env", "type": "s3"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": log_group, "awslogs-region": "us-west-2", "awslogs-stream-prefix": "ecs"}}
        }]
    })
}

/// An image pushed to the stack's registry (what image-push would have done).
async fn pushed_image(stack: &LocalStack) -> String {
    let repo = image_support::unique("verify");
    let source = image_support::build_scratch_image(&repo, "v1").await;
    let target = format!("{}/{repo}:v1", stack.registry);
    let (_, decoded) = image_support::ecr_token(stack).await;
    let (user, password) = decoded.split_once(':').unwrap();
    let docker_config = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker tag {source} {target} && echo \"$PW\" | docker login -u {user} --password-stdin {reg} >/dev/null 2>&1 && docker push {target} >/dev/null",
            reg = stack.registry
        ))
        .env("PW", password)
        .env("DOCKER_HOST", &stack.docker_host)
        .env("DOCKER_CONFIG", docker_config.path())
        .status()
        .unwrap();
    assert!(status.success(), "pushing the test image");
    target
}

async fn default_network(stack: &LocalStack) -> Network {
    let (subnets, sg) = stack.default_network().await;
    Network {
        subnets: subnets.into_iter().take(2).collect(),
        security_groups: vec![sg],
        assign_public_ip: true,
        fargate: true,
    }
}

/// A subnet of a VPC made for it (`PREFIX.0.0/16`): with the default VPC's, two VPCs.
async fn subnet_in_a_new_vpc(stack: &LocalStack, prefix: &str) -> String {
    let ec2 = stack.ctx(false).await.ec2();
    let vpc = ec2
        .create_vpc()
        .cidr_block(format!("{prefix}.0.0/16"))
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap();
    ec2.create_subnet()
        .vpc_id(vpc.vpc_id().unwrap())
        .cidr_block(format!("{prefix}.1.0/24"))
        .send()
        .await
        .unwrap()
        .subnet
        .unwrap()
        .subnet_id
        .unwrap()
}

fn lines(checks: &verify::Checks, level: Level) -> Vec<String> {
    checks
        .0
        .iter()
        .filter(|c| c.level == level)
        .map(|c| c.line())
        .collect()
}

#[tokio::test]
async fn a_good_stack_passes_without_a_mutating_call() {
    let stack = local_stack();
    good_resources(&stack, "ecs-tasks.amazonaws.com").await;
    let image = pushed_image(&stack).await;
    let doc = task_definition(&image, &secret_arn(&stack).await, "X86_64", "/ecs/web");
    let network = default_network(&stack).await;

    let ctx = stack.ctx(false).await;
    let checks = verify::verify(&ctx, &TaskSubject::from_json(&doc), Some(&network))
        .await
        .unwrap();
    assert_eq!(lines(&checks, Level::Failure), Vec::<String>::new());
    assert!(checks.conclude().is_ok());
    let ok = lines(&checks, Level::Ok).join("\n");
    for expected in [
        "role arn:aws:iam::123456789012:role/web-task: exists and trusts ecs-tasks.amazonaws.com",
        &format!("image {image}: exists (amd64)"),
        "the SSM parameter exists",
        "the secret holds the key password",
        "env file arn:aws:s3:::web-config/web/app.env: exists",
        "log group /ecs/web: exists",
    ] {
        assert!(ok.contains(expected), "missing '{expected}' in:\n{ok}");
    }
    // moto has no policy simulator: said once, as a warning, not claimed as checked.
    let warnings = lines(&checks, Level::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("the roles' permissions were not checked"),
        "{warnings:?}"
    );
    assert_eq!(ctx.calls().mutating(), vec![], "verify only reads");
    // No secret value in any line.
    let all: String = checks.0.iter().map(|c| c.line()).collect();
    assert!(!all.contains("s3cr3t-token") && !all.contains("hunter2"));
}

#[tokio::test]
async fn each_broken_resource_fails_naming_it() {
    let stack = local_stack();
    // The task role trusts EC2 instead of ECS tasks.
    good_resources(&stack, "ec2.amazonaws.com").await;
    let image = pushed_image(&stack).await;
    let ctx = stack.ctx(false).await;
    ctx.ssm()
        .delete_parameter()
        .name("/web/token")
        .send()
        .await
        .unwrap();
    let missing_tag = image.replace(":v1", ":v9-missing");
    // A log group that does not exist, without awslogs-create-group.
    let doc = task_definition(
        &missing_tag,
        &secret_arn(&stack).await,
        "X86_64",
        "/ecs/nope",
    );
    // Subnets from two VPCs.
    let mut network = default_network(&stack).await;
    network
        .subnets
        .push(subnet_in_a_new_vpc(&stack, "10.9").await);

    let ctx = stack.ctx(false).await;
    let checks = verify::verify(&ctx, &TaskSubject::from_json(&doc), Some(&network))
        .await
        .unwrap();
    let failures = lines(&checks, Level::Failure).join("\n");
    for expected in [
        "failure  role arn:aws:iam::123456789012:role/web-task: its trust policy lets ec2.amazonaws.com assume it, not ecs-tasks.amazonaws.com",
        &format!("failure  image {missing_tag}: does not exist in the registry"),
        "failure  secret arn:aws:ssm:us-west-2:123456789012:parameter/web/token (app/TOKEN): no such SSM parameter",
        "failure  log group /ecs/nope: does not exist and awslogs-create-group is not \"true\"",
        "the subnets belong to 2 VPCs",
    ] {
        assert!(
            failures.contains(expected),
            "missing '{expected}' in:\n{failures}"
        );
    }
    let err = checks.conclude().unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(ctx.calls().mutating(), vec![], "verify only reads");
}

#[tokio::test]
async fn an_arm64_task_with_an_amd64_only_image_is_flagged() {
    let stack = local_stack();
    good_resources(&stack, "ecs-tasks.amazonaws.com").await;
    let image = pushed_image(&stack).await;
    let doc = task_definition(&image, &secret_arn(&stack).await, "ARM64", "/ecs/web");
    let ctx = stack.ctx(false).await;
    let checks = verify::verify(&ctx, &TaskSubject::from_json(&doc), None)
        .await
        .unwrap();
    assert_eq!(
        lines(&checks, Level::Failure),
        [format!(
            "failure  image {image}: is built for amd64 only, but the task definition's runtimePlatform wants ARM64 (arm64)"
        )]
    );
}

/// `taskdef-register --verify` refuses before registering: exit 2, no revision.
#[tokio::test]
async fn taskdef_register_verify_refuses_before_registering() {
    let stack = local_stack();
    good_resources(&stack, "ec2.amazonaws.com").await;
    let image = pushed_image(&stack).await;
    let doc = task_definition(&image, &secret_arn(&stack).await, "X86_64", "/ecs/web");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taskdef.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let args: ecskit::taskdef_register::Args = stack.parse(
        "taskdef-register",
        &["--file", file.to_str().unwrap(), "--verify"],
    );
    let ctx = stack.ctx(false).await;
    let err = ecskit::step::run::<ecskit::taskdef_register::TaskdefRegister>(&ctx, &args)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string()
            .contains("verify: role arn:aws:iam::123456789012:role/web-task: its trust policy lets ec2.amazonaws.com assume it"),
        "{err}"
    );
    let listed = stack
        .ctx(false)
        .await
        .ecs()
        .list_task_definitions()
        .send()
        .await
        .unwrap();
    assert!(
        listed.task_definition_arns().is_empty(),
        "nothing was registered"
    );
}

/// `service-run --verify=network` checks the network the deploy would use: the service file's
/// subnets (two VPCs: exit 2, nothing changed), or for a new service without subnets the
/// default VPC's. In a dry run, the revision taskdef-register's dry run would register next is
/// a stand-in, not an error; any other unknown revision still is.
#[tokio::test]
async fn service_run_verify_checks_the_network_the_deploy_would_use() {
    let stack = local_stack();
    let family = image_support::unique("netverify");
    let ctx = stack.ctx(false).await;
    ctx.ecs()
        .register_task_definition()
        .family(&family)
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("nginx:1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (subnets, sg) = stack.default_network().await;
    let other = subnet_in_a_new_vpc(&stack, "10.8").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.json");
    std::fs::write(
        &file,
        json!({
            "serviceName": family, "taskDefinition": family, "desiredCount": 1,
            "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": [subnets[0], other],
                "securityGroups": [sg], "assignPublicIp": "ENABLED"}}
        })
        .to_string(),
    )
    .unwrap();
    let cluster = format!("{family}-cluster");
    let cluster = cluster.as_str();
    let run = |extra: Vec<String>, dry_run: bool| {
        let stack = &stack;
        async move {
            let mut argv: Vec<&str> = vec!["--cluster", cluster];
            argv.extend(extra.iter().map(String::as_str));
            let args: ecskit::service_run::Args = stack.parse("service-run", &argv);
            let ctx = stack.ctx(dry_run).await;
            let result = ecskit::step::run::<ecskit::service_run::ServiceRun>(&ctx, &args).await;
            (result, ctx.calls().mutating())
        }
    };

    let (result, mutating) = run(
        vec![
            "--service-file".into(),
            file.display().to_string(),
            "--verify=network".into(),
            "--no-wait".into(),
        ],
        false,
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string().contains("the subnets belong to 2 VPCs"),
        "{err}"
    );
    assert!(
        mutating.is_empty(),
        "refused before any change: {mutating:?}"
    );

    // A new service without subnets: the default VPC's are what the deploy would use.
    let (result, mutating) = run(
        vec![
            "--service".into(),
            family.clone(),
            "--task-definition".into(),
            family.clone(),
            "--verify=network".into(),
        ],
        true,
    )
    .await;
    let report = result.unwrap();
    let checks = report.get("checks").unwrap().to_string();
    assert!(
        checks.contains("the subnets exist in vpc-") && checks.contains(&sg),
        "{checks}"
    );
    assert!(mutating.is_empty(), "{mutating:?}");

    // Dry run: the next revision is a stand-in, another unknown one bad input.
    let (result, _) = run(
        vec![
            "--service".into(),
            family.clone(),
            "--task-definition".into(),
            format!("{family}:2"),
            "--verify".into(),
        ],
        true,
    )
    .await;
    let report = result.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report
            .get("checks")
            .unwrap()
            .to_string()
            .contains("not registered yet"),
        "{:?}",
        report.get("checks")
    );
    let (result, _) = run(
        vec![
            "--service".into(),
            family.clone(),
            "--task-definition".into(),
            format!("{family}:7"),
        ],
        true,
    )
    .await;
    assert_eq!(result.unwrap_err().exit_code(), 2);
}
