//! role-create against the local emulator: create, converge, drift, dry-run, bad input,
//! delete.

use aws_sdk_iam::types::Tag;
use ecskit::iam::policy;
use ecskit::role_create::{Args, RoleCreate};

/// The step as its binary runs it.
async fn run(a: Args) -> ecskit::Result<ecskit::Report> {
    ecskit::step::run_from_flags::<RoleCreate>(&a).await
}
use ecskit_testkit::LocalStack;

fn args(stack: &LocalStack, extra: &[&str]) -> Args {
    stack.parse("role-create", extra)
}

const WEB: &[&str] = &[
    "--name",
    "web",
    "--bucket",
    "cfg-bucket",
    "--prefix",
    "app/prod",
    "--s3",
    "data-bucket/uploads:read-write",
    "--tag",
    "team=payments",
];

async fn role_exists(stack: &LocalStack, name: &str) -> bool {
    stack
        .ctx(false)
        .await
        .iam()
        .get_role()
        .role_name(name)
        .send()
        .await
        .is_ok()
}

async fn inline_doc(stack: &LocalStack, role: &str, name: &str) -> serde_json::Value {
    let out = stack
        .ctx(false)
        .await
        .iam()
        .get_role_policy()
        .role_name(role)
        .policy_name(name)
        .send()
        .await
        .unwrap();
    policy::decode(out.policy_document()).unwrap()
}

async fn attached(stack: &LocalStack, role: &str) -> Vec<String> {
    let out = stack
        .ctx(false)
        .await
        .iam()
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    out.attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect()
}

const EXEC_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";

#[tokio::test]
async fn creates_both_roles_then_a_rerun_changes_nothing() {
    let stack = ecskit_testkit::local_stack();
    let report = run(args(&stack, WEB)).await.unwrap();
    assert!(report.changed);
    assert_eq!(
        report.get_str("TASK_ROLE_NAME").as_deref(),
        Some("web-task")
    );
    assert_eq!(
        report.get_str("EXECUTION_ROLE_NAME").as_deref(),
        Some("web-execution")
    );
    assert_eq!(
        report.get_str("TASK_ROLE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:role/web-task")
    );

    let iam = stack.ctx(false).await.iam();
    let role = iam
        .get_role()
        .role_name("web-task")
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    let tags: Vec<(String, String)> = role
        .tags()
        .iter()
        .map(|t| (t.key().into(), t.value().into()))
        .collect();
    assert!(
        tags.contains(&("managed-by".into(), "ecskit".into())),
        "{tags:?}"
    );
    assert!(
        tags.contains(&("team".into(), "payments".into())),
        "{tags:?}"
    );
    let trust = policy::decode(role.assume_role_policy_document().unwrap()).unwrap();
    assert!(policy::same(
        &trust,
        &policy::task_trust("aws", "us-west-2", "123456789012")
    ));
    let s3 = inline_doc(&stack, "web-task", "ecskit-s3").await;
    let text = s3.to_string();
    assert!(
        text.contains("arn:aws:s3:::cfg-bucket/app/prod/*"),
        "{text}"
    );
    assert!(
        text.contains("s3:PutObject") && text.contains("arn:aws:s3:::data-bucket/uploads/*"),
        "{text}"
    );
    assert_eq!(
        attached(&stack, "web-execution").await,
        vec![EXEC_POLICY.to_string()]
    );

    let again = run(args(&stack, WEB)).await.unwrap();
    assert!(!again.changed, "{:?}", again.actions);
    assert_eq!(again.calls.mutating, 0);
    assert!(again.calls.total > 0);
    assert_eq!(
        again.get_str("TASK_ROLE_ARN"),
        report.get_str("TASK_ROLE_ARN")
    );
}

