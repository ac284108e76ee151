//! What verify looks at, read once from a task definition (the JSON document taskdef-register
//! would register, or the one ECS holds) and from the service's network settings.

use aws_sdk_ecs::types::TaskDefinition;
use serde_json::Value;

/// The parts of a task definition that name other resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskSubject {
    pub family: String,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    /// `runtimePlatform.cpuArchitecture` (`X86_64` when absent, as ECS assumes).
    pub cpu_architecture: String,
    pub containers: Vec<Container>,
    /// S3 the task role should reach (`s3://BUCKET/PREFIX/`, from the stack or config-upload).
    pub s3_reach: Option<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub image: String,
    /// `(name, valueFrom)` of each secret.
    pub secrets: Vec<(String, String)>,
    /// S3 object ARNs of `environmentFiles`.
    pub env_files: Vec<String>,
    pub awslogs: Option<AwsLogs>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsLogs {
    pub group: String,
    pub create_group: bool,
    pub region: Option<String>,
}

impl TaskSubject {
    /// From the register-form JSON (`containerDefinitions`, `taskRoleArn`, ...).
    pub fn from_json(doc: &Value) -> TaskSubject {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let containers = doc
            .get("containerDefinitions")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|c| {
                        let pairs = |k: &str, a: &str, b: &str| -> Vec<(String, String)> {
                            c.get(k)
                                .and_then(Value::as_array)
                                .map(|l| {
                                    l.iter()
                                        .filter_map(|x| Some((s(x, a)?, s(x, b)?)))
                                        .collect()
                                })
                                .unwrap_or_default()
                        };
                        let awslogs = c.get("logConfiguration").and_then(|lc| {
                            if s(lc, "logDriver").as_deref() != Some("awslogs") {
                                return None;
                            }
                            let o = lc.get("options")?;
                            Some(AwsLogs {
                                group: s(o, "awslogs-group")?,
                                create_group: s(o, "awslogs-create-group").as_deref()
                                    == Some("true"),
                                region: s(o, "awslogs-region"),
                            })
                        });
                        Container {
                            name: s(c, "name").unwrap_or_default(),
                            image: s(c, "image").unwrap_or_default(),
                            secrets: pairs("secrets", "name", "valueFrom"),
                            env_files: pairs("environmentFiles", "value", "type")
                                .into_iter()
                                .map(|(v, _)| v)
                                .collect(),
                            awslogs,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        TaskSubject {
            family: s(doc, "family").unwrap_or_default(),
            task_role_arn: s(doc, "taskRoleArn"),
            execution_role_arn: s(doc, "executionRoleArn"),
            cpu_architecture: doc
                .pointer("/runtimePlatform/cpuArchitecture")
                .and_then(Value::as_str)
                .unwrap_or("X86_64")
                .to_string(),
            containers,
            s3_reach: None,
        }
    }

    /// From a task definition ECS holds (service-run `--verify`).
    pub fn from_ecs(td: &TaskDefinition) -> TaskSubject {
        let containers = td
            .container_definitions()
            .iter()
            .map(|c| {
                let awslogs = c.log_configuration().and_then(|lc| {
                    if lc.log_driver().as_str() != "awslogs" {
                        return None;
                    }
                    let o = lc.options()?;
                    Some(AwsLogs {
                        group: o.get("awslogs-group")?.clone(),
                        create_group: o.get("awslogs-create-group").map(String::as_str)
                            == Some("true"),
                        region: o.get("awslogs-region").cloned(),
                    })
                });
                Container {
                    name: c.name().unwrap_or_default().to_string(),
                    image: c.image().unwrap_or_default().to_string(),
                    secrets: c
                        .secrets()
                        .iter()
                        .map(|s| (s.name().to_string(), s.value_from().to_string()))
                        .collect(),
                    env_files: c
                        .environment_files()
                        .iter()
                        .map(|f| f.value().to_string())
                        .collect(),
                    awslogs,
                }
            })
            .collect();
        TaskSubject {
            family: td.family().unwrap_or_default().to_string(),
            task_role_arn: td.task_role_arn().map(str::to_string),
            execution_role_arn: td.execution_role_arn().map(str::to_string),
            cpu_architecture: td
                .runtime_platform()
                .and_then(|p| p.cpu_architecture())
                .map(|a| a.as_str().to_string())
                .unwrap_or_else(|| "X86_64".into()),
            containers,
            s3_reach: None,
        }
    }
}

/// The service's network settings (awsvpc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    pub fargate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_register_form_names_every_resource() {
        let doc = json!({
            "family": "web",
            "taskRoleArn": "arn:aws:iam::123456789012:role/web-task",
            "executionRoleArn": "arn:aws:iam::123456789012:role/web-execution",
            "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
            "containerDefinitions": [{
                "name": "app",
                "image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/web:v1",
                "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-west-2:123456789012:parameter/web/token"}],
                "environmentFiles": [{"value": "arn:aws:s3:::cfg/web/app.env", "type": "s3"}],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/web", "awslogs-create-group": "true", "awslogs-region": "us-west-2"}}
            }]
        });
        let s = TaskSubject::from_json(&doc);
        assert_eq!(s.cpu_architecture, "ARM64");
        assert_eq!(s.containers[0].secrets[0].0, "TOKEN");
        assert_eq!(s.containers[0].env_files, ["arn:aws:s3:::cfg/web/app.env"]);
        assert_eq!(
            s.containers[0].awslogs,
            Some(AwsLogs {
                group: "/ecs/web".into(),
                create_group: true,
                region: Some("us-west-2".into())
            })
        );
        assert_eq!(
            TaskSubject::from_json(&json!({"family": "x"})).cpu_architecture,
            "X86_64"
        );
    }
}
