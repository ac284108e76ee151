//! What a registered task definition asks of the Docker Engine, checked before anything is
//! started (pure, no call): the containers with their own settings, the task's volumes and
//! published ports, and the order `dependsOn` gives. A field that cannot run locally is
//! refused with its path in the task definition (exit 2, nothing started).
//!
//! Its size: about 470 lines of code (one function per part of the task definition, and
//! [`judge`]), then the unit tests that drive `judge` through the dependsOn conditions.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ecs::types::{ContainerCondition, ContainerDefinition, TaskDefinition};

/// A `dependsOn` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Start,
    Complete,
    Success,
    Healthy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub test: Vec<String>,
    pub interval_s: i64,
    pub timeout_s: i64,
    pub retries: i64,
    pub start_period_s: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    pub volume: String,
    pub path: String,
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub container: u16,
    /// 0: the engine picks one.
    pub host: u16,
    pub udp: bool,
}

/// One container, as its definition asks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub essential: bool,
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    /// `environmentFiles[].value`: S3 object ARNs.
    pub env_files: Vec<String>,
    /// `secrets[]`: (variable, valueFrom).
    pub secrets: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// (name, soft, hard)
    pub ulimits: Vec<(String, i64, i64)>,
    pub readonly_rootfs: bool,
    /// Seconds between SIGTERM and SIGKILL (ECS's default is 30).
    pub stop_timeout: i64,
    pub health: Option<Health>,
    pub depends_on: Vec<(String, Condition)>,
    pub mounts: Vec<MountSpec>,
    /// (container, read only)
    pub volumes_from: Vec<(String, bool)>,
    pub ports: Vec<Port>,
}

/// A task volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeKind {
    /// `host.sourcePath`: a bind mount of a path of the engine's host.
    Host(String),
    /// `dockerVolumeConfiguration`: a volume of this driver; `shared` ones outlive the task.
    Docker {
        driver: Option<String>,
        options: BTreeMap<String, String>,
        shared: bool,
    },
    /// No configuration: an empty volume the task's containers share, removed with the task.
    Task,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    pub name: String,
    pub kind: VolumeKind,
}

/// The task, ready to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalTask {
    pub family: String,
    pub revision: i32,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub containers: Vec<ContainerSpec>,
    pub volumes: Vec<VolumeSpec>,
}

/// ECS's default stop timeout.
const DEFAULT_STOP_TIMEOUT: i64 = 30;

/// Reads the task definition; every field that cannot run on a local Linux Docker Engine is
/// a problem naming its path.
pub fn check(def: &TaskDefinition) -> Result<LocalTask, Vec<String>> {
    let mut problems = Vec::new();
    if let Some(os) = def
        .runtime_platform()
        .and_then(|p| p.operating_system_family())
        && os.as_str() != "LINUX"
    {
        problems.push(format!(
            "runtimePlatform.operatingSystemFamily: {} cannot run on a Linux Docker Engine",
            os.as_str()
        ));
    }
    if !def.inference_accelerators().is_empty() {
        problems
            .push("inferenceAccelerators: Elastic Inference accelerators exist only on ECS".into());
    }
    let mut volumes = Vec::new();
    for (i, v) in def.volumes().iter().enumerate() {
        let name = v.name().unwrap_or_default().to_string();
        let at = format!("volumes[{i}]");
        if v.efs_volume_configuration().is_some() {
            problems.push(format!(
                "{at}.efsVolumeConfiguration: EFS volumes ({name}) cannot be mounted by a local engine"
            ));
            continue;
        }
        if v.fsx_windows_file_server_volume_configuration().is_some() {
            problems.push(format!(
                "{at}.fsxWindowsFileServerVolumeConfiguration: FSx volumes ({name}) cannot be mounted by a local engine"
            ));
            continue;
        }
        if v.configured_at_launch() == Some(true) {
            problems.push(format!(
                "{at}.configuredAtLaunch: the volume {name} is an EBS volume given at launch, which a local engine cannot attach"
            ));
            continue;
        }
        let kind = if let Some(path) = v.host().and_then(|h| h.source_path()) {
            VolumeKind::Host(path.to_string())
        } else if let Some(d) = v.docker_volume_configuration() {
            VolumeKind::Docker {
                driver: d.driver().map(str::to_string),
                options: d
                    .driver_opts()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                shared: d.scope().map(|s| s.as_str()) == Some("shared"),
            }
        } else {
            VolumeKind::Task
        };
        volumes.push(VolumeSpec { name, kind });
    }
    let mut containers = Vec::new();
    for (i, c) in def.container_definitions().iter().enumerate() {
        containers.push(container(
            c,
            &format!("containerDefinitions[{i}]"),
            &mut problems,
        ));
    }
    if containers.is_empty() {
        problems.push("containerDefinitions: the task has no container".into());
    }
    if !containers.iter().any(|c| c.essential) && !containers.is_empty() {
        problems.push("containerDefinitions: no container is essential".into());
    }
    check_references(&containers, &volumes, &mut problems);
    if problems.is_empty() {
        Ok(LocalTask {
            family: def.family().unwrap_or_default().to_string(),
            revision: def.revision(),
            task_role_arn: def.task_role_arn().map(str::to_string),
            execution_role_arn: def.execution_role_arn().map(str::to_string),
            containers,
            volumes,
        })
    } else {
        Err(problems)
    }
}