#[tokio::test]
async fn drift_is_repaired() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, WEB)).await.unwrap();
    let iam = stack.ctx(false).await.iam();
    // Someone loosens the trust, widens the S3 policy, detaches the managed policy, changes a tag.
    iam.update_assume_role_policy()
        .role_name("web-task")
        .policy_document(policy::service_trust(&["ecs-tasks.amazonaws.com"]).to_string())
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("web-task")
        .policy_name("ecskit-s3")
        .policy_document(
            policy::s3_grants(
                "aws",
                &[policy::S3Grant::parse("cfg-bucket:read-write", policy::Access::Read).unwrap()],
            )
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name("web-execution")
        .policy_arn(EXEC_POLICY)
        .send()
        .await
        .unwrap();
    iam.tag_role()
        .role_name("web-execution")
        .tags(Tag::builder().key("team").value("other").build().unwrap())
        .send()
        .await
        .unwrap();

    let report = run(args(&stack, WEB)).await.unwrap();
    assert!(report.changed);
    let actions = report.actions.join("\n");
    for want in [
        "update trust policy of role web-task",
        "update inline policy ecskit-s3 of role web-task",
        "attach arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy to role web-execution",
        "tag role web-execution with team=payments",
    ] {
        assert!(actions.contains(want), "missing '{want}' in:\n{actions}");
    }
    assert_eq!(report.calls.mutating, 4, "{actions}");
    assert!(
        inline_doc(&stack, "web-task", "ecskit-s3")
            .await
            .to_string()
            .contains("cfg-bucket/app/prod/*")
    );

    let converged = run(args(&stack, WEB)).await.unwrap();
    assert!(!converged.changed, "{:?}", converged.actions);
    assert_eq!(converged.calls.mutating, 0);
}

#[tokio::test]
async fn dropped_options_are_removed() {
    let stack = ecskit_testkit::local_stack();
    run(args(
        &stack,
        &[
            "--name",
            "web",
            "--s3",
            "cfg-bucket/a",
            "--execution-policy",
            "inline",
        ],
    ))
    .await
    .unwrap();
    assert!(attached(&stack, "web-execution").await.is_empty());
    let report = run(args(&stack, &["--name", "web"])).await.unwrap();
    let actions = report.actions.join("\n");
    assert!(
        actions.contains("delete inline policy ecskit-s3 of role web-task"),
        "{actions}"
    );
    assert!(
        actions.contains("delete inline policy ecskit-execution of role web-execution"),
        "{actions}"
    );
    assert_eq!(
        attached(&stack, "web-execution").await,
        vec![EXEC_POLICY.to_string()]
    );
}

#[tokio::test]
async fn dry_run_makes_no_mutating_call() {
    let stack = ecskit_testkit::local_stack();
    let mut a = args(&stack, WEB);
    a.common.dry_run = true;
    let report = run(a).await.unwrap();
    assert!(report.changed && report.dry_run);
    assert_eq!(report.calls.mutating, 0);
    assert!(
        report.actions.iter().any(|a| a == "create role web-task"),
        "{:?}",
        report.actions
    );
    assert_eq!(
        report.get_str("TASK_ROLE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:role/web-task")
    );
    assert!(!role_exists(&stack, "web-task").await);

    // On an existing, drifted role, dry-run plans the repair and makes none.
    run(args(&stack, WEB)).await.unwrap();
    let iam = stack.ctx(false).await.iam();
    iam.detach_role_policy()
        .role_name("web-execution")
        .policy_arn(EXEC_POLICY)
        .send()
        .await
        .unwrap();
    let mut a = args(&stack, WEB);
    a.common.dry_run = true;
    let report = run(a).await.unwrap();
    assert_eq!(report.calls.mutating, 0);
    assert_eq!(report.actions.len(), 1, "{:?}", report.actions);
    assert!(attached(&stack, "web-execution").await.is_empty());
}

