//! The beginning and the end of a local run's resources: what a killed run left behind is
//! removed before the next one starts (and a live run is not disturbed), and what this run made
//! is removed when it ends, on every path.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder,
};

use super::engine::{Made, PID_LABEL, TASK_LABEL};
use crate::docker::{Engine, docker_error};
use crate::error::Result;
use crate::progress::Progress;

fn label_filter(label: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![label.to_string()])])
}

fn process_alive(pid: &str) -> bool {
    // Linux: a live process has /proc/PID. Elsewhere, assume it lives (nothing is removed).
    if cfg!(target_os = "linux") {
        std::path::Path::new("/proc").join(pid).exists()
    } else {
        true
    }
}

/// Removes what a killed run left behind; refuses while another local run is alive (the task
/// network's addresses are the engine's only such network).
pub async fn clear_leftovers(engine: &Engine) -> Result<()> {
    let d = &engine.docker;
    let networks = d
        .list_networks(Some(
            ListNetworksOptionsBuilder::new()
                .filters(&label_filter(TASK_LABEL))
                .build(),
        ))
        .await
        .map_err(|e| docker_error("listing the local task networks", &e))?;
    for n in &networks {
        let labels = n.labels.clone().unwrap_or_default();
        let pid = labels.get(PID_LABEL).cloned().unwrap_or_default();
        if pid != std::process::id().to_string() && process_alive(&pid) {
            return Err(crate::Error::docker(
                "starting a local task",
                format!(
                    "another local task runs on this engine (process {pid}, network {})",
                    n.name.clone().unwrap_or_default()
                ),
            )
            .hint("stop it first (Ctrl-C in its terminal): one local task runs at a time, as its network takes ECS's 169.254.170.0/24"));
        }
    }
    let containers = d
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&label_filter(TASK_LABEL))
                .build(),
        ))
        .await
        .map_err(|e| docker_error("listing the local task containers", &e))?;
    for c in containers {
        if let Some(id) = c.id {
            let _ = d
                .remove_container(
                    &id,
                    Some(
                        RemoveContainerOptionsBuilder::new()
                            .force(true)
                            .v(true)
                            .build(),
                    ),
                )
                .await;
        }
    }
    for n in networks {
        if let Some(name) = n.name {
            let _ = d.remove_network(&name).await;
        }
    }
    let volumes = d
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new()
                .filters(&label_filter(TASK_LABEL))
                .build(),
        ))
        .await
        .map_err(|e| docker_error("listing the local task volumes", &e))?;
    for v in volumes.volumes.unwrap_or_default() {
        let _ = d
            .remove_volume(
                &v.name,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await;
    }
    Ok(())
}

/// Removes the containers, the pause container, the network and the task's volumes; says
/// what it kept. Failures are reported, not fatal: the next run removes leftovers.
pub async fn clean_up(engine: &Engine, made: &Made, p: &Progress) {
    let d = &engine.docker;
    let force = || {
        Some(
            RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build(),
        )
    };
    for id in made.containers.values().chain(made.pause.iter()) {
        if let Err(e) = d.remove_container(id, force()).await {
            p.println(format!("warning: could not remove the container {id}: {e}"));
        }
    }
    if let Some(n) = &made.network
        && let Err(e) = d.remove_network(n).await
    {
        p.println(format!("warning: could not remove the network {n}: {e}"));
    }
    for v in &made.volumes {
        if let Err(e) = d
            .remove_volume(v, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            p.println(format!("warning: could not remove the volume {v}: {e}"));
        }
    }
    for v in &made.kept {
        p.println(format!(
            "kept the volume {v}: its dockerVolumeConfiguration scope is shared, so it outlives the task as on ECS"
        ));
    }
}
