//! taskdef-register against the local emulator (moto).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use clap::Parser;
use ecskit::taskdef_register::{self, Args, TaskdefRegister, compare, document::Overrides};
use ecskit_testkit::LocalStack;
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/taskdefs")
        .join(name)
}

fn args(stack: &LocalStack, extra: &[&str]) -> Args {
    let mut argv = vec!["taskdef-register"];
    argv.extend_from_slice(extra);
    let mut a = Args::try_parse_from(argv).unwrap();
    a.aws = stack.aws_args();
    a
}

/// The step as its binary runs it.
async fn run(args: Args) -> ecskit::Result<ecskit::Report> {
    let ctx = ecskit::aws::Ctx::new(&args.aws, args.common.dry_run).await;
    ecskit::step::run::<TaskdefRegister>(&ctx, &args).await
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn prepare_file(name: &str) -> taskdef_register::Prepared {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).unwrap();
    taskdef_register::prepare(
        path.to_str().unwrap(),
        &text,
        &Overrides::default(),
        false,
        &no_env,
    )
    .unwrap()
}

async fn active(stack: &LocalStack, family: &str) -> Vec<(i64, String)> {
    let ctx = stack.ctx(false).await;
    taskdef_register::active_revisions(&ctx.ecs(), family)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_vendor_guide_example_registers_after_stripping() {
    let stack = ecskit_testkit::local_stack();
    let file = fixture("vendor-guide.json");
    let p = prepare_file("vendor-guide.json");
    assert_eq!(
        p.stripped,
        vec![
            "taskDefinitionArn",
            "revision",
            "status",
            "requiresAttributes",
            "compatibilities",
            "registeredAt",
            "registeredBy"
        ]
    );
    let report = run(args(&stack, &["--file", file.to_str().unwrap()]))
        .await
        .unwrap();
    assert!(report.changed);
    assert_eq!(
        report.get_str("TASK_DEFINITION_ARN").unwrap(),
        "arn:aws:ecs:us-west-2:123456789012:task-definition/test-ecs:1"
    );
    assert_eq!(report.get_str("TASK_FAMILY").unwrap(), "test-ecs");
    assert_eq!(report.get_str("TASK_REVISION").unwrap(), "1");
    let ctx = stack.ctx(false).await;
    let latest = taskdef_register::latest_active(&ctx.ecs(), "test-ecs")
        .await
        .unwrap()
        .unwrap();
    assert!(
        compare::same(&latest.doc, &p.doc),
        "{}",
        compare::diff(&latest.doc, "registered", &p.doc, "sent")
    );
    assert_eq!(
        latest.doc["containerDefinitions"][0]["command"][2],
        p.doc["containerDefinitions"][0]["command"][2]
    );
}

#[tokio::test]
async fn the_corpus_round_trips() {
    let stack = ecskit_testkit::local_stack();
    let mut files: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for name in files {
        let p = prepare_file(&name);
        let ctx = stack.ctx(false).await;
        let out = taskdef_register::register(&ctx.ecs(), &p.doc)
            .await
            .unwrap();
        let arn = out
            .task_definition()
            .unwrap()
            .task_definition_arn()
            .unwrap();
        let described = taskdef_register::latest_active(&ctx.ecs(), &p.family)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(described.arn, arn);
        assert!(
            compare::same(&described.doc, &p.doc),
            "{name} did not round-trip:\n{}",
            compare::diff(&described.doc, "described", &p.doc, "sent")
        );
        // The canonical form keeps what matters: every container with its fields.
        let canon = compare::canonical(&described.doc);
        let sent = compare::canonical(&p.doc);
        assert_eq!(
            canon["containerDefinitions"].as_array().map(Vec::len),
            p.doc["containerDefinitions"].as_array().map(Vec::len),
            "{name}"
        );
        for (i, c) in sent["containerDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            for (k, v) in c.as_object().unwrap() {
                assert_eq!(
                    &canon["containerDefinitions"][i][k], v,
                    "{name}: containerDefinitions[{i}].{k}"
                );
            }
        }
    }
    // Spot checks of the features the corpus is for, as moto stored them.
    let ctx = stack.ctx(false).await;
    let efs = taskdef_register::latest_active(&ctx.ecs(), "corpus-fargate-efs")
        .await
        .unwrap()
        .unwrap()
        .doc;
    assert_eq!(
        efs["volumes"][0]["efsVolumeConfiguration"]["authorizationConfig"]["iam"],
        "ENABLED"
    );
    assert_eq!(
        efs["containerDefinitions"][1]["restartPolicy"]["restartAttemptPeriod"],
        180
    );
    assert_eq!(efs["runtimePlatform"]["cpuArchitecture"], "ARM64");
    assert_eq!(efs["ephemeralStorage"]["sizeInGiB"], 50);
    let mesh = taskdef_register::latest_active(&ctx.ecs(), "corpus-appmesh")
        .await
        .unwrap()
        .unwrap()
        .doc;
    assert_eq!(mesh["proxyConfiguration"]["containerName"], "envoy");
}

