//! `task-run --local` against the local stack: the task runs for real on the private Docker
//! Engine, with credentials from the task-role endpoint, secrets from SSM and Secrets Manager,
//! a dependsOn-ordered shared volume and the exit-code contract; an interrupted run and a task
//! it cannot run leave nothing behind.
//!
//! Its size (about 850 lines): each test is a whole run on the engine with the task definition
//! it needs written out, and the tests share one lock on the stack (one local task at a time);
//! the credentials endpoint, the signals and the leftovers each take several runs to show.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Command, Stdio};

use bollard::Docker;
use clap::Parser;
use futures_util::StreamExt;
use sha2::Digest;

/// The busybox image every container of these tests runs (from Debian's busybox-static, which
/// `cargo xtask local up` installs): its CMD sleeps, so it also serves as the pause image.
const IMAGE: &str = "ecskit-test/busybox:local";

async fn docker() -> Docker {
    Docker::connect_with_defaults()
        .expect("DOCKER_HOST")
        // bollard's default is 2 minutes a request: a build on a busy 2-core machine can take
        // longer, and a slow engine is not what these tests test.
        .with_timeout(std::time::Duration::from_secs(600))
        .negotiate_version()
        .await
        .expect("the local stack's Docker Engine answers")
}

/// Builds [`IMAGE`] from scratch with the host's static busybox.
async fn busybox_image() {
    let docker = docker().await;
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox (Debian's busybox-static; `cargo xtask local up` installs it)");
    let mut context = tar::Builder::new(Vec::new());
    let dockerfile =
        b"FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"86400\"]\n";
    for (path, body, mode) in [
        ("Dockerfile", &dockerfile[..], 0o644),
        ("busybox", &busybox[..], 0o755),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        context.append_data(&mut header, path, body).unwrap();
    }
    let options = bollard::query_parameters::BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(IMAGE)
        .rm(true)
        .build();
    let context = context.into_inner().unwrap();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        item.expect("building the busybox image");
    }
}

/// Containers, networks and volumes a local run labelled.
async fn leftovers() -> (usize, usize, usize) {
    labelled("ecskit.local-task").await
}