#[tokio::test]
async fn bad_input_exits_2_and_creates_nothing() {
    let stack = ecskit_testkit::local_stack();
    let dir = tempfile::tempdir().unwrap();
    let broad = dir.path().join("broad.json");
    std::fs::write(&broad, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#).unwrap();
    let no_version = dir.path().join("nov.json");
    std::fs::write(
        &no_version,
        r#"{"Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}]}"#,
    )
    .unwrap();
    let not_json = dir.path().join("bad.json");
    std::fs::write(&not_json, "{nope").unwrap();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--name", "web", "--bucket", "Bad_Bucket"], "--bucket"),
        (vec!["--name", "web", "--s3", "cfg-bucket/x:write"], "--s3"),
        (vec!["--name", "has space"], "--task-role-name"),
        (
            vec!["--name", "web", "--policy-file", broad.to_str().unwrap()],
            "--allow-broad-s3",
        ),
        (
            vec![
                "--name",
                "web",
                "--policy-file",
                no_version.to_str().unwrap(),
            ],
            "Version",
        ),
        (
            vec!["--name", "web", "--policy-file", not_json.to_str().unwrap()],
            "not valid JSON",
        ),
        (
            vec!["--name", "web", "--policy-file", "/no/such/file.json"],
            "cannot be read",
        ),
        (
            vec![
                "--name",
                "web",
                "--managed-policy-arn",
                "AmazonS3ReadOnlyAccess",
            ],
            "--managed-policy-arn",
        ),
        (
            vec![
                "--name",
                "web",
                "--managed-policy-arn",
                "arn:aws:iam::aws:policy/AmazonS3FullAccess",
            ],
            "--allow-broad-s3",
        ),
        (
            vec!["--name", "web", "--secret-arn", "arn:aws:s3:::b/k"],
            "--secret-arn",
        ),
        (
            vec!["--name", "web", "--env-file", "s3://cfg-bucket/"],
            "--env-file",
        ),
        (vec!["--name", "web", "--path", "ecs"], "--path"),
        (vec!["--name", "web", "--tag", "managed-by=me"], "reserved"),
        (vec!["--bucket", "cfg-bucket"], "--name"),
    ];
    for (extra, needle) in cases {
        let err = run(args(&stack, &extra)).await.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{extra:?}: {err}");
        assert!(
            err.to_string().contains(needle),
            "{extra:?}: '{err}' does not name '{needle}'"
        );
    }
    let roles = stack
        .ctx(false)
        .await
        .iam()
        .list_roles()
        .send()
        .await
        .unwrap();
    assert!(roles.roles().is_empty(), "{:?}", roles.roles());
    // The broad file is accepted when asked for.
    run(args(
        &stack,
        &[
            "--name",
            "web",
            "--policy-file",
            broad.to_str().unwrap(),
            "--allow-broad-s3",
        ],
    ))
    .await
    .unwrap();
    assert!(
        inline_doc(&stack, "web-task", "ecskit-file-broad")
            .await
            .to_string()
            .contains("s3:*")
    );
}

#[tokio::test]
async fn execution_role_reads_env_files_and_secrets() {
    let stack = ecskit_testkit::local_stack();
    let secret = "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf";
    let param = "arn:aws:ssm:us-west-2:123456789012:parameter/web/token";
    run(args(
        &stack,
        &[
            "--name",
            "web",
            "--execution-policy",
            "inline",
            "--env-file",
            "s3://cfg-bucket/app/web.env",
            "--secret-arn",
            secret,
            "--secret-arn",
            param,
        ],
    ))
    .await
    .unwrap();
    let reads = inline_doc(&stack, "web-execution", "ecskit-execution-reads").await;
    let want = policy::execution_reads(
        "aws",
        &[("cfg-bucket".into(), "app/web.env".into())],
        &[secret.into(), param.into()],
    )
    .unwrap();
    assert!(
        policy::same(&reads, &want),
        "{}",
        policy::diff(&reads, &want)
    );
    assert!(policy::same(
        &inline_doc(&stack, "web-execution", "ecskit-execution").await,
        &policy::execution_inline()
    ));
}

#[tokio::test]
async fn delete_removes_only_what_ecskit_created() {
    let stack = ecskit_testkit::local_stack();
    run(args(
        &stack,
        &[
            "--name",
            "web",
            "--s3",
            "cfg-bucket/a",
            "--managed-policy-arn",
            "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        ],
    ))
    .await
    .unwrap();
    let mut a = args(&stack, &["--name", "web"]);
    a.delete = true;
    let report = run(a).await.unwrap();
    assert!(report.changed);
    let actions = report.actions.join("\n");
    assert!(
        actions.find("delete inline policy ecskit-s3").unwrap()
            < actions.find("delete role web-task").unwrap(),
        "{actions}"
    );
    assert!(
        actions.contains(
            "detach arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore from role web-task"
        ),
        "{actions}"
    );
    assert!(!role_exists(&stack, "web-task").await);
    assert!(!role_exists(&stack, "web-execution").await);
    // Again: nothing to do.
    let mut a = args(&stack, &["--name", "web"]);
    a.delete = true;
    let again = run(a).await.unwrap();
    assert!(!again.changed);
    assert_eq!(again.calls.mutating, 0);

    // A role ecskit did not create is refused and left in place.
    stack
        .ctx(false)
        .await
        .iam()
        .create_role()
        .role_name("manual-task")
        .assume_role_policy_document(
            policy::service_trust(&["ecs-tasks.amazonaws.com"]).to_string(),
        )
        .send()
        .await
        .unwrap();
    let mut a = args(
        &stack,
        &[
            "--task-role-name",
            "manual-task",
            "--execution-role-name",
            "manual-execution",
        ],
    );
    a.delete = true;
    let err = run(a).await.unwrap_err();
    assert!(
        err.to_string().contains("not tagged managed-by=ecskit"),
        "{err}"
    );
    assert!(role_exists(&stack, "manual-task").await);
}

/// Exit 2 means nothing was changed: the second role's refusal (untagged, or on another path)
/// is decided before the first role is touched.
#[tokio::test]
async fn a_refusal_of_the_second_role_changes_nothing() {
    let stack = ecskit_testkit::local_stack();
    run(args(&stack, &["--name", "web"])).await.unwrap();
    // The execution role loses its managed-by tag: someone else owns it now.
    stack
        .ctx(false)
        .await
        .iam()
        .untag_role()
        .role_name("web-execution")
        .tag_keys("managed-by")
        .send()
        .await
        .unwrap();

    // Delete: the task role is ecskit's, the execution role is not.
    let ctx = stack.ctx(false).await;
    let mut a = args(&stack, &["--name", "web"]);
    a.delete = true;
    let err = ecskit::step::run::<ecskit::role_create::RoleCreate>(&ctx, &a)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string()
            .contains("role web-execution is not tagged managed-by=ecskit"),
        "{err}"
    );
    assert_eq!(ctx.calls().mutating(), vec![]);
    assert!(
        role_exists(&stack, "web-task").await,
        "the first role was left alone"
    );
}