/// Copies the body and Content-Length of every request after signing.
#[derive(Debug, Clone, Default)]
struct CaptureRequest(Arc<Mutex<Vec<Captured>>>);

/// A request body and its Content-Length header.
type Captured = (Vec<u8>, Option<String>);

impl Intercept for CaptureRequest {
    fn name(&self) -> &'static str {
        "test-capture-request"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request();
        self.0.lock().unwrap().push((
            req.body().bytes().unwrap_or_default().to_vec(),
            req.headers().get("content-length").map(str::to_string),
        ));
        Ok(())
    }
}

#[tokio::test]
async fn a_field_the_tool_does_not_know_reaches_the_request_body() {
    let stack = ecskit_testkit::local_stack();
    let text = json!({
        "family": "unknown-fields",
        "someFieldAddedIn2031": {"mode": "quantum", "levels": [1, 2]},
        "containerDefinitions": [{
            "name": "app", "image": "nginx", "memory": 128,
            "aContainerFieldFromTheFuture": true
        }]
    })
    .to_string();
    let p =
        taskdef_register::prepare("inline", &text, &Overrides::default(), false, &no_env).unwrap();
    let ctx = stack.ctx(false).await;
    let capture = CaptureRequest::default();
    let conf = aws_sdk_ecs::config::Builder::from(ctx.sdk_config())
        .interceptor(capture.clone())
        .build();
    let ecs = aws_sdk_ecs::Client::from_conf(conf);
    let out = taskdef_register::register(&ecs, &p.doc).await.unwrap();
    assert!(out.task_definition().is_some(), "moto accepted the request");

    let seen = capture.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (body, length) = &seen[0];
    let sent: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(sent, p.doc, "the request body is the document itself");
    assert_eq!(
        sent["someFieldAddedIn2031"],
        json!({"mode": "quantum", "levels": [1, 2]})
    );
    assert_eq!(
        sent["containerDefinitions"][0]["aContainerFieldFromTheFuture"],
        json!(true)
    );
    assert_eq!(length.as_deref(), Some(body.len().to_string().as_str()));
}

