//! The service files people write (`tests/fixtures/service-files/`, copied from public
//! repositories: sources and what each holds in its SOURCES.tsv), each through `service-run --service-file`
//! on the local stack. A file that is valid once its ids are real gets the stack's real
//! subnet, security group and a target group made for it put in (its service registries stay
//! as written: moto has no Cloud Map to make one in), deploys, and re-deploys with no mutating call. A template (placeholders)
//! or a file ECS would refuse is refused with exit 2 before any call, naming the field.

use std::path::{Path, PathBuf};

use ecskit::service_run::{Args, ServiceRun};
use ecskit_testkit::{LocalStack, local_stack};
use serde_json::{Value, json};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/service-files")
}

/// The files that deploy once their ids are real.
const DEPLOYS: &[&str] = &[
    "02-ecspresso-cps-fargate-empty-launchtype-alb.json",
    "03-ecspresso-code-deploy-alb-tags.json",
    "04-ecspresso-ec2-bridge-alb-empty-arrays.json",
    "08-ecspresso-service-registries-fargate.json",
    "16-ecspresso-ec2-placement-spread-desired0.json",
    "17-ecspresso-fargate-spot-only-alb.json",
    "19-cli-fargate-basic-no-trailing-newline.json",
    "24-cli-classic-role-clienttoken.json",
];

/// The files refused, and the problem that names the field (after `--service-file PATH: `).
const REFUSED: &[(&str, &str)] = &[
    (
        "01-ecspresso-fargate-must-env-subnets.json",
        "networkConfiguration.awsvpcConfiguration.subnets[0]: '{{ must_env `SUBNETS` }}' holds the placeholder",
    ),
    (
        "05-ecspresso-rolling-alarms-no-names-az-rebalancing.json",
        "deploymentConfiguration.alarms.alarmNames: missing",
    ),
    (
        "06-ecspresso-alarms-lowercase-alarmnames-key.json",
        "deploymentConfiguration.alarms.alarmnames: ECS spells it alarmNames",
    ),
    (
        "07-ecspresso-blue-green-lifecycle-hooks-tfstate.json",
        "deploymentConfiguration.lifecycleHooks[0].hookTargetArn: '{{ tfstate",
    ),
    (
        "09-ecspresso-code-deploy-must-env-in-arn.json",
        "loadBalancers[0].targetGroupArn: 'arn:aws:elasticloadbalancing:ap-northeast-1:{{ must_env",
    ),
    (
        "10-ecspresso-service-connect-server-ssm.json",
        "networkConfiguration.awsvpcConfiguration.securityGroups[0]: '{{ ssm",
    ),
    (
        "11-ecspresso-service-connect-client-ssm.json",
        "networkConfiguration.awsvpcConfiguration.securityGroups[0]: '{{ ssm",
    ),
    (
        "12-ecspresso-ec2-awsvpc-public-ip-alarms.json",
        "networkConfiguration.awsvpcConfiguration.assignPublicIp: ENABLED with launchType EC2",
    ),
    (
        "13-ecspresso-ec2-tfstatef-public-ip.json",
        "networkConfiguration.awsvpcConfiguration.subnets[0]: '{{ tfstate",
    ),
    (
        "14-ecspresso-daemon-minimal.json",
        "schedulingStrategy: DAEMON services run on EC2 only",
    ),
    (
        "15-ecspresso-fargate-spot-ebs-volume-env.json",
        "deploymentController.type: '{{ env `DEPLOYMENT_CONTROLLER` `ECS` }}' holds the placeholder",
    ),
    (
        "18-ecspresso-spot-base-servicename-taskdef.json",
        "taskDefinition: 'arn:aws:ecs:ap-northeast-1:{{ must_env",
    ),
    (
        "20-cli-code-deploy-angle-placeholders-no-service-name.json",
        "taskDefinition: '<TASK_DEFINITION>:1' holds the placeholder <TASK_DEFINITION>",
    ),
    (
        "21-cli-ec2-placement-role-account-placeholder.json",
        "loadBalancers[0].targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-2:AWS_ACCOUNT_ID:targetgroup/ECSDemo-Target-Group-1/8361d9b8a74dba46' has 'AWS_ACCOUNT_ID' where a 12-digit account id belongs",
    ),
    (
        "22-cli-registries-launchtype-plus-cps-unknown-key.json",
        "launchType and capacityProviderStrategy: ECS takes one or the other",
    ),
    (
        "23-cli-dollar-var-placeholder-empty-strings.json",
        "loadBalancers[0].targetGroupArn: ${ALB_TARGET_GROUP} is not set",
    ),
    (
        "25-cli-subnet-trailing-space.json",
        "networkConfiguration.awsvpcConfiguration.subnets[0]: 'subnet-65abf80c ' has a space",
    ),
];

