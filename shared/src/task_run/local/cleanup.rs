//! The beginning and the end of a local run's resources: who owns them, what a dead run left
//! behind (removed before the next run starts, and only when its owner is provably gone), and the
//! removal of what this run made on every path (its end, an error, a signal, a panic).
//!
//! The engine may be shared (a CI's socket, `DOCKER_HOST=ssh://…`), so `/proc/PID` on this
//! machine says nothing about a run of another machine: each resource records its owner (host
//! id, boot id, pid and the process's start time) and a leftover is removed only when that owner
//! is provably dead. Anything else is in the way: the run refuses and prints the `docker`
//! commands that remove it.

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder,
};

use crate::docker::{Engine, docker_error};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// The label every resource of a local run carries, with the run's id.
pub const TASK_LABEL: &str = "ecskit.local-task";
/// The owner's host: `/etc/machine-id`, else the host name.
pub const HOST_LABEL: &str = "ecskit.local-host";
/// The owner's boot: `/proc/sys/kernel/random/boot_id`.
pub const BOOT_LABEL: &str = "ecskit.local-boot";
/// The owner's pid.
pub const PID_LABEL: &str = "ecskit.local-pid";
/// The owner's start time (field 22 of `/proc/PID/stat`): a pid reused by another process has
/// another one.
pub const START_LABEL: &str = "ecskit.local-start";

/// Who owns a run: this process, on this boot of this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub boot: String,
    pub pid: u32,
    pub start: Option<u64>,
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// A process's start time in clock ticks since boot, `None` when it does not exist (or this is
/// not Linux). The name in field 2 may hold spaces and parentheses: count after the last `)`.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // Field 3 (state) is the first after the name, so field 22 is the 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Owner {
    /// This process. What cannot be read stays empty, which makes its leftovers unprovable
    /// (kept and reported) rather than wrongly judged.
    pub fn this() -> Owner {
        let pid = std::process::id();
        let machine = read_trimmed("/etc/machine-id")
            .or_else(|| read_trimmed("/var/lib/dbus/machine-id"))
            .or_else(|| read_trimmed("/proc/sys/kernel/hostname"));
        // The host is the machine and the PID namespace together: CI jobs in containers on
        // one engine share a baked-in machine-id and the kernel's boot id, but a pid of
        // another job's namespace cannot be seen from this one, so it must not read as dead.
        let namespace = std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .map(|l| l.to_string_lossy().into_owned());
        Owner {
            host: match (machine, namespace) {
                (Some(m), Some(ns)) => format!("{m}/{ns}"),
                // Either unknown: empty, so that nothing is judged dead by it.
                _ => String::new(),
            },
            boot: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            pid,
            start: start_time(pid),
        }
    }

    /// The labels that record this owner on a resource of run `id`.
    pub fn labels(&self, id: &str) -> HashMap<String, String> {
        HashMap::from([
            (
                crate::aws::MANAGED_BY.0.to_string(),
                crate::aws::MANAGED_BY.1.to_string(),
            ),
            (TASK_LABEL.to_string(), id.to_string()),
            (HOST_LABEL.to_string(), self.host.clone()),
            (BOOT_LABEL.to_string(), self.boot.clone()),
            (PID_LABEL.to_string(), self.pid.to_string()),
            (
                START_LABEL.to_string(),
                self.start.map(|s| s.to_string()).unwrap_or_default(),
            ),
        ])
    }
}

/// What is known of a leftover's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its process runs on this host: a live run.
    Live(u32),
    /// Provably gone, and why.
    Dead(String),
    /// Nothing proves it dead (another host, a label missing or empty), and why.
    Unprovable(String),
}

