//! The Docker Engine calls of a local run: the task's network and pause container, its
//! volumes and containers, their states and log streams, and the clean-up of all of it.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HealthStatusEnum,
    HostConfig, Ipam, IpamConfig, Mount, MountType, NetworkCreateRequest, NetworkingConfig,
    PortBinding, ResourcesUlimits, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::cleanup::Owner;
use super::endpoint::{CREDENTIALS_HOST, SUBNET, TASK_ADDRESS};
use super::plan::{ContainerSpec, LocalTask, State, VolumeKind};
use crate::docker::{Credentials, Engine, docker_error};
use crate::ecs::Deps;
use crate::error::Result;
use crate::progress::Progress;
use crate::secret::Secret;

/// What this run made. Its removal goes by the run's label ([`super::cleanup::remove_run`]);
/// the names here are for the calls that follow creation.
pub struct Made {
    id: String,
    /// The labels of every resource: the run's id and its owner.
    labels: HashMap<String, String>,
    pub network: Option<String>,
    /// Container name by task container name.
    pub containers: HashMap<String, String>,
    /// Volumes kept after the task (`scope: shared`), with the reason.
    pub kept: Vec<String>,
    logs: Vec<tokio::task::JoinHandle<()>>,
}

impl Made {
    pub fn new(id: &str, owner: &Owner) -> Made {
        Made {
            id: id.to_string(),
            labels: owner.labels(id),
            network: None,
            containers: HashMap::new(),
            kept: Vec::new(),
            logs: Vec::new(),
        }
    }

    fn name(&self, what: &str) -> String {
        format!("ecskit-{}-{what}", self.id)
    }

    fn labels(&self) -> HashMap<String, String> {
        self.labels.clone()
    }

    /// Waits (briefly) for the log streams to print their last lines.
    pub async fn finish_logs(&mut self) {
        for h in self.logs.drain(..) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), h).await;
        }
    }
}

/// The task's bridge network: its gateway, on the engine's host, is ECS's credentials address.
pub async fn create_network(engine: &Engine, made: &mut Made) -> Result<()> {
    let name = made.name("net");
    engine
        .docker
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(SUBNET.into()),
                    gateway: Some(CREDENTIALS_HOST.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(made.labels()),
            ..Default::default()
        })
        .await
        .map_err(|e| docker_error(format!("creating the task network {name} ({SUBNET})"), &e))?;
    made.network = Some(name);
    Ok(())
}

/// Pulls each image the task names that the engine lacks, and every ECR image (ECS pulls
/// them on each start, so a moved tag is picked up): ECR through its token, in memory.
pub async fn pull_images(deps: &Deps, engine: &Engine, task: &LocalTask) -> Result<()> {
    let mut seen = Vec::new();
    for c in &task.containers {
        if seen.contains(&c.image) {
            continue;
        }
        seen.push(c.image.clone());
        let host = crate::verify::resources::registry_of(&c.image).map(|(h, _)| h);
        let ecr = host.is_some_and(crate::ecr::is_ecr);
        if !ecr && engine.local_image(&c.image).await?.is_some() {
            continue;
        }
        let credentials = if ecr {
            let login = crate::docker::ecr_login(&deps.ctx, None).await?;
            Some(Credentials {
                username: login.username,
                password: login.password,
                server: host.unwrap_or_default().to_string(),
            })
        } else {
            None
        };
        deps.progress.println(format!("pulling {}", c.image));
        engine.pull(&c.image, credentials.as_ref()).await?;
    }
    Ok(())
}

