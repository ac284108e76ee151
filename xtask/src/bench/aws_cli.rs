//! The seeds' way, for the benchmark to stand beside: the same deploy done with one `aws` CLI
//! process per call, from the local stack's venv, with `--endpoint-url`. Each call is one API
//! operation (an `s3 cp` of N files is N PutObject calls).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use super::Measure;
use crate::chain::Calls;
use crate::local::{self, State};
use crate::util::{self, Result};

/// The seeds' way: one `aws` CLI process per call.
pub struct Cli {
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
    pub fn new(state: &State, app: &str, dir: &Path, examples: &Path) -> Result<Cli> {
        let aws = local::moto_venv().join("bin/aws");
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
    pub fn call(&self, service: &str, args: &[&str], _operation: &str) -> Result<Value> {
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

    pub fn file(&self, name: &str, text: &str) -> Result<String> {
        let p = self.dir.join(name);
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        Ok(format!("file://{}", p.display()))
    }

    pub fn create_repository(&self) -> Result<String> {
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
    pub fn push(&self, image: &str, repo: &str) -> Result<(Measure, String)> {
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

    pub fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.account)
    }

    pub fn first_deploy(&self, image_uri: &str) -> Result<Measure> {
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
    pub fn redeploy(&self, image_uri: &str) -> Result<Measure> {
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

    pub fn apply_role_policies(&self) -> Result<Calls> {
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

    pub fn create_bucket(&self) -> Result<Calls> {
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

    pub fn bucket_settings(&self) -> Result<Calls> {
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
    pub fn upload_config(&self) -> Result<Calls> {
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

    pub fn register_task_definition(&self, image_uri: &str) -> Result<(String, Calls)> {
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

    pub fn update_service(&self, td: &str) -> Result<Calls> {
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

    /// The emulator's floor for case (a): the calls of [`Cli::first_deploy`], made by one warm
    /// boto3 process (`floor.py`) under the name `app`, timed from its first call to its last.
    pub fn floor(&self, app: &str, image_uri: &str) -> Result<Measure> {
        let script = self.dir.join("floor.py");
        std::fs::write(&script, include_str!("floor.py")).map_err(|e| e.to_string())?;
        let input = serde_json::json!({
            "app": app,
            "region": local::REGION,
            "endpoint": self.endpoint,
            "examples": self.examples,
            "image_uri": image_uri,
        });
        let python = local::moto_venv().join("bin/python");
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .arg(input.to_string())
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null());
        let out: Value = serde_json::from_str(&util::output(&mut cmd)?)
            .map_err(|e| format!("the floor script's answer: {e}"))?;
        let count = |k: &str| out[k].as_u64().unwrap_or(0) as usize;
        Ok(Measure {
            time: std::time::Duration::from_secs_f64(out["ms"].as_f64().unwrap_or(0.0) / 1000.0),
            calls: Calls {
                total: count("total"),
                mutating: count("mutating"),
            },
        })
    }
}