/// The flags a user gives beside the file: what ecspresso.yml (or `--service-name`) would
/// hold, for what the file does not name.
fn flags(doc: &Value, n: &str) -> Vec<String> {
    let mut out = vec!["--no-wait".to_string()];
    if doc.get("cluster").is_none() {
        out.extend(["--cluster".into(), "corpus".into()]);
    }
    if doc.get("serviceName").is_none() {
        out.extend(["--service".into(), format!("corpus-{n}")]);
    }
    if doc.get("taskDefinition").is_none() {
        out.extend(["--task-definition".into(), family_for(doc).into()]);
    }
    out
}

/// A service without awsvpc settings on EC2 runs a bridge task definition; the rest run the
/// awsvpc (Fargate) one.
fn family_for(doc: &Value) -> &'static str {
    if doc.get("networkConfiguration").is_none()
        && doc.get("launchType").and_then(Value::as_str) == Some("EC2")
    {
        "corpus-bridge"
    } else {
        "corpus-web"
    }
}

/// The file's awsvpc ids and target groups replaced by the stack's real ones (a user's file
/// names their own).
fn with_real_ids(mut doc: Value, subnet: &str, sg: &str, target_group: &str) -> Value {
    for lb in doc
        .get_mut("loadBalancers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        lb["targetGroupArn"] = json!(target_group);
    }
    if let Some(vpc) = doc
        .get_mut("networkConfiguration")
        .and_then(|n| n.get_mut("awsvpcConfiguration"))
    {
        vpc["subnets"] = json!([subnet]);
        vpc["securityGroups"] = json!([sg]);
    }
    doc
}

async fn run(
    stack: &LocalStack,
    file: &Path,
    flags: &[String],
) -> (ecskit::Result<ecskit::Report>, ecskit::aws::Ctx) {
    let mut argv = vec!["--service-file", file.to_str().unwrap()];
    argv.extend(flags.iter().map(String::as_str));
    let args: Args = stack.parse("service-run", &argv);
    let ctx = stack.ctx(false).await;
    (ecskit::step::run::<ServiceRun>(&ctx, &args).await, ctx)
}

/// A target group made on the emulator's elbv2 (the SDK has no elbv2 client in this
/// workspace; the query protocol is one form POST).
fn target_group(stack: &LocalStack, name: &str, vpc: &str) -> String {
    use std::io::{Read, Write};
    let addr = stack
        .moto_url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let body = format!(
        "Action=CreateTargetGroup&Version=2015-12-01&Name={name}&Protocol=HTTP&Port=80&VpcId={vpc}&TargetType=ip"
    );
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST / HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-west-2/elasticloadbalancing/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let arn = answer
        .split_once("<TargetGroupArn>")
        .and_then(|(_, rest)| rest.split_once("</TargetGroupArn>"))
        .map(|(arn, _)| arn.to_string());
    arn.unwrap_or_else(|| panic!("CreateTargetGroup {name}: {answer}"))
}