#[tokio::test]
async fn registering_the_same_document_again_makes_no_mutating_call() {
    let stack = ecskit_testkit::local_stack();
    let file = fixture("fargate-efs-secrets.json");
    let a = args(&stack, &["--file", file.to_str().unwrap()]);

    let first_ctx = stack.ctx(false).await;
    let first = ecskit::step::run::<TaskdefRegister>(&first_ctx, &a)
        .await
        .unwrap();
    assert!(first.changed);
    assert_eq!(first_ctx.calls().mutating().len(), 1);

    let ctx = stack.ctx(false).await;
    let second = ecskit::step::run::<TaskdefRegister>(&ctx, &a)
        .await
        .unwrap();
    assert!(!second.changed);
    assert_eq!(ctx.calls().mutating(), vec![]);
    assert_eq!(
        second.get_str("TASK_DEFINITION_ARN"),
        first.get_str("TASK_DEFINITION_ARN")
    );
    assert_eq!(active(&stack, "corpus-fargate-efs").await.len(), 1);

    // --force registers anyway; a changed image registers a new revision.
    let forced = args(&stack, &["--file", file.to_str().unwrap(), "--force"]);
    let ctx = stack.ctx(false).await;
    let r = ecskit::step::run::<TaskdefRegister>(&ctx, &forced)
        .await
        .unwrap();
    assert!(r.changed);
    assert_eq!(r.get_str("TASK_REVISION").unwrap(), "2");

    let changed = run(args(
        &stack,
        &["--file", file.to_str().unwrap(), "--image", "web=nginx:2"],
    ))
    .await
    .unwrap();
    assert!(changed.changed);
    assert_eq!(changed.get_str("TASK_REVISION").unwrap(), "3");
    let latest = active(&stack, "corpus-fargate-efs").await;
    assert_eq!(latest[0].0, 3);
}

#[tokio::test]
async fn dry_run_and_diff_register_nothing() {
    let stack = ecskit_testkit::local_stack();
    let file = fixture("ec2-bridge.json");
    run(args(&stack, &["--file", file.to_str().unwrap()]))
        .await
        .unwrap();
    let a = args(
        &stack,
        &[
            "--file",
            file.to_str().unwrap(),
            "--image",
            "agent=agent:8",
            "--dry-run",
            "--diff",
            "--output",
            "json",
        ],
    );
    let ctx = stack.ctx(true).await;
    let r = ecskit::step::run::<TaskdefRegister>(&ctx, &a)
        .await
        .unwrap();
    assert!(r.changed && r.dry_run);
    assert_eq!(ctx.calls().mutating(), vec![]);
    assert_eq!(
        r.get_str("TASK_DEFINITION_ARN").unwrap(),
        "arn:aws:ecs:us-west-2:123456789012:task-definition/corpus-ec2-bridge:2"
    );
    let diff = r.get_str("diff").unwrap();
    assert!(diff.contains("+      \"image\": \"agent:8\""), "{diff}");
    assert!(
        diff.contains("-      \"image\": \"123456789012.dkr.ecr"),
        "{diff}"
    );
    assert_eq!(active(&stack, "corpus-ec2-bridge").await.len(), 1);
}

#[tokio::test]
async fn delete_keeps_the_newest_and_only_touches_managed_revisions() {
    let stack = ecskit_testkit::local_stack();
    let file = fixture("fargate-firelens.json");
    for _ in 0..3 {
        run(args(&stack, &["--file", file.to_str().unwrap(), "--force"]))
            .await
            .unwrap();
    }
    // A revision registered by someone else (no managed-by tag).
    let ctx = stack.ctx(false).await;
    let mut foreign = prepare_file("fargate-firelens.json").doc;
    foreign.as_object_mut().unwrap().remove("tags");
    taskdef_register::register(&ctx.ecs(), &foreign)
        .await
        .unwrap();

    let r = run(args(
        &stack,
        &["--family", "corpus-firelens", "--delete", "--keep", "1"],
    ))
    .await
    .unwrap();
    assert!(r.changed);
    let left: Vec<i64> = active(&stack, "corpus-firelens")
        .await
        .into_iter()
        .map(|(rev, _)| rev)
        .collect();
    // 4 (the newest) is kept, 3 and 2 and 1 are ecskit's: deregistered.
    assert_eq!(left, vec![4]);

    let again = run(args(
        &stack,
        &["--family", "corpus-firelens", "--delete", "--keep", "1"],
    ))
    .await
    .unwrap();
    assert!(!again.changed);
}