/// Judges a leftover's owner from its labels, against `this` owner; `start_of` is
/// [`start_time`] (a parameter so that tests can say which pids live).
pub fn judge(
    this: &Owner,
    labels: &HashMap<String, String>,
    start_of: impl Fn(u32) -> Option<u64>,
) -> Verdict {
    let get = |k: &str| labels.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let Some(host) = get(HOST_LABEL) else {
        return Verdict::Unprovable("it names no host (made by an older ecskit?)".into());
    };
    if this.host.is_empty() {
        return Verdict::Unprovable("this host's id cannot be read".into());
    }
    if host != this.host {
        return Verdict::Unprovable(format!(
            "it belongs to a run on another host or in another PID namespace ({host}), whose processes cannot be seen from here"
        ));
    }
    let Some(boot) = get(BOOT_LABEL) else {
        return Verdict::Unprovable("its boot id label is empty".into());
    };
    if !this.boot.is_empty() && boot != this.boot {
        return Verdict::Dead("it was made before this host's last boot".into());
    }
    if this.boot.is_empty() {
        return Verdict::Unprovable("this host's boot id cannot be read".into());
    }
    let Some(pid) = get(PID_LABEL).and_then(|p| p.parse::<u32>().ok()) else {
        return Verdict::Unprovable("its pid label is empty or not a number".into());
    };
    let Some(start) = get(START_LABEL).and_then(|s| s.parse::<u64>().ok()) else {
        return Verdict::Unprovable(format!("its process {pid} has no start time label"));
    };
    match start_of(pid) {
        None => Verdict::Dead(format!("its process {pid} has ended")),
        Some(s) if s != start => Verdict::Dead(format!(
            "its process {pid} has ended (the pid now belongs to another process)"
        )),
        Some(_) => Verdict::Live(pid),
    }
}

fn label_filter(label: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![label.to_string()])])
}

/// The resources of local runs, by run id.
#[derive(Default)]
struct Run {
    /// Each resource's labels (they agree unless someone changed them).
    labels: Vec<HashMap<String, String>>,
    containers: Vec<String>,
    networks: Vec<String>,
    volumes: Vec<String>,
}

impl Run {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (what, names) in [
            ("network", &self.networks),
            ("container", &self.containers),
            ("volume", &self.volumes),
        ] {
            if !names.is_empty() {
                parts.push(format!("{what}(s) {}", names.join(", ")));
            }
        }
        parts.join("; ")
    }

    /// The `docker` commands that remove it.
    fn commands(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (cmd, names) in [
            ("docker rm -f", &self.containers),
            ("docker network rm", &self.networks),
            ("docker volume rm", &self.volumes),
        ] {
            if !names.is_empty() {
                out.push(format!("{cmd} {}", names.join(" ")));
            }
        }
        out
    }
}

/// The run a resource with these labels belongs to.
fn add(runs: &mut BTreeMap<String, Run>, labels: Option<HashMap<String, String>>) -> &mut Run {
    let labels = labels.unwrap_or_default();
    let id = labels.get(TASK_LABEL).cloned().unwrap_or_default();
    let run = runs.entry(id).or_default();
    run.labels.push(labels);
    run
}

/// A run is dead when every one of its resources says so: a live or unprovable label on any
/// of them keeps all of it.
fn judge_run(this: &Owner, run: &Run) -> Verdict {
    let verdicts: Vec<Verdict> = run
        .labels
        .iter()
        .map(|l| judge(this, l, start_time))
        .collect();
    let first = |f: fn(&Verdict) -> bool| verdicts.iter().find(|v| f(v)).cloned();
    first(|v| matches!(v, Verdict::Live(_)))
        .or_else(|| first(|v| matches!(v, Verdict::Unprovable(_))))
        .or_else(|| verdicts.first().cloned())
        .unwrap_or_else(|| Verdict::Unprovable("it has no labels".into()))
}

/// Every resource labelled with [`TASK_LABEL`] (or with `TASK_LABEL=id`), grouped by run.
async fn runs(engine: &Engine, label: &str) -> Result<BTreeMap<String, Run>> {
    let d = &engine.docker;
    let filter = label_filter(label);
    let containers = d
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .map_err(|e| docker_error("listing the local task containers", &e))?;
    let networks = d
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .map_err(|e| docker_error("listing the local task networks", &e))?;
    let volumes = d
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .map_err(|e| docker_error("listing the local task volumes", &e))?;
    let mut runs: BTreeMap<String, Run> = BTreeMap::new();
    for c in containers {
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string())
            .or(c.id)
            .unwrap_or_default();
        add(&mut runs, c.labels).containers.push(name);
    }
    for n in networks {
        let name = n.name.clone().or(n.id).unwrap_or_default();
        add(&mut runs, n.labels).networks.push(name);
    }
    for v in volumes.volumes.unwrap_or_default() {
        add(&mut runs, Some(v.labels)).volumes.push(v.name);
    }
    Ok(runs)
}