#[tokio::test]
async fn a_path_mismatch_of_the_second_role_changes_nothing() {
    let stack = ecskit_testkit::local_stack();
    stack
        .ctx(false)
        .await
        .iam()
        .create_role()
        .role_name("web-execution")
        .path("/other/")
        .assume_role_policy_document(
            policy::service_trust(&["ecs-tasks.amazonaws.com"]).to_string(),
        )
        // ecskit's own role, moved: a role it does not manage is only referenced (below).
        .tags(
            Tag::builder()
                .key("managed-by")
                .value("ecskit")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ctx = stack.ctx(false).await;
    let err = ecskit::step::run::<ecskit::role_create::RoleCreate>(
        &ctx,
        &args(&stack, &["--name", "web"]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string()
            .contains("role web-execution exists with path /other/"),
        "{err}"
    );
    assert_eq!(ctx.calls().mutating(), vec![]);
    assert!(
        !role_exists(&stack, "web-task").await,
        "the task role was not created"
    );
}

/// A role made by hand (no managed-by tag), named with --task-role-name and
/// --execution-role-name, is referenced as it is: its ARN is printed, and no call changes it,
/// though its trust and policies are not what role-create would make.
#[tokio::test]
async fn a_role_ecskit_does_not_manage_is_referenced_untouched() {
    let stack = ecskit_testkit::local_stack();
    let iam = stack.ctx(false).await.iam();
    for name in ["console-task", "console-execution"] {
        iam.create_role()
            .role_name(name)
            .path("/service/")
            .assume_role_policy_document(
                policy::service_trust(&["ecs-tasks.amazonaws.com"]).to_string(),
            )
            .send()
            .await
            .unwrap();
    }
    let ctx = stack.ctx(false).await;
    let report = ecskit::step::run::<ecskit::role_create::RoleCreate>(
        &ctx,
        &args(
            &stack,
            &[
                "--name",
                "web",
                "--task-role-name",
                "console-task",
                "--execution-role-name",
                "console-execution",
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(ctx.calls().mutating(), vec![]);
    assert!(!report.changed, "{:?}", report.actions);
    assert_eq!(
        report.get_str("TASK_ROLE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:role/service/console-task")
    );
    assert_eq!(
        report.get_str("EXECUTION_ROLE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:role/service/console-execution")
    );
    assert!(attached(&stack, "console-execution").await.is_empty());
}

/// A role this run created is what CreateRole answered, with no policy: it is not read again
/// (no GetRole beyond the check and the wait, no listing of its policies).
#[tokio::test]
async fn a_role_just_created_is_not_read_again() {
    let stack = ecskit_testkit::local_stack();
    let a = args(&stack, &["--name", "lean", "--bucket", "cfg-bucket"]);
    let ctx = stack.ctx(false).await;
    ecskit::step::run::<RoleCreate>(&ctx, &a).await.unwrap();
    let ops: Vec<String> = ctx
        .calls()
        .calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    let count = |op: &str| ops.iter().filter(|o| *o == op).count();
    assert_eq!(count("CreateRole"), 2, "{ops:?}");
    assert_eq!(count("ListRolePolicies"), 0, "{ops:?}");
    assert_eq!(count("ListAttachedRolePolicies"), 0, "{ops:?}");
    // Per role: the check before any change, and the wait for it to be visible.
    assert_eq!(count("GetRole"), 4, "{ops:?}");
}