/// Each bad input: exit 2, its named message, and nothing registered.
#[tokio::test]
async fn bad_inputs_are_refused_before_any_call() {
    let stack = ecskit_testkit::local_stack();
    let good: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("fargate-efs-secrets.json")).unwrap(),
    )
    .unwrap();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = good.clone();
        f(&mut d);
        d.to_string()
    };
    let cases: Vec<(&str, String, &[&str], &str)> = vec![
        (
            "syntax",
            "{\n  \"family\": \"x\",\n}".into(),
            &[],
            "JSON syntax error at line 3, column 1",
        ),
        (
            "no family",
            with(&|d| {
                d.as_object_mut().unwrap().remove("family");
            }),
            &[],
            "family: missing",
        ),
        (
            "no image",
            with(&|d| {
                d["containerDefinitions"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("image");
            }),
            &[],
            "containerDefinitions[1].image: missing",
        ),
        (
            "type",
            with(&|d| d["containerDefinitions"][1]["memory"] = json!("2048")),
            &[],
            "containerDefinitions[1].memory: must be an integer",
        ),
        (
            "network mode",
            with(&|d| d["networkMode"] = json!("bridge")),
            &[],
            "networkMode: Fargate requires \"awsvpc\"",
        ),
        (
            "cpu/memory",
            with(&|d| d["memory"] = json!("512")),
            &[],
            "memory: 512 MiB is not valid with cpu 1024 on Fargate",
        ),
        (
            "hostPort",
            with(&|d| d["containerDefinitions"][1]["portMappings"][0]["hostPort"] = json!(80)),
            &[],
            "containerDefinitions[1].portMappings[0].hostPort: 80 differs from containerPort 8080",
        ),
        (
            "container memory",
            with(&|d| d["containerDefinitions"][1]["memory"] = json!(8192)),
            &[],
            "containerDefinitions[1].memory: 8192 MiB is more than the task's memory (4096 MiB)",
        ),
        (
            "awslogs",
            with(&|d| {
                d["containerDefinitions"][0]["logConfiguration"]["options"]
                    .as_object_mut()
                    .unwrap()
                    .remove("awslogs-group");
            }),
            &[],
            "containerDefinitions[0].logConfiguration.options.awslogs-group: missing",
        ),
        (
            "role arn",
            with(&|d| d["taskRoleArn"] = json!("app-task")),
            &[],
            "taskRoleArn: 'app-task' is not an ARN",
        ),
        (
            "role flag",
            good.to_string(),
            &["--execution-role-arn", "arn:aws:iam::123456789012:user/x"],
            "--execution-role-arn: 'arn:aws:iam::123456789012:user/x' is not an ARN of a role",
        ),
        (
            "plaintext secret",
            with(&|d| {
                d["containerDefinitions"][1]["environment"] =
                    json!([{"name": "DB_PASSWORD", "value": "hunter2"}])
            }),
            &[],
            "containerDefinitions[1].environment[0]: DB_PASSWORD looks like a credential",
        ),
        (
            "undefined variable",
            with(&|d| {
                d["containerDefinitions"][1]["image"] =
                    json!("repo/app:${ECSKIT_TEST_SURELY_UNSET}")
            }),
            &[],
            "containerDefinitions[1].image: ${ECSKIT_TEST_SURELY_UNSET} is not set",
        ),
        (
            "image flag",
            good.to_string(),
            &["--image", "nginx:1"],
            "--image 'nginx:1': the task definition has 2 containers (migrate, web)",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, text, extra, message) in cases {
        let path = dir.path().join("td.json");
        std::fs::write(&path, &text).unwrap();
        let mut argv = vec!["--file", path.to_str().unwrap()];
        argv.extend_from_slice(extra);
        let err = run(args(&stack, &argv)).await.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{what}: {err}");
        assert!(
            err.to_string().contains(message),
            "{what}: wanted '{message}' in:\n{err}"
        );
    }
    // All problems of one document at once.
    let path = dir.path().join("many.json");
    std::fs::write(
        &path,
        with(&|d| {
            d["cpu"] = json!(1024);
            d["taskRoleArn"] = json!("x");
        }),
    )
    .unwrap();
    let err = run(args(&stack, &["--file", path.to_str().unwrap()]))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("2 problems in the input:"), "{text}");
    // Plaintext credentials pass with the flag.
    std::fs::write(
        &path,
        with(&|d| {
            d["containerDefinitions"][1]["environment"] =
                json!([{"name": "DB_PASSWORD", "value": "hunter2"}])
        }),
    )
    .unwrap();
    let p = taskdef_register::prepare(
        path.to_str().unwrap(),
        &std::fs::read_to_string(&path).unwrap(),
        &Overrides::default(),
        true,
        &no_env,
    );
    assert!(p.is_ok());

    assert_eq!(active(&stack, "corpus-fargate-efs").await, vec![]);
    let ctx = stack.ctx(false).await;
    let all = ctx.ecs().list_task_definitions().send().await.unwrap();
    assert_eq!(all.task_definition_arns(), Vec::<String>::new().as_slice());
}