async fn register(ctx: &ecskit::aws::Ctx, family: &str, awsvpc: bool) {
    use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
    let mut req = ctx
        .ecs()
        .register_task_definition()
        .family(family)
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("nginx:1")
                .memory(512)
                .build(),
        );
    req = if awsvpc {
        req.network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
    } else {
        req.network_mode(NetworkMode::Bridge)
            .requires_compatibilities(Compatibility::Ec2)
    };
    req.send().await.unwrap();
}

#[tokio::test]
async fn every_service_file_of_the_corpus_deploys_and_redeploys_unchanged_or_is_refused_by_field() {
    let stack = local_stack();
    let ctx = stack.ctx(false).await;
    for (family, awsvpc) in [
        ("corpus-web", true),
        ("corpus-bridge", false),
        ("demo-angular-app-task-def", true),
        ("hypermq", false),
    ] {
        register(&ctx, family, awsvpc).await;
    }
    let (subnets, sg) = stack.default_network().await;
    let vpc = ctx
        .ec2()
        .describe_subnets()
        .subnet_ids(&subnets[0])
        .send()
        .await
        .unwrap()
        .subnets()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let dir = corpus();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), DEPLOYS.len() + REFUSED.len(), "{names:?}");
    let tmp = tempfile::tempdir().unwrap();
    for name in &names {
        let n = &name[..2];
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let file = tmp.path().join(name);
        let flags = flags(&doc, n);
        if let Some((_, field)) = REFUSED.iter().find(|(f, _)| f == name) {
            std::fs::copy(dir.join(name), &file).unwrap();
            let (result, ctx) = run(&stack, &file, &flags).await;
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{name} was accepted"));
            assert_eq!(err.exit_code(), 2, "{name}: {}", err.render());
            assert!(
                ctx.calls().calls().is_empty(),
                "{name}: no call before refusing"
            );
            let named = format!("--service-file {}: {field}", file.display());
            assert!(
                err.to_string().contains(&named),
                "{name}: '{named}' not in:\n{err}"
            );
            continue;
        }
        assert!(
            DEPLOYS.contains(&name.as_str()),
            "{name} is in neither list"
        );
        let tg = target_group(&stack, &format!("corpus-{n}"), &vpc);
        let real = with_real_ids(doc.clone(), &subnets[0], &sg, &tg);
        std::fs::write(&file, real.to_string()).unwrap();
        let (first, _) = run(&stack, &file, &flags).await;
        let first = first.unwrap_or_else(|e| panic!("{name}: {}", e.render()));
        assert!(first.changed, "{name}");
        // The service is the one the file (or, where it names none, the flags) names.
        let cluster = doc["cluster"].as_str().unwrap_or("corpus");
        let service = doc["serviceName"]
            .as_str()
            .map_or(format!("corpus-{n}"), str::to_string);
        let arn = first.get_str("SERVICE_ARN").unwrap();
        assert!(
            arn.ends_with(&format!(":service/{cluster}/{service}")),
            "{name}: {arn}"
        );
        let (again, ctx) = run(&stack, &file, &flags).await;
        let again = again.unwrap_or_else(|e| panic!("{name} again: {}", e.render()));
        assert!(!again.changed, "{name}: {:?}", again.actions);
        assert!(
            ctx.calls().mutating().is_empty(),
            "{name}: re-deploy: {:?}",
            ctx.calls().mutating()
        );

        // A CODE_DEPLOY service is created, but its updates are CodeDeploy's: a changed
        // field is refused naming the controller, nothing changed.
        if real["deploymentController"]["type"] == "CODE_DEPLOY" {
            let mut changed = real.clone();
            changed["desiredCount"] = json!(3);
            std::fs::write(&file, changed.to_string()).unwrap();
            let (result, ctx) = run(&stack, &file, &flags).await;
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{name}: the update was accepted"));
            assert_eq!(err.exit_code(), 2, "{name}: {}", err.render());
            assert!(
                err.to_string()
                    .contains("has deploymentController CODE_DEPLOY"),
                "{err}"
            );
            assert!(
                ctx.calls().mutating().is_empty(),
                "{name}: {:?}",
                ctx.calls().mutating()
            );
        }
    }
}
