//! taskdef-register --prune against the local emulator (moto): revisions a service uses are
//! kept (in every cluster by default, in the named ones with --cluster), the one just
//! registered is never deregistered, a dry run lists and changes nothing, a second run has
//! nothing left to do.

use std::path::PathBuf;

use clap::Parser;
use ecskit::taskdef_register::{self, Args, TaskdefRegister};
use ecskit_testkit::LocalStack;
use serde_json::Value;

const FAMILY: &str = "corpus-firelens";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/taskdefs/fargate-firelens.json")
}

async fn run(stack: &LocalStack, extra: &[&str], dry_run: bool) -> ecskit::Report {
    let file = fixture();
    let mut argv = vec!["taskdef-register", "--file", file.to_str().unwrap()];
    argv.extend_from_slice(extra);
    let mut args = Args::try_parse_from(argv).unwrap();
    args.aws = stack.aws_args();
    let ctx = ecskit::aws::Ctx::new(&args.aws, dry_run).await;
    ecskit::step::run::<TaskdefRegister>(&ctx, &args)
        .await
        .unwrap_or_else(|e| panic!("{}", e.render()))
}

async fn active(stack: &LocalStack) -> Vec<i64> {
    let ctx = stack.ctx(false).await;
    taskdef_register::active_revisions(&ctx.ecs(), FAMILY)
        .await
        .unwrap()
        .into_iter()
        .map(|(rev, _)| rev)
        .collect()
}

/// A service in `cluster` running revision `rev` of the family.
async fn service_using(stack: &LocalStack, cluster: &str, rev: i64) {
    let ecs = stack.ctx(false).await.ecs();
    let (subnets, sg) = stack.default_network().await;
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster(cluster)
        .service_name(format!("uses-{rev}"))
        .task_definition(format!("{FAMILY}:{rev}"))
        .desired_count(0)
        .network_configuration(ecskit::ecs::network::configuration(
            subnets,
            vec![sg],
            false,
        ))
        .send()
        .await
        .unwrap();
}

fn revisions(report: &ecskit::Report, detail: &str) -> Vec<i64> {
    report
        .get(detail)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no {detail} in {report:?}"))
        .iter()
        .filter_map(Value::as_str)
        .map(|arn| arn.rsplit(':').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn prune_keeps_what_services_use_and_the_revision_just_registered() {
    let stack = ecskit_testkit::local_stack();
    for _ in 0..5 {
        run(&stack, &["--force"], false).await;
    }
    assert_eq!(active(&stack).await, [5, 4, 3, 2, 1]);
    service_using(&stack, "apps", 2).await;
    service_using(&stack, "other", 3).await;

    // A dry run lists what would go and changes nothing.
    let dry = run(&stack, &["--prune", "--keep", "1"], true).await;
    assert_eq!(revisions(&dry, "deregistered"), [4, 1]);
    assert_eq!(active(&stack).await, [5, 4, 3, 2, 1]);

    // Every cluster's services count by default: 3 (cluster other) and 2 (cluster apps) stay.
    let real = run(&stack, &["--prune", "--keep", "1"], false).await;
    assert!(real.changed);
    assert_eq!(revisions(&real, "deregistered"), [4, 1]);
    assert_eq!(active(&stack).await, [5, 3, 2]);
    let again = run(&stack, &["--prune", "--keep", "1"], false).await;
    assert!(!again.changed);
    assert!(revisions(&again, "deregistered").is_empty());

    // Only cluster apps looked in, and nothing kept by count: 3 goes, 2 (in use) and 5 (the
    // revision this run found unchanged, the one it reports) stay.
    let narrow = run(
        &stack,
        &["--prune", "--keep", "0", "--in-use-cluster", "apps"],
        false,
    )
    .await;
    assert_eq!(revisions(&narrow, "deregistered"), [3]);
    assert_eq!(active(&stack).await, [5, 2]);
}

#[test]
fn keep_without_delete_or_prune_and_a_bad_cluster_are_refused_before_any_call() {
    use ecskit::step::Step;
    let parse = |extra: &[&str]| {
        let mut argv = vec!["taskdef-register", "--file", "x.json"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    };
    let err = match TaskdefRegister::check(&parse(&["--keep", "3"])) {
        Err(e) => e,
        Ok(_) => panic!("--keep alone was taken"),
    };
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        "--keep N says how many revisions --delete or --prune keeps"
    );
    let err = match TaskdefRegister::check(&parse(&[
        "--prune",
        "--keep",
        "1",
        "--in-use-cluster",
        "a b",
    ])) {
        Err(e) => e,
        Ok(_) => panic!("a bad cluster name was taken"),
    };
    assert_eq!(
        err.to_string(),
        "--in-use-cluster 'a b' is not a cluster name: 1 to 255 letters, digits, '-' and '_'"
    );
    // Named on the command line without --prune: a mistake, said (the variable set for a whole
    // job is read only by runs that prune).
    let err = match TaskdefRegister::check(&parse(&["--in-use-cluster", "apps"])) {
        Err(e) => e,
        Ok(_) => panic!("--in-use-cluster without --prune was taken"),
    };
    assert_eq!(err.exit_code(), 2);
    // --prune needs --keep (clap says so).
    assert!(Args::try_parse_from(["taskdef-register", "--file", "x.json", "--prune"]).is_err());
}

/// A prune that fails after the register (here: a cluster to look in that does not exist) is
/// exit 1, and still says which revision it registered, in every output format: the next step
/// of a chain, or a CI job on failure, has the ARN.
#[tokio::test]
async fn a_prune_that_fails_after_the_register_still_names_the_revision() {
    let stack = ecskit_testkit::local_stack();
    let file = fixture();
    let mut args = Args::try_parse_from([
        "taskdef-register",
        "--file",
        file.to_str().unwrap(),
        "--family",
        "prune-fails",
        "--prune",
        "--keep",
        "1",
        "--in-use-cluster",
        "no-such-cluster",
    ])
    .unwrap();
    args.aws = stack.aws_args();
    let ctx = ecskit::aws::Ctx::new(&args.aws, false).await;
    let err = ecskit::step::run::<TaskdefRegister>(&ctx, &args)
        .await
        .expect_err("the prune in a missing cluster succeeded");
    assert_eq!(err.exit_code(), 1, "{}", err.render());
    let registered = taskdef_register::active_revisions(&ctx.ecs(), "prune-fails")
        .await
        .unwrap();
    let (_, arn) = registered.first().expect("the revision was registered");
    let env = ecskit::cli::failure_output(&err, ecskit::output::OutputFormat::Env)
        .expect("the failure prints the outputs");
    assert!(
        env.contains(&format!("TASK_DEFINITION_ARN={arn}")) && env.contains("TASK_REVISION=1"),
        "{env}"
    );
    let json = ecskit::cli::failure_output(&err, ecskit::output::OutputFormat::Json).unwrap();
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["task_definition_arn"], Value::String(arn.clone()));
    assert_eq!(json["exit_status"], 1);
    assert_eq!(json["changed"], true);
}