/// The real-world corpus (copied from public repositories, sources in SOURCES.tsv): each file
/// that ECS accepts as written (expect-ok.txt) registers as written and reads back the same by
/// meaning; each template (placeholders, unrendered variables, wrong shapes) is refused with
/// exit 2 before any call, every problem naming the field it is about.
#[tokio::test]
async fn the_real_world_corpus_registers_what_ecs_accepts_and_refuses_templates_by_field() {
    let stack = ecskit_testkit::local_stack();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-taskdefs");
    // ECS accepts these two, but drops each `environment[].valueFrom` and registers the
    // variables with no value (the emulator does the same): they cannot register as written,
    // so the validator refuses them, naming the field.
    let loses_values = [
        "34-blacklist-describe-env-valuefrom.json",
        "35-bhub-env-valuefrom-credentialspecs.json",
    ];
    let expect_ok: Vec<String> = std::fs::read_to_string(dir.join("expect-ok.txt"))
        .unwrap()
        .lines()
        .filter(|n| !loses_values.contains(n))
        .map(str::to_string)
        .collect();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 38, "{names:?}");
    let (mut registered, mut refused) = (0, 0);
    let mut warned = Vec::new();
    for name in &names {
        let path = dir.join(name);
        let a = args(&stack, &["--file", path.to_str().unwrap()]);
        let ctx = stack.ctx(false).await;
        let result = ecskit::step::run::<TaskdefRegister>(&ctx, &a).await;
        if expect_ok.contains(name) {
            let report = result.unwrap_or_else(|e| panic!("{name}: {}", e.render()));
            assert!(report.changed, "{name}");
            let family = report.get_str("TASK_FAMILY").unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let prepared =
                taskdef_register::prepare(name, &text, &Overrides::default(), false, &no_env)
                    .unwrap();
            for w in &prepared.warnings {
                warned.push(format!("{name}: {w}"));
            }
            let sent = prepared.doc;
            let back = taskdef_register::latest_active(&ctx.ecs(), &family)
                .await
                .unwrap()
                .unwrap();
            assert!(
                compare::same(&back.doc, &sent),
                "{name} did not register as written:\n{}",
                compare::diff(&back.doc, "registered", &sent, "file")
            );
            registered += 1;
        } else {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{name} was accepted"));
            assert_eq!(err.exit_code(), 2, "{name}: {}", err.render());
            assert_eq!(
                ctx.calls().calls(),
                vec![],
                "{name}: no call before refusing"
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let raw: Value = serde_json::from_str(&text).unwrap();
            let doc = raw.get("taskDefinition").unwrap_or(&raw);
            let message = err.to_string();
            let problems: Vec<&str> = match message.split_once("problems in the input:") {
                Some((_, list)) => list
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("- "))
                    .collect(),
                None => vec![message.as_str()],
            };
            for problem in problems {
                let field = problem.split(':').next().unwrap();
                let top = field.split(['.', '[']).next().unwrap();
                assert!(
                    doc.get(top).is_some(),
                    "{name}: '{problem}' does not name a field of the document"
                );
            }
            refused += 1;
        }
    }
    assert_eq!((registered, refused), (21, 17));
    // What ECS registers but will not run as meant is said, not refused: in the corpus, the
    // App Mesh proxy of ecspresso's test file names an `envoy` container the task lacks, and
    // the Presto health check is written without CMD.
    let starts: Vec<&str> = warned
        .iter()
        .map(|w| w.split(": ").take(2).last().unwrap_or_default())
        .collect();
    assert_eq!(
        starts,
        [
            "proxyConfiguration.containerName",
            "containerDefinitions[0].healthCheck.command"
        ],
        "{warned:#?}"
    );
    assert!(warned[0].starts_with("04-ecspresso-wrapper-appmesh-labels.json: "));
    assert!(warned[1].starts_with("37-presto-healthcheck-no-cmd-prefix-tags.json: "));
}