/// Containers, networks and volumes with this label (`KEY` or `KEY=VALUE`).
async fn labelled(label: &str) -> (usize, usize, usize) {
    let docker = docker().await;
    let filter = HashMap::from([("label".to_string(), vec![label.to_string()])]);
    let containers = docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap();
    let networks = docker
        .list_networks(Some(
            bollard::query_parameters::ListNetworksOptionsBuilder::new()
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap();
    let volumes = docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::new()
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap();
    (
        containers.len(),
        networks.len(),
        volumes.volumes.unwrap_or_default().len(),
    )
}

/// Registers a task definition document as written (through taskdef-register's library).
async fn register(stack: &ecskit_testkit::LocalStack, doc: serde_json::Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("td.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let mut args = ecskit::taskdef_register::Args::try_parse_from([
        "taskdef-register",
        "--file",
        path.to_str().unwrap(),
    ])
    .unwrap();
    args.aws = stack.aws_args();
    let ctx = stack.ctx(false).await;
    let report = ecskit::step::run::<ecskit::taskdef_register::TaskdefRegister>(&ctx, &args)
        .await
        .unwrap();
    report.get_str("TASK_DEFINITION_ARN").unwrap()
}

/// A role ECS tasks may assume (the local run assumes it as the caller: moto checks no trust).
async fn task_role(ctx: &ecskit::aws::Ctx, name: &str) -> String {
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    ctx.iam()
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn
}

fn task_run(stack: &ecskit_testkit::LocalStack) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_task-run"));
    cmd.env("AWS_ENDPOINT_URL", &stack.moto_url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("ECSKIT_LOCAL_PAUSE_IMAGE", IMAGE)
        .env_remove("ECSKIT_TASK_DEFINITION_ARN")
        .env_remove("ECSKIT_CLUSTER")
        .env_remove("ECSKIT_SERVICE");
    cmd
}

fn sh(script: &str) -> serde_json::Value {
    serde_json::json!(["/bin/busybox", "sh", "-c", script])
}

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

#[test]
fn a_task_runs_with_its_role_secrets_volume_and_order_and_exit_3_names_the_container() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ssm_value = "ssm-value-never-printed";
    let sm_value = "sm-value-never-printed";
    let td = rt.block_on(async {
        busybox_image().await;
        let ctx = stack.ctx(false).await;
        let roles = [
            task_role(&ctx, "local-task").await,
            task_role(&ctx, "local-exec").await,
        ];
        ctx.ssm()
            .put_parameter()
            .name("/local/db-password")
            .value(ssm_value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
        let secret = ctx
            .secrets_manager()
            .create_secret()
            .name("local/api")
            .secret_string(serde_json::json!({"key": sm_value}).to_string())
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        let check = |var: &str, value: &str| {
            format!(
                "[ \"$(printf %s \"${var}\" | /bin/busybox sha256sum | /bin/busybox cut -c1-64)\" = {} ] && echo {var} arrived",
                sha256_hex(value)
            )
        };
        let app = format!(
            "/bin/busybox cat /shared/flag; \
             /bin/busybox wget -q -O - http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI | /bin/busybox grep -o '\"RoleArn\": *\"[^\"]*\"'; \
             /bin/busybox wget -q -O - http://169.254.170.2/v2/credentials/not-the-path 2>&1; \
             {}; {}; exit 7",
            check("DB_PASSWORD", ssm_value),
            check("API_KEY", sm_value)
        );
        register(
            &stack,
            serde_json::json!({
                "family": "local-run",
                "taskRoleArn": roles[0],
                "executionRoleArn": roles[1],
                "networkMode": "awsvpc",
                "volumes": [{"name": "shared"}],
                "containerDefinitions": [
                    {"name": "app", "image": IMAGE, "essential": true, "memory": 64,
                     "command": sh(&app),
                     "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
                     "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared"}],
                     "secrets": [
                        {"name": "DB_PASSWORD", "valueFrom": "/local/db-password"},
                        {"name": "API_KEY", "valueFrom": format!("{secret}:key::")}
                     ]},
                    {"name": "init", "image": IMAGE, "essential": false, "memory": 64,
                     "command": sh("echo written by init > /shared/flag"),
                     "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared"}]},
                    {"name": "sidecar", "image": IMAGE, "essential": false, "memory": 64,
                     "command": sh("echo sidecar leaves early; exit 1")}
                ]
            }),
        )
        .await
    });

    let out = task_run(&stack)
        .args(["--local", "--task-definition", &td, "--output", "json"])
        .args(["--credentials-uri", "relative"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    // The init container wrote the file before app started; app read it from the volume.
    assert!(stderr.contains("[app] written by init"), "{stderr}");
    // The seed's curl, as busybox wget: the task role's credentials from the endpoint.
    assert!(
        stderr.contains("[app] \"RoleArn\":\"arn:aws:iam::123456789012:role/local-task\""),
        "{stderr}"
    );
    // Which form the run uses is said; a wrong path is 404 (the path is the secret here).
    assert!(
        stderr.contains("credentials served through AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, on port 80 of 169.254.170.2 (--credentials-uri relative)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[app] wget: server returned error: HTTP/1.1 404 Not Found"),
        "{stderr}"
    );
    assert!(
        stderr.contains("secrets and environment files are read with the execution role arn:aws:iam::123456789012:role/local-exec"),
        "{stderr}"
    );
    assert!(stderr.contains("[app] DB_PASSWORD arrived"), "{stderr}");
    assert!(stderr.contains("[app] API_KEY arrived"), "{stderr}");
    // A non-essential container's exit does not stop the task.
    assert!(
        stderr.contains("[sidecar] sidecar leaves early"),
        "{stderr}"
    );
    assert!(
        stderr.contains("essential container app exited with code 7"),
        "{stderr}"
    );
    for secret in [ssm_value, sm_value] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["exit_code"], 7);
    let app = v["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "app")
        .unwrap();
    assert_eq!(app["exit_code"], 7);
    assert!(
        v["task_arn"]
            .as_str()
            .unwrap()
            .starts_with("local/local-run/")
    );
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

/// Registers a task of one essential container running `script` (busybox sh) with this
/// stopTimeout and a task volume, as the interrupt tests need.
async fn sleeper(stack: &ecskit_testkit::LocalStack, script: &str, stop_timeout: i64) -> String {
    busybox_image().await;
    register(
        stack,
        serde_json::json!({
            "family": "local-sleep",
            "volumes": [{"name": "scratch"}],
            "containerDefinitions": [
                {"name": "app", "image": IMAGE, "essential": true, "memory": 64,
                 "stopTimeout": stop_timeout,
                 "command": sh(script),
                 "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"}]}
            ]
        }),
    )
    .await
}

