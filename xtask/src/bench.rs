//! `cargo xtask bench`: wall time and AWS API calls of three deploys against the local stack,
//! each beside the same work done the way the seed documents do it, one `aws` CLI call per
//! step, in the same run:
//!
//! - (a) a first deploy, leaving out the image upload and the waiting (both are timed apart:
//!   the upload is Docker's work on either side, and the waiting is ECS's);
//! - (b) a re-deploy with nothing changed;
//! - (c) a re-deploy after a new image (upload included on both sides).
//!
//! The ecskit side runs the chain exactly as `cargo xtask deploy` does (prebuilt binaries as
//! processes, stage 0 concurrent) and counts calls from the binaries' call logs. The CLI side
//! runs the aws CLI from the stack's venv with `--endpoint-url`; each call is one API operation
//! (an `s3 cp` of N files is N PutObject calls). Both sides use their own names, with a suffix
//! unique to the run, so they never see each other's resources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::demo;
use crate::deploy::{self, Calls, Runner, Step, StepResult};
use crate::local::{self, State};
use crate::stack::Stack;
use crate::util::{self, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep what the benchmark created (default: the ecskit side is destroyed at the end).
    #[arg(long)]
    pub keep: bool,
}

/// One measured run of one side.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measure {
    pub time: Duration,
    pub calls: Calls,
}

/// The figures of one case: ecskit beside the CLI way.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub case: &'static str,
    pub ecskit: Measure,
    pub cli: Measure,
}

impl Row {
    /// How many times faster ecskit was.
    pub fn speedup(&self) -> f64 {
        let e = self.ecskit.time.as_secs_f64();
        if e <= 0.0 {
            return f64::INFINITY;
        }
        self.cli.time.as_secs_f64() / e
    }
}

/// The table for README, in Markdown, with the targets checked below it.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| case | ecskit time | ecskit calls (mutating) | aws CLI time | aws CLI calls (mutating) | ecskit speed-up |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {:.2} s | {} ({}) | {:.2} s | {} ({}) | {:.1}x |\n",
            r.case,
            r.ecskit.time.as_secs_f64(),
            r.ecskit.calls.total,
            r.ecskit.calls.mutating,
            r.cli.time.as_secs_f64(),
            r.cli.calls.total,
            r.cli.calls.mutating,
            r.speedup()
        ));
    }
    out
}

/// The issue's targets: (b) zero mutating calls and under 0.5 s; (a) at least 20x.
pub fn targets(first: &Row, no_change: &Row) -> Vec<(String, bool)> {
    vec![
        (
            format!(
                "no-change re-deploy makes zero mutating calls ({})",
                no_change.ecskit.calls.mutating
            ),
            no_change.ecskit.calls.mutating == 0,
        ),
        (
            format!(
                "no-change re-deploy under 0.5 s ({:.3} s)",
                no_change.ecskit.time.as_secs_f64()
            ),
            no_change.ecskit.time < Duration::from_millis(500),
        ),
        (
            format!(
                "first deploy at least 20x faster than the CLI way ({:.1}x)",
                first.speedup()
            ),
            first.speedup() >= 20.0,
        ),
    ]
}