mod json_replay;

/// A one-container document, checked and tagged as the step sends it.
fn small_doc(family: &str) -> Value {
    let text = json!({"family": family, "containerDefinitions": [
        {"name": "app", "image": "nginx:1.27", "memory": 128}]})
    .to_string();
    taskdef_register::prepare("inline", &text, &Overrides::default(), false, &no_env)
        .unwrap()
        .doc
}

/// What DescribeTaskDefinition answers for `doc` registered as revision `revision`.
fn described(doc: &Value, revision: i64) -> Value {
    let family = doc["family"].as_str().unwrap();
    let mut td = doc.clone();
    let tags = td.as_object_mut().unwrap().remove("tags").unwrap();
    td["taskDefinitionArn"] = json!(format!(
        "arn:aws:ecs:us-west-2:123456789012:task-definition/{family}:{revision}"
    ));
    td["revision"] = json!(revision);
    td["status"] = json!("ACTIVE");
    json!({"taskDefinition": td, "tags": tags})
}

fn listed(family: &str, revisions: &[i64]) -> json_replay::Exchange {
    json_replay::ok(
        "ListTaskDefinitions",
        json!({"taskDefinitionArns": revisions.iter().map(|r| format!(
            "arn:aws:ecs:us-west-2:123456789012:task-definition/{family}:{r}")).collect::<Vec<_>>()}),
    )
}