/// Starts `task-run --local` and feeds each stderr line to `on_line` (with the child's pid)
/// until the run ends; the exit code, all of stderr, and how long the run took after the first
/// signal `on_line` reported sending.
fn watch_run(
    cmd: &mut Command,
    mut on_line: impl FnMut(&str, u32) -> bool,
) -> (Option<i32>, String, Option<std::time::Duration>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut signalled = None;
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push(line.clone());
        if on_line(&line, pid) && signalled.is_none() {
            signalled = Some(std::time::Instant::now());
        }
    }
    let status = child.wait().unwrap();
    (
        status.code(),
        seen.join("\n"),
        signalled.map(|t| t.elapsed()),
    )
}

fn signal(name: &str, pid: u32) {
    assert!(
        Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn an_interrupted_task_is_stopped_exits_130_and_leaves_nothing_behind() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(sleeper(&stack, "echo up; exec /bin/busybox sleep 300", 2));
    let (code, text, _) = watch_run(
        task_run(&stack).args(["--local", "--task-definition", &td]),
        |line, pid| {
            if line.contains("[app] up") {
                let during = rt.block_on(leftovers());
                assert_eq!(
                    during,
                    (2, 1, 1),
                    "the app, the pause container, the network, the volume"
                );
                signal("INT", pid);
                return true;
            }
            false
        },
    );
    assert!(text.contains("SIGINT: stopping the task"), "{text}");
    // Ctrl-C is the user's decision, not a failed task: 130, as a shell reports it.
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("error: interrupted by SIGINT"), "{text}");
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

#[test]
fn a_signal_before_the_first_start_still_removes_the_network_and_exits_130() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(sleeper(&stack, "echo up; exec /bin/busybox sleep 300", 2));
    let (code, text, _) = watch_run(
        task_run(&stack).args(["--local", "--task-definition", &td]),
        |line, pid| {
            // SIGHUP (the terminal closed) the moment the first resource exists.
            if line.contains("created the task network") {
                signal("HUP", pid);
                return true;
            }
            false
        },
    );
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("SIGHUP: stopping the task"), "{text}");
    assert!(!text.contains("started app"), "{text}");
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

#[test]
fn a_second_signal_kills_the_task_at_once() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // PID 1 of a container ignores SIGTERM it has no handler for: only SIGKILL, after the
    // stopTimeout of 120 s, would end it.
    let td = rt.block_on(sleeper(&stack, "echo up; exec /bin/busybox sleep 300", 120));
    let (code, text, took) = watch_run(
        task_run(&stack).args(["--local", "--task-definition", &td]),
        |line, pid| {
            if line.contains("[app] up") {
                signal("TERM", pid);
                return true;
            }
            if line.contains("SIGTERM: stopping the task") {
                signal("INT", pid);
            }
            false
        },
    );
    assert_eq!(code, Some(130), "{text}");
    assert!(
        text.contains("SIGINT again: killing the task's containers now"),
        "{text}"
    );
    let took = took.unwrap();
    assert!(
        took < std::time::Duration::from_secs(30),
        "the run took {took:?} after the first signal: {text}"
    );
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