fn container(c: &ContainerDefinition, at: &str, problems: &mut Vec<String>) -> ContainerSpec {
    let name = c.name().unwrap_or_default().to_string();
    for (j, r) in c.resource_requirements().iter().enumerate() {
        if r.r#type().as_str() == "GPU" {
            problems.push(format!(
                "{at}.resourceRequirements[{j}]: {name} asks for {} GPU(s), which a local run does not give",
                r.value()
            ));
        }
    }
    if c.repository_credentials().is_some() {
        problems.push(format!(
            "{at}.repositoryCredentials: private registry credentials from Secrets Manager are not supported locally; `docker login` to the registry and remove the field, or pull the image first"
        ));
    }
    let list = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    let depends_on = c
        .depends_on()
        .iter()
        .map(|d| {
            let cond = match d.condition() {
                ContainerCondition::Start => Condition::Start,
                ContainerCondition::Complete => Condition::Complete,
                ContainerCondition::Success => Condition::Success,
                _ => Condition::Healthy,
            };
            (d.container_name().to_string(), cond)
        })
        .collect();
    let health = c.health_check().map(|h| Health {
        test: h.command().to_vec(),
        interval_s: h.interval().unwrap_or(30).into(),
        timeout_s: h.timeout().unwrap_or(5).into(),
        retries: h.retries().unwrap_or(3).into(),
        start_period_s: h.start_period().unwrap_or(0).into(),
    });
    let mut ports = Vec::new();
    for (j, p) in c.port_mappings().iter().enumerate() {
        let Some(cp) = p.container_port().and_then(|n| u16::try_from(n).ok()) else {
            problems.push(format!(
                "{at}.portMappings[{j}].containerPort: a port range cannot be published locally; name single ports"
            ));
            continue;
        };
        ports.push(Port {
            container: cp,
            host: p
                .host_port()
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(0),
            udp: p.protocol().map(|p| p.as_str()) == Some("udp"),
        });
    }
    ContainerSpec {
        name,
        image: c.image().unwrap_or_default().to_string(),
        essential: c.essential().unwrap_or(true),
        entry_point: list(c.entry_point()),
        command: list(c.command()),
        environment: c
            .environment()
            .iter()
            .map(|kv| {
                (
                    kv.name().unwrap_or_default().to_string(),
                    kv.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        env_files: c
            .environment_files()
            .iter()
            .map(|f| f.value().to_string())
            .collect(),
        secrets: c
            .secrets()
            .iter()
            .map(|s| (s.name().to_string(), s.value_from().to_string()))
            .collect(),
        working_dir: c.working_directory().map(str::to_string),
        user: c.user().map(str::to_string),
        ulimits: c
            .ulimits()
            .iter()
            .map(|u| {
                (
                    u.name().as_str().to_string(),
                    i64::from(u.soft_limit()),
                    i64::from(u.hard_limit()),
                )
            })
            .collect(),
        readonly_rootfs: c.readonly_root_filesystem().unwrap_or(false),
        stop_timeout: c
            .stop_timeout()
            .map(i64::from)
            .unwrap_or(DEFAULT_STOP_TIMEOUT),
        health,
        depends_on,
        mounts: c
            .mount_points()
            .iter()
            .map(|m| MountSpec {
                volume: m.source_volume().unwrap_or_default().to_string(),
                path: m.container_path().unwrap_or_default().to_string(),
                read_only: m.read_only().unwrap_or(false),
            })
            .collect(),
        volumes_from: c
            .volumes_from()
            .iter()
            .map(|v| {
                (
                    v.source_container().unwrap_or_default().to_string(),
                    v.read_only().unwrap_or(false),
                )
            })
            .collect(),
        ports,
    }
}

/// dependsOn, mountPoints and volumesFrom name things of this task; dependsOn has no cycle.
fn check_references(
    containers: &[ContainerSpec],
    volumes: &[VolumeSpec],
    problems: &mut Vec<String>,
) {
    let index: HashMap<&str, usize> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    for (i, c) in containers.iter().enumerate() {
        for (j, (dep, cond)) in c.depends_on.iter().enumerate() {
            match index.get(dep.as_str()) {
                None => problems.push(format!(
                    "containerDefinitions[{i}].dependsOn[{j}].containerName: '{dep}' is not a container of this task"
                )),
                Some(&k) if *cond == Condition::Healthy && containers[k].health.is_none() => {
                    problems.push(format!(
                        "containerDefinitions[{i}].dependsOn[{j}].condition: HEALTHY needs a healthCheck on '{dep}'"
                    ))
                }
                _ => {}
            }
        }
        for (j, m) in c.mounts.iter().enumerate() {
            if !volumes.iter().any(|v| v.name == m.volume) {
                problems.push(format!(
                    "containerDefinitions[{i}].mountPoints[{j}].sourceVolume: '{}' is not a volume of this task",
                    m.volume
                ));
            }
        }
        for (j, (from, _)) in c.volumes_from.iter().enumerate() {
            if !index.contains_key(from.as_str()) {
                problems.push(format!(
                    "containerDefinitions[{i}].volumesFrom[{j}].sourceContainer: '{from}' is not a container of this task"
                ));
            }
        }
    }
    if problems.is_empty() && start_order(containers).is_none() {
        problems.push("containerDefinitions[].dependsOn: the dependencies form a cycle".into());
    }
}

/// An order in which every container comes after those it depends on; `None` on a cycle.
pub fn start_order(containers: &[ContainerSpec]) -> Option<Vec<String>> {
    let mut done: Vec<String> = Vec::new();
    while done.len() < containers.len() {
        let next = containers.iter().find(|c| {
            !done.contains(&c.name) && c.depends_on.iter().all(|(d, _)| done.contains(d))
        })?;
        done.push(next.name.clone());
    }
    Some(done)
}

/// What the engine says of one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    NotStarted,
    /// Running; `healthy` is the health check's verdict (`None` while starting or without one).
    Running {
        healthy: Option<bool>,
    },
    Exited(i64),
}

/// What the task does next, judged from the containers' states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Start these (their dependencies are met), then look again.
    Start(Vec<String>),
    /// Nothing to do yet.
    Wait,
    /// The task stops: why, and whether that is a failure of the task itself (a dependency
    /// that cannot be met) rather than an essential container's exit.
    Stop { reason: String, dependency: bool },
}