/// The register's answer was lost after ECS applied it (a 500). The SDK does not send it
/// again blindly: the step reads the latest revision, finds the document there, and reports
/// it. One RegisterTaskDefinition, one revision.
#[tokio::test]
async fn a_lost_register_answer_converges_on_the_revision_it_made() {
    use json_replay::{error, ok};
    let doc = small_doc("lost");
    let replay = json_replay::Replay::new(vec![
        listed("lost", &[]),
        error("RegisterTaskDefinition", 500, "ServerException"),
        listed("lost", &[1]),
        ok("DescribeTaskDefinition", described(&doc, 1)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("td.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let mut a =
        Args::try_parse_from(["taskdef-register", "--file", path.to_str().unwrap()]).unwrap();
    a.aws.region = Some("us-west-2".into());
    let ctx = replay.ctx(false);
    let report = ecskit::step::run::<TaskdefRegister>(&ctx, &a)
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(
        replay.sent(),
        vec![
            "ListTaskDefinitions",
            "RegisterTaskDefinition",
            "ListTaskDefinitions",
            "DescribeTaskDefinition"
        ]
    );
    assert!(replay.left().is_empty());
    assert!(report.changed);
    assert_eq!(report.get_str("TASK_REVISION").unwrap(), "1");
    assert_eq!(
        report.get_str("TASK_DEFINITION_ARN").unwrap(),
        "arn:aws:ecs:us-west-2:123456789012:task-definition/lost:1"
    );
}

/// A 5xx that ECS did not apply: nothing new is registered, so the register is sent again,
/// once, and its answer is the result. A revision that means something else (someone else's)
/// is not taken for ours.
#[tokio::test]
async fn a_failed_register_that_made_nothing_is_sent_again() {
    use json_replay::{error, ok};
    let doc = small_doc("again");
    let mut other = doc.clone();
    other["containerDefinitions"][0]["image"] = json!("nginx:0.1");
    let replay = json_replay::Replay::new(vec![
        error("RegisterTaskDefinition", 503, "ServiceUnavailableException"),
        listed("again", &[1]),
        ok("DescribeTaskDefinition", described(&other, 1)),
        ok("RegisterTaskDefinition", described(&doc, 2)),
    ]);
    let ctx = replay.ctx(false);
    let (arn, revision) =
        taskdef_register::revisions::register_converging(&ctx.ecs(), &ctx.clock, &doc, Some(1))
            .await
            .unwrap_or_else(|e| panic!("{}", e.render()));
    assert_eq!(revision, 2);
    assert!(arn.ends_with("task-definition/again:2"), "{arn}");
    assert!(replay.left().is_empty());
    // Both registers carried the document itself.
    let bodies = replay.bodies();
    for i in [0, 3] {
        let sent: Value = serde_json::from_str(&bodies[i]).unwrap();
        assert_eq!(sent, doc);
    }
    // A refusal (4xx) is not retried: it is the answer.
    let replay = json_replay::Replay::new(vec![error(
        "RegisterTaskDefinition",
        400,
        "ClientException",
    )]);
    let ctx = replay.ctx(false);
    let err = taskdef_register::revisions::register_converging(&ctx.ecs(), &ctx.clock, &doc, None)
        .await
        .unwrap_err();
    assert!(err.is_aws(&["ClientException"]), "{}", err.render());
    assert_eq!(replay.sent(), vec!["RegisterTaskDefinition"]);
}

/// The vendor guide's task definition as copied from the page: its `command` string runs onto
/// the next line. The error names the line where the string starts and the fix.
#[tokio::test]
async fn a_raw_line_break_in_a_string_is_reported_where_the_string_starts() {
    let stack = ecskit_testkit::local_stack();
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/broken/vendor-guide-as-copied.json");
    let err = run(args(&stack, &["--file", file.to_str().unwrap()]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(
        text.ends_with(
            "vendor-guide-as-copied.json: line 28: the string that starts at column 1 holds a raw line break, and a JSON string cannot hold one: write the break as \\n, or join the lines"
        ),
        "{text}"
    );
    assert!(!text.contains("column 0"), "{text}");
}

/// What a user sees, pinned: the text and json output of a first register, of the re-run that
/// changes nothing, and of a dry run of a changed document.
#[tokio::test]
async fn output_snapshots() {
    use ecskit::output::OutputFormat::{Json, Text};
    let stack = ecskit_testkit::local_stack();
    let file = fixture("fargate-firelens.json");
    let file = file.to_str().unwrap();
    let first = run(args(&stack, &["--file", file])).await.unwrap();
    ecskit_testkit::assert_output_snapshot!("taskdef_register_first_text", first.render(Text));
    ecskit_testkit::assert_output_snapshot!("taskdef_register_first_json", first.render(Json));
    let again = run(args(&stack, &["--file", file])).await.unwrap();
    ecskit_testkit::assert_output_snapshot!("taskdef_register_rerun_text", again.render(Text));
    ecskit_testkit::assert_output_snapshot!("taskdef_register_rerun_json", again.render(Json));
    let dry_args = [
        "--file",
        file,
        "--family",
        "corpus-firelens-next",
        "--dry-run",
    ];
    let dry = run(args(&stack, &dry_args)).await.unwrap();
    ecskit_testkit::assert_output_snapshot!("taskdef_register_dry_run_text", dry.render(Text));
    let mut json_args = dry_args.to_vec();
    json_args.extend(["--output", "json"]);
    let dry = run(args(&stack, &json_args)).await.unwrap();
    ecskit_testkit::assert_output_snapshot!("taskdef_register_dry_run_json", dry.render(Json));
}