#[test]
fn a_panic_after_the_first_resource_removes_what_the_run_made() {
    use ecskit::task_run::local::cleanup::{Guard, Owner};
    let _stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // An id of this test run's own: counted by it, what any other run left does not count.
    let id = format!("panic{}", std::process::id());
    let mine = format!("ecskit.local-task={id}");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _guard = Guard::new(&id, &ecskit::progress::Progress::plain());
        rt.block_on(make_run_resources(&id, Owner::this().labels(&id), false));
        assert_eq!(rt.block_on(labelled(&mine)), (1, 1, 1));
        panic!("a bug in the local run");
    }));
    assert!(caught.is_err());
    assert_eq!(rt.block_on(labelled(&mine)), (0, 0, 0));
}

/// A network (on a subnet of its own unless `task_subnet`), a created container and a volume
/// labelled as run `id` made them (`labels`: its owner's): what a run leaves when it is killed outright.
async fn make_run_resources(
    id: &str,
    labels: HashMap<String, String>,
    task_subnet: bool,
) -> String {
    busybox_image().await;
    let docker = docker().await;
    let network = format!("ecskit-{id}-net");
    let subnet = if task_subnet {
        "169.254.170.0/24"
    } else {
        "10.254.77.0/24"
    };
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: network.clone(),
            driver: Some("bridge".into()),
            ipam: Some(bollard::models::Ipam {
                config: Some(vec![bollard::models::IpamConfig {
                    subnet: Some(subnet.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(&format!("ecskit-{id}-app"))
                    .build(),
            ),
            bollard::models::ContainerCreateBody {
                image: Some(IMAGE.into()),
                labels: Some(labels.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    docker
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(format!("ecskit-{id}-vol-scratch")),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .unwrap();
    network
}

/// Carries out the `docker rm -f`, `docker network rm` and `docker volume rm` lines a refusal
/// printed, word for word, through the engine's API (the CLI need not be installed).
async fn run_printed_commands(stderr: &str) -> usize {
    let docker = docker().await;
    let mut done = 0;
    for line in stderr.lines().map(str::trim) {
        let (names, what) = if let Some(rest) = line.strip_prefix("docker rm -f ") {
            (rest, "container")
        } else if let Some(rest) = line.strip_prefix("docker network rm ") {
            (rest, "network")
        } else if let Some(rest) = line.strip_prefix("docker volume rm ") {
            (rest, "volume")
        } else {
            continue;
        };
        for name in names.split_whitespace() {
            match what {
                "container" => docker
                    .remove_container(
                        name,
                        Some(
                            bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                                .force(true)
                                .build(),
                        ),
                    )
                    .await
                    .unwrap(),
                "network" => docker.remove_network(name).await.unwrap(),
                _ => docker
                    .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
                    .await
                    .unwrap(),
            }
            done += 1;
        }
    }
    done
}

/// A pid that has ended: a child that ran and was reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

async fn quick_task(stack: &ecskit_testkit::LocalStack) -> String {
    busybox_image().await;
    register(
        stack,
        serde_json::json!({
            "family": "local-quick",
            "containerDefinitions": [
                {"name": "app", "image": IMAGE, "essential": true, "memory": 64,
                 "command": sh("echo quick")}
            ]
        }),
    )
    .await
}

#[test]
fn leftovers_of_a_dead_run_of_this_host_are_removed_before_the_next_run() {
    use ecskit::task_run::local::cleanup::Owner;
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(quick_task(&stack));
    let pid = dead_pid();
    let dead = Owner {
        pid,
        ..Owner::this()
    };
    // On the task subnet: the run can only start once it is gone.
    rt.block_on(make_run_resources(
        "deadrun00001",
        dead.labels("deadrun00001"),
        true,
    ));
    let out = task_run(&stack)
        .args(["--local", "--task-definition", &td])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "removing what the local run deadrun00001 left behind (its process {pid} has ended)"
        )),
        "{stderr}"
    );
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

#[test]
fn leftovers_of_another_host_are_not_removed_and_the_refusal_says_how() {
    use ecskit::task_run::local::cleanup::Owner;
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(quick_task(&stack));
    // Its pid does not exist here, which says nothing about the other machine.
    let other = Owner {
        host: "another-machine-id".into(),
        pid: dead_pid(),
        ..Owner::this()
    };
    let network = rt.block_on(make_run_resources(
        "otherhost001",
        other.labels("otherhost001"),
        true,
    ));
    let out = task_run(&stack)
        .args(["--local", "--task-definition", &td])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("a run on another host or in another PID namespace (another-machine-id)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("docker network rm {network}")),
        "{stderr}"
    );
    assert_eq!(rt.block_on(leftovers()), (1, 1, 1), "nothing of it removed");
    assert_eq!(rt.block_on(run_printed_commands(&stderr)), 3);
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

#[test]
fn an_empty_pid_label_is_in_the_way_until_the_printed_commands_remove_it() {
    use ecskit::task_run::local::cleanup::{Owner, PID_LABEL};
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(quick_task(&stack));
    let mut labels = Owner::this().labels("emptypid0001");
    labels.insert(PID_LABEL.to_string(), String::new());
    rt.block_on(make_run_resources("emptypid0001", labels, true));
    let out = task_run(&stack)
        .args(["--local", "--task-definition", &td])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unprovable, so not removed; refused with what is in the way and how to remove it.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pid label is empty"), "{stderr}");
    assert!(
        stderr.contains("docker network rm ecskit-emptypid0001-net"),
        "{stderr}"
    );
    assert!(rt.block_on(run_printed_commands(&stderr)) >= 1);
    let again = task_run(&stack)
        .args(["--local", "--task-definition", &td])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{stderr}");
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

#[test]
fn a_task_that_cannot_run_locally_exits_2_naming_the_fields_and_starts_nothing() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(register(
        &stack,
        serde_json::json!({
            "family": "local-windows",
            "runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2019_CORE"},
            "containerDefinitions": [
                {"name": "app", "image": IMAGE, "essential": true, "memory": 64,
                 "resourceRequirements": [{"type": "GPU", "value": "1"}]}
            ]
        }),
    ));
    let out = task_run(&stack)
        .args(["--local", "--task-definition", &td])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("runtimePlatform.operatingSystemFamily: WINDOWS_SERVER_2019_CORE"),
        "{stderr}"
    );
    assert!(
        stderr.contains("containerDefinitions[0].resourceRequirements[0]"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

/// An HTTP request from this host (not the task) to 169.254.170.2:`port`: the status line of
/// the answer, or "" when the connection was closed without one.
fn from_the_host(port: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(format!("169.254.170.2:{port}")).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let _ = conn
        .write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: 169.254.170.2\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_full_uri_needs_its_token_and_only_the_task_is_answered() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(async {
        busybox_image().await;
        let ctx = stack.ctx(false).await;
        let role = task_role(&ctx, "local-full-uri").await;
        // Each answer's status line, then the two ports for the test to knock on from the host;
        // the task lives on a few seconds meanwhile.
        let script = r#"w() { /bin/busybox wget -q -O - "$@" 2>&1 | /bin/busybox head -c 120; echo; }
u=$AWS_CONTAINER_CREDENTIALS_FULL_URI
a="Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN"
echo "no token: $(w "$u")"
echo "wrong token: $(w --header "Authorization: x$AWS_CONTAINER_AUTHORIZATION_TOKEN" "$u")"
echo "with token: $(w --header "$a" "$u" | /bin/busybox grep -o RoleArn)"
echo "wrong path: $(w --header "$a" "$(echo "$u" | /bin/busybox sed 's,/[^/]*$,/not-the-path,')")"
port() { echo "$1" | /bin/busybox cut -d: -f3 | /bin/busybox cut -d/ -f1; }
echo "ports $(port "$u") $(port "$AWS_ENDPOINT_URL")"
/bin/busybox sleep 6"#;
        register(
            &stack,
            serde_json::json!({
                "family": "local-full-uri",
                "taskRoleArn": role,
                "containerDefinitions": [
                    {"name": "app", "image": IMAGE, "essential": true, "memory": 64,
                     "command": sh(script)}
                ]
            }),
        )
        .await
    });
    let mut from_host = Vec::new();
    let (code, text, _) = watch_run(
        task_run(&stack).args([
            "--local",
            "--task-definition",
            &td,
            "--credentials-uri",
            "full",
        ]),
        |line, _| {
            if let Some(ports) = line.strip_prefix("[app] ports ") {
                for port in ports.split_whitespace() {
                    from_host.push(from_the_host(port));
                }
            }
            false
        },
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("credentials served through AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN, on port "),
        "{text}"
    );
    assert!(text.contains("(--credentials-uri full)"), "{text}");
    assert!(
        text.contains("[app] no token: wget: server returned error: HTTP/1.1 401 Unauthorized"),
        "{text}"
    );
    assert!(
        text.contains("[app] wrong token: wget: server returned error: HTTP/1.1 401 Unauthorized"),
        "{text}"
    );
    assert!(text.contains("[app] with token: RoleArn"), "{text}");
    assert!(
        text.contains("[app] wrong path: wget: server returned error: HTTP/1.1 404 Not Found"),
        "{text}"
    );
    // This host is not the task: the endpoint refuses it, the forwarder to moto closes on it.
    assert_eq!(
        from_host,
        ["HTTP/1.1 403 Forbidden".to_string(), String::new()],
        "{text}"
    );
    assert!(
        text.contains("refused a connection to the credentials endpoint from 169.254.170.2:"),
        "{text}"
    );
    assert!(
        text.contains("refused a connection to the AWS endpoint forwarder from 169.254.170.2:"),
        "{text}"
    );
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

#[test]
fn a_secret_stored_as_binary_is_refused_by_name_before_anything_is_made() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(async {
        busybox_image().await;
        let ctx = stack.ctx(false).await;
        let exec_role = task_role(&ctx, "local-binary-exec").await;
        let arn = ctx
            .secrets_manager()
            .create_secret()
            .name("local/binary")
            .secret_binary(vec![0u8, 159, 146, 150].into())
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        register(
            &stack,
            serde_json::json!({
                "family": "local-binary-secret",
                "executionRoleArn": exec_role,
                "containerDefinitions": [
                    {"name": "app", "image": IMAGE, "essential": true, "memory": 64,
                     "command": sh("echo the variable is [$CERT]"),
                     "secrets": [{"name": "CERT", "valueFrom": arn}]}
                ]
            }),
        )
        .await
    });
    let out = task_run(&stack)
        .args(["--local", "--task-definition", &td])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("container app, secret CERT: the secret arn:aws:secretsmanager:"),
        "{stderr}"
    );
    assert!(stderr.contains("is stored as SecretBinary"), "{stderr}");
    assert!(!stderr.contains("created the task network"), "{stderr}");
    assert!(!stderr.contains("the variable is"), "{stderr}");
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}

/// A task that ran and failed still answers a CI step that goes on `if: failure()`: with
/// `--output env` and `github` its outputs are on stdout (task, exit codes, the reason), as
/// they are for a success.
#[test]
fn a_failed_task_prints_its_outputs_in_env_and_github_forms() {
    let stack = ecskit_testkit::local_stack();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let td = rt.block_on(async {
        busybox_image().await;
        register(
            &stack,
            serde_json::json!({
                "family": "local-fails",
                "containerDefinitions": [
                    {"name": "log-router", "image": IMAGE, "essential": true, "memory": 64,
                     "command": sh("echo failing; exit 4")}
                ]
            }),
        )
        .await
    });
    let out = task_run(&stack)
        .args(["--local", "--task-definition", &td, "--output", "env"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let env: std::collections::HashMap<String, String> = ecskit_contract::env::parse_lines(&stdout)
        .unwrap()
        .into_iter()
        .collect();
    assert!(
        env["ECSKIT_TASK_ARN"].starts_with("local/local-fails/"),
        "{stdout}"
    );
    assert_eq!(env["ECSKIT_EXIT_CODE"], "4", "{stdout}");
    assert_eq!(env["ECSKIT_EXIT_CODE_LOG_ROUTER"], "4", "{stdout}");
    assert!(
        env["ECSKIT_FAILURE"].contains("essential container log-router exited with code 4"),
        "{stdout}"
    );
    let out = task_run(&stack)
        .args(["--local", "--task-definition", &td, "--output", "github"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout.lines().any(|l| l == "exit_code_log_router=4"),
        "{stdout}"
    );
    assert_eq!(rt.block_on(leftovers()), (0, 0, 0));
}