/// Removes every resource of run `id` (containers first, then its network and volumes), by
/// its label rather than by a list kept while it ran: a resource whose create call was under
/// way when a signal came is removed too. Shared-scope volumes carry no run label and stay.
/// Failures are said on stderr (the next run judges what is left).
pub async fn remove_run(engine: &Engine, id: &str, p: &Progress) {
    let runs = match runs(engine, &format!("{TASK_LABEL}={id}")).await {
        Ok(r) => r,
        Err(e) => {
            p.println(format!(
                "warning: could not list what the local run {id} made: {e}"
            ));
            return;
        }
    };
    let d = &engine.docker;
    for run in runs.values() {
        for c in &run.containers {
            let force = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            if let Err(e) = d.remove_container(c, Some(force)).await {
                p.println(format!("warning: could not remove the container {c}: {e}"));
            }
        }
        for n in &run.networks {
            if let Err(e) = d.remove_network(n).await {
                p.println(format!("warning: could not remove the network {n}: {e}"));
            }
        }
        for v in &run.volumes {
            if let Err(e) = d
                .remove_volume(v, None::<bollard::query_parameters::RemoveVolumeOptions>)
                .await
            {
                p.println(format!("warning: could not remove the volume {v}: {e}"));
            }
        }
    }
}

/// Before a run: removes what dead runs left behind; refuses while another run lives, or while
/// a network whose owner cannot be proven dead holds the task subnet (the engine has room for
/// one such network). Other unprovable leftovers are named, with their commands, and kept.
pub async fn clear_leftovers(engine: &Engine, this: &Owner, p: &Progress) -> Result<()> {
    let runs = runs(engine, TASK_LABEL).await?;
    let mut in_the_way = Vec::new();
    for (id, run) in &runs {
        match judge_run(this, run) {
            Verdict::Live(pid) => {
                return Err(Error::docker(
                    "starting a local task",
                    format!(
                        "another local task runs on this engine (process {pid}, {})",
                        run.describe()
                    ),
                )
                .hint("stop it first (Ctrl-C in its terminal): one local task runs at a time, as its network takes ECS's 169.254.170.0/24"));
            }
            Verdict::Dead(why) => {
                p.println(format!(
                    "removing what the local run {id} left behind ({why}): {}",
                    run.describe()
                ));
                remove_run(engine, id, p).await;
            }
            Verdict::Unprovable(why) if !run.networks.is_empty() => {
                in_the_way.push((id, run, why));
            }
            Verdict::Unprovable(why) => p.println(format!(
                "kept what the local run {id} left ({why}): {}; if that run is over, remove it with: {}",
                run.describe(),
                run.commands().join("; ")
            )),
        }
    }
    if in_the_way.is_empty() {
        return Ok(());
    }
    let mut detail = Vec::new();
    let mut commands = Vec::new();
    for (id, run, why) in in_the_way {
        detail.push(format!("the local run {id} ({why}): {}", run.describe()));
        commands.extend(run.commands());
    }
    Err(Error::docker(
        "starting a local task",
        format!(
            "the engine holds what another local run made, and nothing proves that run is over: {}",
            detail.join("; ")
        ),
    )
    .hint(format!(
        "its network holds the task subnet 169.254.170.0/24; if that run is over, remove what it made with:\n    {}",
        commands.join("\n    ")
    )))
}

/// Removes what run `id` made when it is dropped armed: the path of a panic (unwinding drops
/// it) or of an early return nobody foresaw. The ordinary paths call [`Guard::clean_up`].
pub struct Guard {
    id: String,
    progress: Progress,
    armed: bool,
}

impl Guard {
    /// Made before the first resource of run `id` exists.
    pub fn new(id: &str, progress: &Progress) -> Guard {
        Guard {
            id: id.to_string(),
            progress: progress.clone(),
            armed: true,
        }
    }