/// The one decision of the local run's loop, pure so that tests can drive it: which containers
/// may start now (ECS's dependsOn conditions), and whether the task stops (an essential
/// container stopped, or a dependency can no longer be met).
pub fn judge(containers: &[ContainerSpec], states: &HashMap<String, State>) -> Next {
    let state = |name: &str| states.get(name).copied().unwrap_or(State::NotStarted);
    for c in containers.iter().filter(|c| c.essential) {
        if let State::Exited(code) = state(&c.name) {
            return Next::Stop {
                reason: format!("essential container {} exited with code {code}", c.name),
                dependency: false,
            };
        }
    }
    let mut ready = Vec::new();
    for c in containers {
        if state(&c.name) != State::NotStarted {
            continue;
        }
        let mut met = true;
        for (dep, cond) in &c.depends_on {
            let s = state(dep);
            let ok = match (cond, s) {
                (Condition::Start, State::NotStarted) => false,
                (Condition::Start, _) => true,
                (Condition::Complete, State::Exited(_)) => true,
                (Condition::Success, State::Exited(0)) => true,
                (Condition::Success, State::Exited(code)) => {
                    return Next::Stop {
                        reason: format!(
                            "{} waits for {dep} to succeed, and {dep} exited with code {code}",
                            c.name
                        ),
                        dependency: true,
                    };
                }
                (
                    Condition::Healthy,
                    State::Running {
                        healthy: Some(true),
                    },
                ) => true,
                (
                    Condition::Healthy,
                    State::Running {
                        healthy: Some(false),
                    },
                ) => {
                    return Next::Stop {
                        reason: format!(
                            "{} waits for {dep} to be healthy, and {dep} is unhealthy",
                            c.name
                        ),
                        dependency: true,
                    };
                }
                (Condition::Healthy, State::Exited(code)) => {
                    return Next::Stop {
                        reason: format!(
                            "{} waits for {dep} to be healthy, and {dep} exited with code {code}",
                            c.name
                        ),
                        dependency: true,
                    };
                }
                _ => false,
            };
            met &= ok;
        }
        if met {
            ready.push(c.name.clone());
        }
    }
    if ready.is_empty() {
        Next::Wait
    } else {
        Next::Start(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, essential: bool, deps: &[(&str, Condition)]) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            essential,
            depends_on: deps.iter().map(|(d, c)| (d.to_string(), *c)).collect(),
            ..Default::default()
        }
    }

    fn states(s: &[(&str, State)]) -> HashMap<String, State> {
        s.iter().map(|(n, st)| (n.to_string(), *st)).collect()
    }

    #[test]
    fn dependencies_order_the_start() {
        let task = [
            c(
                "app",
                true,
                &[("init", Condition::Success), ("proxy", Condition::Start)],
            ),
            c("init", false, &[]),
            c("proxy", false, &[]),
        ];
        assert_eq!(
            judge(&task, &states(&[])),
            Next::Start(vec!["init".into(), "proxy".into()])
        );
        let running = State::Running { healthy: None };
        assert_eq!(
            judge(&task, &states(&[("init", running), ("proxy", running)])),
            Next::Wait
        );
        assert_eq!(
            judge(
                &task,
                &states(&[("init", State::Exited(0)), ("proxy", running)])
            ),
            Next::Start(vec!["app".into()])
        );
        match judge(
            &task,
            &states(&[("init", State::Exited(4)), ("proxy", running)]),
        ) {
            Next::Stop { reason, dependency } => {
                assert!(dependency);
                assert_eq!(
                    reason,
                    "app waits for init to succeed, and init exited with code 4"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_essential_exit_stops_the_task_and_a_sidecar_exit_does_not() {
        let task = [c("app", true, &[]), c("sidecar", false, &[])];
        let running = State::Running { healthy: None };
        assert_eq!(
            judge(
                &task,
                &states(&[("app", running), ("sidecar", State::Exited(1))])
            ),
            Next::Wait
        );
        assert_eq!(
            judge(
                &task,
                &states(&[("app", State::Exited(7)), ("sidecar", running)])
            ),
            Next::Stop {
                reason: "essential container app exited with code 7".into(),
                dependency: false
            }
        );
    }

    #[test]
    fn healthy_and_complete_conditions() {
        let task = [
            c(
                "app",
                true,
                &[("db", Condition::Healthy), ("migrate", Condition::Complete)],
            ),
            c("db", false, &[]),
            c("migrate", false, &[]),
        ];
        let st = |h| State::Running { healthy: h };
        assert_eq!(
            judge(
                &task,
                &states(&[("db", st(None)), ("migrate", State::Exited(3))])
            ),
            Next::Wait
        );
        assert_eq!(
            judge(
                &task,
                &states(&[("db", st(Some(true))), ("migrate", State::Exited(3))])
            ),
            Next::Start(vec!["app".into()])
        );
        assert!(matches!(
            judge(&task, &states(&[("db", st(Some(false)))])),
            Next::Stop {
                dependency: true,
                ..
            }
        ));
    }

    #[test]
    fn cycles_have_no_start_order() {
        let task = [
            c("a", true, &[("b", Condition::Start)]),
            c("b", true, &[("a", Condition::Start)]),
        ];
        assert_eq!(start_order(&task), None);
        let ok = [c("a", true, &[("b", Condition::Start)]), c("b", true, &[])];
        assert_eq!(start_order(&ok), Some(vec!["b".into(), "a".into()]));
    }
}