/// The pause container: it holds the task's network namespace and publishes the task's ports
/// on 127.0.0.1.
pub async fn start_pause(
    engine: &Engine,
    deps: &Deps,
    task: &LocalTask,
    made: &mut Made,
    image: &str,
) -> Result<String> {
    let image = image.to_string();
    if engine.local_image(&image).await?.is_none() {
        deps.progress
            .println(format!("pulling the pause image {image}"));
        engine.pull(&image, None).await?;
    }
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for c in &task.containers {
        for p in &c.ports {
            let key = format!("{}/{}", p.container, if p.udp { "udp" } else { "tcp" });
            bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(if p.host == 0 {
                        String::new()
                    } else {
                        p.host.to_string()
                    }),
                }]),
            );
        }
    }
    let network = made.network.clone().unwrap_or_default();
    let name = made.name("pause");
    let body = ContainerCreateBody {
        image: Some(image),
        labels: Some(made.labels()),
        exposed_ports: Some(bindings.keys().cloned().collect()),
        host_config: Some(HostConfig {
            network_mode: Some(network.clone()),
            port_bindings: Some(bindings),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            // A fixed address: the endpoints on the gateway answer this one peer only.
            endpoints_config: Some(HashMap::from([(
                network,
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: Some(TASK_ADDRESS.into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    create(engine, &name, body, "the task's pause container").await?;
    engine
        .docker
        .start_container(&name, None)
        .await
        .map_err(|e| docker_error("starting the task's pause container", &e))?;
    Ok(name)
}

pub async fn create_volumes(engine: &Engine, task: &LocalTask, made: &mut Made) -> Result<()> {
    for v in &task.volumes {
        let (driver, options, shared) = match &v.kind {
            VolumeKind::Host(_) => continue,
            VolumeKind::Docker {
                driver,
                options,
                shared,
            } => (driver.clone(), options.clone(), *shared),
            VolumeKind::Task => (None, Default::default(), false),
        };
        // A shared volume keeps the task definition's name and outlives the task, as ECS's.
        let name = if shared {
            v.name.clone()
        } else {
            made.name(&format!("vol-{}", v.name))
        };
        let mut labels = made.labels();
        if shared {
            // Not the run's: no clean-up, this run's or a later one's, removes it.
            labels.retain(|k, _| !k.starts_with("ecskit.local-"));
        }
        engine
            .docker
            .create_volume(VolumeCreateRequest {
                name: Some(name.clone()),
                driver,
                driver_opts: Some(options.into_iter().collect()),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(|e| docker_error(format!("creating the volume {name}"), &e))?;
        if shared {
            made.kept.push(name);
        }
    }
    Ok(())
}

fn volume_source(task: &LocalTask, made: &Made, volume: &str) -> (MountType, String) {
    match task
        .volumes
        .iter()
        .find(|v| v.name == volume)
        .map(|v| &v.kind)
    {
        Some(VolumeKind::Host(path)) => (MountType::BIND, path.clone()),
        Some(VolumeKind::Docker { shared: true, .. }) => (MountType::VOLUME, volume.to_string()),
        _ => (MountType::VOLUME, made.name(&format!("vol-{volume}"))),
    }
}

/// One engine container, named.
async fn create(engine: &Engine, name: &str, body: ContainerCreateBody, what: &str) -> Result<()> {
    engine
        .docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(name).build()),
            body,
        )
        .await
        .map(|_| ())
        .map_err(|e| docker_error(format!("creating {what}"), &e))
}

/// Docker takes durations in nanoseconds.
const NS: i64 = 1_000_000_000;

pub async fn create_container(
    engine: &Engine,
    task: &LocalTask,
    c: &ContainerSpec,
    pause: &str,
    env: Vec<(String, Secret)>,
    made: &mut Made,
) -> Result<()> {
    let name = made.name(&c.name);
    let mounts = c
        .mounts
        .iter()
        .map(|m| {
            let (typ, source) = volume_source(task, made, &m.volume);
            Mount {
                target: Some(m.path.clone()),
                source: Some(source),
                typ: Some(typ),
                read_only: Some(m.read_only),
                ..Default::default()
            }
        })
        .collect();
    let volumes_from = c
        .volumes_from
        .iter()
        .map(|(from, ro)| format!("{}{}", made.name(from), if *ro { ":ro" } else { "" }))
        .collect();
    let healthcheck = c.health.as_ref().map(|h| HealthConfig {
        test: Some(h.test.clone()),
        interval: Some(h.interval_s * NS),
        timeout: Some(h.timeout_s * NS),
        retries: Some(h.retries),
        start_period: Some(h.start_period_s * NS),
        ..Default::default()
    });
    let body = ContainerCreateBody {
        image: Some(c.image.clone()),
        entrypoint: c.entry_point.clone(),
        cmd: c.command.clone(),
        // The one place the resolved values leave their `Secret`s: the engine's request body,
        // which is never logged.
        env: Some(
            env.iter()
                .map(|(k, v)| format!("{k}={}", v.expose()))
                .collect(),
        ),
        working_dir: c.working_dir.clone(),
        user: c.user.clone(),
        healthcheck,
        stop_timeout: Some(c.stop_timeout),
        labels: Some(made.labels()),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{pause}")),
            mounts: Some(mounts),
            volumes_from: Some(volumes_from),
            readonly_rootfs: Some(c.readonly_rootfs),
            ulimits: Some(
                c.ulimits
                    .iter()
                    .map(|(n, soft, hard)| ResourcesUlimits {
                        name: Some(n.clone()),
                        soft: Some(*soft),
                        hard: Some(*hard),
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    create(engine, &name, body, &format!("the container {}", c.name)).await?;
    made.containers.insert(c.name.clone(), name);
    Ok(())
}

/// Starts a container and streams its output to stderr, each line prefixed with its name.
pub async fn start(engine: &Engine, made: &mut Made, name: &str, p: &Progress) -> Result<()> {
    let id = made.containers.get(name).cloned().unwrap_or_default();
    engine
        .docker
        .start_container(&id, None)
        .await
        .map_err(|e| docker_error(format!("starting the container {name}"), &e))?;
    p.println(format!("started {name}"));
    let docker = engine.docker.clone();
    let prefix = name.to_string();
    let progress = p.clone();
    made.logs.push(tokio::spawn(async move {
        let mut stream = docker.logs(
            &id,
            Some(
                LogsOptionsBuilder::new()
                    .follow(true)
                    .stdout(true)
                    .stderr(true)
                    .build(),
            ),
        );
        while let Some(Ok(chunk)) = stream.next().await {
            let text = chunk.to_string();
            for line in text.lines() {
                progress.println(format!("[{prefix}] {line}"));
            }
        }
    }));
    Ok(())
}

/// A container's state, with its health check's verdict.
pub async fn state(engine: &Engine, made: &Made, name: &str) -> Result<State> {
    let Some(id) = made.containers.get(name) else {
        return Ok(State::NotStarted);
    };
    let info = engine
        .docker
        .inspect_container(id, None)
        .await
        .map_err(|e| docker_error(format!("inspecting the container {name}"), &e))?;
    let s = info.state.unwrap_or_default();
    if s.running == Some(true) {
        let healthy = s.health.and_then(|h| h.status).and_then(|st| match st {
            HealthStatusEnum::HEALTHY => Some(true),
            HealthStatusEnum::UNHEALTHY => Some(false),
            _ => None,
        });
        return Ok(State::Running { healthy });
    }
    if s.started_at
        .as_deref()
        .is_some_and(|t| !t.starts_with("0001-"))
    {
        return Ok(State::Exited(s.exit_code.unwrap_or(-1)));
    }
    Ok(State::NotStarted)
}

/// Stops every container as ECS does: SIGTERM, then SIGKILL after its stopTimeout; all at
/// once, so the task stops within its longest stopTimeout.
pub async fn stop_all(engine: &Engine, task: &LocalTask, made: &Made) {
    let stops = task.containers.iter().filter_map(|c| {
        let id = made.containers.get(&c.name)?.clone();
        let docker = engine.docker.clone();
        let t = i32::try_from(c.stop_timeout).unwrap_or(30);
        Some(async move {
            let _ = docker
                .stop_container(&id, Some(StopContainerOptionsBuilder::new().t(t).build()))
                .await;
        })
    });
    futures_util::future::join_all(stops).await;
}