    /// Removes what the run made, and disarms.
    pub async fn clean_up(mut self, engine: &Engine) {
        // A create call under way when a signal came is answered by the engine after the
        // run stopped waiting for it, and may land after the first pass: look again, a few
        // times, until nothing of the run is left.
        let label = format!("{TASK_LABEL}={}", self.id);
        for _ in 0..4 {
            remove_run(engine, &self.id, &self.progress).await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            if runs(engine, &label).await.is_ok_and(|r| r.is_empty()) {
                break;
            }
        }
        self.armed = false;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let id = self.id.clone();
        let p = self.progress.clone();
        p.println(format!(
            "the local run {id} ended abruptly: removing what it made"
        ));
        // Drop cannot wait for the async removal, and may run on a runtime's thread, where a
        // second runtime cannot block: a thread of its own with its own runtime and client.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                match Engine::connect().await {
                    Ok(engine) => remove_run(&engine, &id, &p).await,
                    Err(e) => p.println(format!(
                        "warning: could not remove what the local run {id} made: {e}"
                    )),
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn this() -> Owner {
        Owner {
            host: "host-a".into(),
            boot: "boot-1".into(),
            pid: 100,
            start: Some(5),
        }
    }

    fn labels(host: &str, boot: &str, pid: &str, start: &str) -> HashMap<String, String> {
        HashMap::from([
            (HOST_LABEL.to_string(), host.to_string()),
            (BOOT_LABEL.to_string(), boot.to_string()),
            (PID_LABEL.to_string(), pid.to_string()),
            (START_LABEL.to_string(), start.to_string()),
        ])
    }

    /// Process 200 lives, started at tick 50.
    fn alive(pid: u32) -> Option<u64> {
        (pid == 200).then_some(50)
    }

    #[test]
    fn this_host_names_its_pid_namespace() {
        // Two jobs on one engine share the machine-id; their PID namespaces tell them apart.
        let me = Owner::this();
        let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
        assert!(
            me.host.ends_with(&format!("/{}", ns.to_string_lossy())),
            "{}",
            me.host
        );
    }

    #[test]
    fn only_a_provably_dead_owner_is_dead() {
        let t = this();
        let v = |l| judge(&t, &l, alive);
        assert_eq!(
            v(labels("host-a", "boot-1", "200", "50")),
            Verdict::Live(200)
        );
        assert!(
            matches!(v(labels("host-a", "boot-1", "201", "50")), Verdict::Dead(w) if w.contains("201 has ended"))
        );
        assert!(
            matches!(v(labels("host-a", "boot-1", "200", "49")), Verdict::Dead(w) if w.contains("another process"))
        );
        assert!(
            matches!(v(labels("host-a", "boot-0", "200", "50")), Verdict::Dead(w) if w.contains("last boot"))
        );
        assert!(
            matches!(v(labels("host-b", "boot-1", "201", "50")), Verdict::Unprovable(w) if w.contains("another host or in another PID namespace (host-b)"))
        );
        assert!(
            matches!(v(labels("host-a", "boot-1", "", "50")), Verdict::Unprovable(w) if w.contains("pid label is empty"))
        );
        assert!(matches!(
            v(labels("host-a", "boot-1", "201", "")),
            Verdict::Unprovable(_)
        ));
        assert!(matches!(
            v(labels("", "boot-1", "201", "50")),
            Verdict::Unprovable(_)
        ));
        assert!(matches!(v(HashMap::new()), Verdict::Unprovable(_)));
        // A host that cannot name itself proves nothing about any leftover.
        let anonymous = Owner {
            host: String::new(),
            ..this()
        };
        assert!(matches!(
            judge(&anonymous, &labels("", "boot-1", "201", "50"), alive),
            Verdict::Unprovable(_)
        ));
    }

    #[test]
    fn this_process_has_a_start_time_and_a_dead_pid_none() {
        if cfg!(target_os = "linux") {
            let me = Owner::this();
            assert_eq!(me.start, start_time(std::process::id()));
            assert!(me.start.is_some());
            // pid_max is at most 2^22 on Linux: this pid never exists.
            assert_eq!(start_time(4_194_305), None);
        }
    }
}