pub fn main(args: Args) -> ExitCode {
    match bench(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("xtask bench: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn bench(args: &Args) -> Result<bool> {
    let (state, _) = local::up()?;
    let run_id = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() % 1_000_000)
            .unwrap_or(0)
    );
    let dir = std::env::temp_dir().join(format!("ecskit-bench-{run_id}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let examples = util::workspace_root().join("examples");

    // Both sides deploy the example stack, under their own names.
    let ecskit_app = format!("bench-ecskit-{run_id}");
    let cli_app = format!("bench-cli-{run_id}");
    let image = format!("ecskit-bench:{run_id}");
    let stack_path = dir.join("ecskit.toml");
    std::fs::write(
        &stack_path,
        format!(
            r#"[app]
name = "{ecskit_app}"
region = "{region}"
[image]
source = "{image}"
tags = ["{run_id}"]
[roles]
bucket = "{ecskit_app}"
prefix = "config"
[config]
files = ["{config}"]
[task_definition]
file = "{taskdef}"
family = "{ecskit_app}"
[service]
count = 1
wait = false
"#,
            region = local::REGION,
            config = examples.join("config").display(),
            taskdef = dir.join("taskdef.json").display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    let taskdef = std::fs::read_to_string(examples.join("taskdef.json"))
        .map_err(|e| e.to_string())?
        .replace(
            "\"family\": \"ecskit-demo\"",
            "\"family\": \"${BENCH_FAMILY}\"",
        );
    std::fs::write(dir.join("taskdef.json"), &taskdef).map_err(|e| e.to_string())?;
    let stack = deploy::load_stack(&stack_path).map_err(|(e, _)| e)?;

    eprintln!("bench: building the image and the binaries");
    demo::build_image(&state, &image, "1\n")?;
    let steps = deploy::stack_steps(&stack);
    let mut runner = Runner::new(&steps, &stack.region, false)?;
    demo::local_runner(&mut runner, &state);
    runner.quiet = true;
    runner
        .base_env
        .push(("BENCH_FAMILY".into(), ecskit_app.clone()));
    let cli = Cli::new(&state, &cli_app, &dir, &examples)?;

    // moto answers its first EC2 call slowly (2.5 s): warm both clients up outside the clock.
    cli.call("ec2", &["describe-vpcs"], "DescribeVpcs")?;
    cli.call("sts", &["get-caller-identity"], "GetCallerIdentity")?;

    // Image upload, apart: ecskit's image-push beside aws ecr get-login-password + docker push.
    eprintln!("bench: image upload");
    let mut env = BTreeMap::new();
    let push = chain(&runner, &stack, &[Step::ImagePush], &mut env)?;
    let cli_repo = cli.create_repository()?;
    let cli_push = cli.push(&image, &cli_repo)?;

    eprintln!("bench: (a) first deploy");
    let rest: Vec<Step> = steps
        .iter()
        .copied()
        .filter(|s| *s != Step::ImagePush)
        .collect();
    let first = chain(&runner, &stack, &rest, &mut env)?;
    let cli_first = cli.first_deploy(&cli_push.1)?;

    eprintln!("bench: (b) no-change re-deploy");
    let mut env_b = BTreeMap::new();
    let no_change = chain(&runner, &stack, &steps, &mut env_b)?;
    let cli_no_change = cli.redeploy(&cli_push.1)?;

    eprintln!("bench: (c) re-deploy after a new image");
    demo::build_image(&state, &image, "2\n")?;
    let mut env_c = BTreeMap::new();
    let new_image = chain(&runner, &stack, &steps, &mut env_c)?;
    let cli_new_image = {
        let start = Instant::now();
        let (m, uri) = cli.push(&image, &cli_repo)?;
        let td = cli.register_task_definition(&uri)?;
        let up = cli.update_service(&td.0)?;
        Measure {
            time: start.elapsed(),
            calls: m.calls + td.1 + up,
        }
    };

    let rows = vec![
        Row {
            case: "image upload (apart)",
            ecskit: push,
            cli: cli_push.0,
        },
        Row {
            case: "(a) first deploy, without image upload and waiting",
            ecskit: first,
            cli: cli_first,
        },
        Row {
            case: "(b) re-deploy, nothing changed",
            ecskit: no_change,
            cli: cli_no_change,
        },
        Row {
            case: "(c) re-deploy after a new image",
            ecskit: new_image,
            cli: cli_new_image,
        },
    ];
    println!("{}", render(&rows));
    let checks = targets(&rows[1], &rows[2]);
    for (what, ok) in &checks {
        println!("{} {what}", if *ok { "[met]   " } else { "[MISSED]" });
    }
    println!(
        "\nmeasured on the local stack (moto {}): the aws CLI way is one process per call (~0.7 s of start-up each); \
         the re-deploy the CLI way re-applies each step (a script cannot tell what changed).",
        local::MOTO_VERSION
    );
    if !args.keep {
        eprintln!("bench: removing the ecskit side");
        let code = crate::destroy::destroy(&stack, false, deploy::Format::Json, Some(&state));
        if code != ExitCode::SUCCESS {
            eprintln!("bench: warning: destroy failed; the local stack keeps the bench resources");
        } else {
            // The stack file and images' work files: kept with --keep, for a later destroy.
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let _ = std::fs::remove_dir_all(&runner.log_dir);
    Ok(checks.iter().all(|(_, ok)| *ok))
}

/// Runs steps as the deploy does and measures them; a failing step fails the benchmark.
fn chain(
    runner: &Runner,
    stack: &Stack,
    steps: &[Step],
    env: &mut BTreeMap<String, String>,
) -> Result<Measure> {
    let start = Instant::now();
    let results = deploy::run_chain(runner, stack, steps, env);
    let time = start.elapsed();
    if let Some(r) = results.iter().find(|r| r.code != 0) {
        return Err(failure(r));
    }
    Ok(Measure {
        time,
        calls: results.iter().fold(Calls::default(), |a, r| a + r.calls),
    })
}

fn failure(r: &StepResult) -> String {
    format!(
        "{} failed (exit {}):\n{}",
        r.step.name(),
        r.code,
        r.error.clone().unwrap_or_default()
    )
}

/// The seeds' way: one `aws` CLI process per call.
struct Cli {
    aws: PathBuf,
    endpoint: String,
    env: Vec<(&'static str, String)>,
    app: String,
    dir: PathBuf,
    examples: PathBuf,
    registry: String,
    docker_host: String,
    account: String,
}

impl Cli {
    fn new(state: &State, app: &str, dir: &Path, examples: &Path) -> Result<Cli> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let aws = cache
            .join("ecskit")
            .join(format!("venv-moto-{}", local::MOTO_VERSION))
            .join("bin/aws");
        if !aws.exists() {
            return Err(format!(
                "{} is missing: `cargo xtask local up` installs it",
                aws.display()
            ));
        }
        Ok(Cli {
            aws,
            endpoint: state.moto_url(),
            env: state.env(),
            app: app.to_string(),
            dir: dir.to_path_buf(),
            examples: examples.to_path_buf(),
            registry: format!("127.0.0.1:{}", state.registry_port),
            docker_host: state.docker_host.clone(),
            account: "123456789012".into(),
        })
    }

    /// One aws CLI call; returns its JSON answer (Null when it printed nothing).
    fn call(&self, service: &str, args: &[&str], _operation: &str) -> Result<Value> {
        let mut cmd = Command::new(&self.aws);
        cmd.arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(["--region", local::REGION, "--output", "json", service])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null());
        let out = util::output(&mut cmd)?;
        if out.trim().is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_str(&out).map_err(|e| format!("aws {service}: {e}"))
        }
    }

    fn file(&self, name: &str, text: &str) -> Result<String> {
        let p = self.dir.join(name);
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        Ok(format!("file://{}", p.display()))
    }

    fn create_repository(&self) -> Result<String> {
        let v = self.call(
            "ecr",
            &[
                "create-repository",
                "--repository-name",
                &self.app,
                "--tags",
                "Key=managed-by,Value=ecskit",
                "--encryption-configuration",
                "encryptionType=AES256",
            ],
            "CreateRepository",
        )?;
        Ok(v["repository"]["repositoryName"]
            .as_str()
            .unwrap_or(&self.app)
            .to_string())
    }

    /// `aws ecr get-login-password | docker login`, `docker tag`, `docker push`: the vendor
    /// guide's way. Returns the measure and the pushed image's URI (by tag).
    fn push(&self, image: &str, repo: &str) -> Result<(Measure, String)> {
        let start = Instant::now();
        let mut cmd = Command::new(&self.aws);
        cmd.arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(["--region", local::REGION, "ecr", "get-login-password"])
            .envs(self.env.iter().map(|(k, v)| (*k, v)));
        let password = util::output(&mut cmd)?;
        // The login goes to a config dir of the run, not to the user's ~/.docker.
        let config = self.dir.join("docker-config");
        let docker = |args: &[&str], stdin: Option<&str>| -> Result<()> {
            let mut c = Command::new("docker");
            c.env("DOCKER_HOST", &self.docker_host)
                .arg("--config")
                .arg(&config)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            if stdin.is_some() {
                c.stdin(Stdio::piped());
            }
            let mut child = c.spawn().map_err(|e| format!("docker: {e}"))?;
            if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
                use std::io::Write;
                input
                    .write_all(text.as_bytes())
                    .map_err(|e| e.to_string())?;
            }
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "docker {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        docker(
            &[
                "login",
                "--username",
                "AWS",
                "--password-stdin",
                &self.registry,
            ],
            Some(password.trim()),
        )?;
        let uri = format!("{}/{repo}:latest", self.registry);
        docker(&["tag", image, &uri], None)?;
        docker(&["push", &uri], None)?;
        let _ = std::fs::remove_dir_all(&config);
        Ok((
            Measure {
                time: start.elapsed(),
                calls: Calls {
                    total: 1,
                    mutating: 0,
                },
            },
            uri,
        ))
    }

    fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.account)
    }

    fn first_deploy(&self, image_uri: &str) -> Result<Measure> {
        let start = Instant::now();
        let mut calls = Calls::default();
        let trust = self.file(
            "trust.json",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )?;
        let task = format!("{}-task", self.app);
        let exec = format!("{}-execution", self.app);
        for role in [&task, &exec] {
            self.call(
                "iam",
                &[
                    "create-role",
                    "--role-name",
                    role,
                    "--assume-role-policy-document",
                    &trust,
                    "--tags",
                    "Key=managed-by,Value=ecskit",
                ],
                "CreateRole",
            )?;
            calls.total += 1;
            calls.mutating += 1;
        }
        calls = calls + self.apply_role_policies()?;
        calls = calls + self.create_bucket()?;
        calls = calls + self.bucket_settings()?;
        calls = calls + self.upload_config()?;
        let subnets = self.call(
            "ec2",
            &[
                "describe-subnets",
                "--filters",
                "Name=default-for-az,Values=true",
            ],
            "DescribeSubnets",
        )?;
        let groups = self.call(
            "ec2",
            &[
                "describe-security-groups",
                "--filters",
                "Name=group-name,Values=default",
            ],
            "DescribeSecurityGroups",
        )?;
        calls.total += 2;
        self.call(
            "ecs",
            &[
                "create-cluster",
                "--cluster-name",
                &self.app,
                "--capacity-providers",
                "FARGATE",
                "FARGATE_SPOT",
                "--tags",
                "key=managed-by,value=ecskit",
            ],
            "CreateCluster",
        )?;
        calls = calls
            + Calls {
                total: 1,
                mutating: 1,
            };
        let (td, c) = self.register_task_definition(image_uri)?;
        calls = calls + c;
        let subnet_ids: Vec<String> = subnets["Subnets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["SubnetId"].as_str().map(String::from))
            .collect();
        let sg = groups["SecurityGroups"][0]["GroupId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let network = format!(
            "awsvpcConfiguration={{subnets=[{}],securityGroups=[{sg}],assignPublicIp=DISABLED}}",
            subnet_ids.join(",")
        );
        self.call(
            "ecs",
            &[
                "create-service",
                "--cluster",
                &self.app,
                "--service-name",
                &self.app,
                "--task-definition",
                &td,
                "--desired-count",
                "1",
                "--launch-type",
                "FARGATE",
                "--network-configuration",
                &network,
                "--deployment-configuration",
                "deploymentCircuitBreaker={enable=true,rollback=true}",
            ],
            "CreateService",
        )?;
        calls = calls
            + Calls {
                total: 1,
                mutating: 1,
            };
        Ok(Measure {
            time: start.elapsed(),
            calls,
        })
    }

    /// The re-deploy a script does: it cannot tell what changed, so it re-applies every step
    /// in its idempotent form (the creates that would fail are left out).
    fn redeploy(&self, image_uri: &str) -> Result<Measure> {
        let start = Instant::now();
        let mut calls = self.apply_role_policies()?;
        calls = calls + self.bucket_settings()?;
        calls = calls + self.upload_config()?;
        let (td, c) = self.register_task_definition(image_uri)?;
        calls = calls + c + self.update_service(&td)?;
        Ok(Measure {
            time: start.elapsed(),
            calls,
        })
    }

    fn apply_role_policies(&self) -> Result<Calls> {
        let policy = self.file(
            "s3-read.json",
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::{b}/config/*"}},{{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":"arn:aws:s3:::{b}","Condition":{{"StringLike":{{"s3:prefix":["config/*"]}}}}}}]}}"#,
                b = self.app
            ),
        )?;
        self.call(
            "iam",
            &[
                "put-role-policy",
                "--role-name",
                &format!("{}-task", self.app),
                "--policy-name",
                "s3-config",
                "--policy-document",
                &policy,
            ],
            "PutRolePolicy",
        )?;
        self.call(
            "iam",
            &[
                "attach-role-policy",
                "--role-name",
                &format!("{}-execution", self.app),
                "--policy-arn",
                "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
            ],
            "AttachRolePolicy",
        )?;
        Ok(Calls {
            total: 2,
            mutating: 2,
        })
    }

    fn create_bucket(&self) -> Result<Calls> {
        self.call(
            "s3api",
            &[
                "create-bucket",
                "--bucket",
                &self.app,
                "--create-bucket-configuration",
                &format!("LocationConstraint={}", local::REGION),
            ],
            "CreateBucket",
        )?;
        Ok(Calls {
            total: 1,
            mutating: 1,
        })
    }

    fn bucket_settings(&self) -> Result<Calls> {
        self.call("s3api", &["put-public-access-block", "--bucket", &self.app, "--public-access-block-configuration",
            "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"], "PutPublicAccessBlock")?;
        self.call(
            "s3api",
            &[
                "put-bucket-encryption",
                "--bucket",
                &self.app,
                "--server-side-encryption-configuration",
                r#"{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}"#,
            ],
            "PutBucketEncryption",
        )?;
        self.call(
            "s3api",
            &[
                "put-bucket-tagging",
                "--bucket",
                &self.app,
                "--tagging",
                "TagSet=[{Key=managed-by,Value=ecskit}]",
            ],
            "PutBucketTagging",
        )?;
        Ok(Calls {
            total: 3,
            mutating: 3,
        })
    }

    /// The seeds' `aws s3 cp`: one PutObject per file.
    fn upload_config(&self) -> Result<Calls> {
        let dir = self.examples.join("config");
        let files = std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
            .count();
        let mut cmd = Command::new(&self.aws);
        cmd.arg("--endpoint-url")
            .arg(&self.endpoint)
            .args([
                "--region",
                local::REGION,
                "s3",
                "cp",
                "--recursive",
                "--sse",
                "AES256",
            ])
            .arg(&dir)
            .arg(format!("s3://{}/config/", self.app))
            .envs(self.env.iter().map(|(k, v)| (*k, v)));
        util::output(&mut cmd)?;
        Ok(Calls {
            total: files,
            mutating: files,
        })
    }

    fn register_task_definition(&self, image_uri: &str) -> Result<(String, Calls)> {
        let text = std::fs::read_to_string(self.examples.join("taskdef.json"))
            .map_err(|e| e.to_string())?
            .replace(
                "\"family\": \"ecskit-demo\"",
                &format!("\"family\": \"{}\"", self.app),
            )
            .replace(
                "${ECSKIT_TASK_ROLE_ARN}",
                &self.role_arn(&format!("{}-task", self.app)),
            )
            .replace(
                "${ECSKIT_EXECUTION_ROLE_ARN}",
                &self.role_arn(&format!("{}-execution", self.app)),
            )
            .replace("${ECSKIT_IMAGE_URI}", image_uri)
            .replace(
                "${ECSKIT_CONFIG_URI}",
                &format!("s3://{}/config/", self.app),
            );
        let input = self.file("taskdef-cli.json", &text)?;
        let v = self.call(
            "ecs",
            &["register-task-definition", "--cli-input-json", &input],
            "RegisterTaskDefinition",
        )?;
        let arn = v["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .ok_or("register-task-definition gave no ARN")?
            .to_string();
        Ok((
            arn,
            Calls {
                total: 1,
                mutating: 1,
            },
        ))
    }

    fn update_service(&self, td: &str) -> Result<Calls> {
        self.call(
            "ecs",
            &[
                "update-service",
                "--cluster",
                &self.app,
                "--service",
                &self.app,
                "--task-definition",
                td,
                "--desired-count",
                "1",
            ],
            "UpdateService",
        )?;
        Ok(Calls {
            total: 1,
            mutating: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ms: u64, total: usize, mutating: usize) -> Measure {
        Measure {
            time: Duration::from_millis(ms),
            calls: Calls { total, mutating },
        }
    }

    #[test]
    fn the_table_shows_both_sides_and_the_ratio() {
        let rows = [Row {
            case: "(b) re-deploy, nothing changed",
            ecskit: m(250, 14, 0),
            cli: m(5000, 9, 9),
        }];
        let table = render(&rows);
        let last = table.lines().last().unwrap();
        assert_eq!(
            last,
            "| (b) re-deploy, nothing changed | 0.25 s | 14 (0) | 5.00 s | 9 (9) | 20.0x |"
        );
    }

    #[test]
    fn targets_are_checked() {
        let first = Row {
            case: "a",
            ecskit: m(500, 20, 12),
            cli: m(9000, 15, 13),
        };
        let no_change = Row {
            case: "b",
            ecskit: m(300, 14, 0),
            cli: m(5000, 9, 9),
        };
        let checks = targets(&first, &no_change);
        assert_eq!(
            checks.iter().map(|(_, ok)| *ok).collect::<Vec<_>>(),
            [true, true, false]
        );
        assert!(checks[2].0.contains("18.0x"), "{}", checks[2].0);
    }
}
