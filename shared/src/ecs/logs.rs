//! The containers' own words: CloudWatch Logs read the way ECS writes them.
//!
//! With the `awslogs` driver, ECS writes each container's stdout and stderr to the log group
//! `awslogs-group`, in the stream `PREFIX/CONTAINER/TASK_ID` when `awslogs-stream-prefix` is
//! set. (Without a prefix the stream is named after the Docker container id, which ECS does not
//! report back, so the stream cannot be found; Fargate requires the prefix.) This module derives
//! those names from the task definition, reads the last lines of one stream for the failure
//! report, and merges the streams of several tasks in time order for `--logs`.
//!
//! Reading logs is never what fails a deploy: a missing configuration, a missing stream or a
//! refused read is one line of explanation ([`Tail`]), not an error.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::TaskDefinition;

use crate::aws::Ctx;
use crate::error::{Result, sdk_code};

/// Where one container's log goes, from its `logConfiguration`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsLogs {
    pub group: String,
    /// `awslogs-stream-prefix`; `None` means the stream name cannot be known.
    pub stream_prefix: Option<String>,
    /// `awslogs-region`, when it differs from the caller's.
    pub region: Option<String>,
}

impl AwsLogs {
    /// The stream ECS names for this container of this task: `PREFIX/CONTAINER/TASK_ID`.
    pub fn stream(&self, container: &str, task_arn: &str) -> Option<String> {
        let prefix = self.stream_prefix.as_deref()?;
        Some(format!("{prefix}/{container}/{}", task_id(task_arn)))
    }
}

/// The awslogs destination of every container of a task definition, by container name;
/// `None` for a container that logs elsewhere (or nowhere).
pub fn destinations(td: &TaskDefinition) -> BTreeMap<String, Option<AwsLogs>> {
    td.container_definitions()
        .iter()
        .map(|c| {
            let name = c.name().unwrap_or_default().to_string();
            let logs = c.log_configuration().and_then(|lc| {
                if lc.log_driver().as_str() != "awslogs" {
                    return None;
                }
                let opts = lc.options()?;
                Some(AwsLogs {
                    group: opts.get("awslogs-group")?.clone(),
                    stream_prefix: opts.get("awslogs-stream-prefix").cloned(),
                    region: opts.get("awslogs-region").cloned(),
                })
            });
            (name, logs)
        })
        .collect()
}

/// The id at the end of a task ARN (`arn:...:task/CLUSTER/ID` or the older `task/ID`).
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// The first 8 characters of a task id: enough to tell tasks apart on one screen.
pub fn short_id(task_arn: &str) -> &str {
    let id = task_id(task_arn);
    &id[..id.len().min(8)]
}

/// What reading a container's last lines found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tail {
    /// The last lines, oldest first.
    Lines(Vec<String>),
    /// Why there are no lines, in one sentence (not an error).
    Unavailable(String),
}

impl Tail {
    pub fn lines(&self) -> &[String] {
        match self {
            Tail::Lines(l) => l,
            Tail::Unavailable(_) => &[],
        }
    }

    /// For `--output json`: the lines, or the reason.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Tail::Lines(l) => serde_json::json!(l),
            Tail::Unavailable(why) => serde_json::json!({ "unavailable": why }),
        }
    }
}

/// The last `n` lines of one container of one task.
pub async fn tail(
    ctx: &Ctx,
    logs: Option<&AwsLogs>,
    container: &str,
    task_arn: &str,
    n: u32,
) -> Tail {
    let Some(logs) = logs else {
        return Tail::Unavailable(format!(
            "container {container} has no awslogs log configuration: no log lines to show"
        ));
    };
    let Some(stream) = logs.stream(container, task_arn) else {
        return Tail::Unavailable(format!(
            "container {container} logs to {} without awslogs-stream-prefix: its stream cannot be found",
            logs.group
        ));
    };
    let answer = ctx
        .logs()
        .get_log_events()
        .log_group_name(&logs.group)
        .log_stream_name(&stream)
        .start_from_head(false)
        .limit(n.clamp(1, 10_000) as i32)
        .send()
        .await;
    match answer {
        Ok(out) => Tail::Lines(
            out.events()
                .iter()
                .filter_map(|e| e.message().map(|m| m.trim_end().to_string()))
                .collect(),
        ),
        Err(e) => Tail::Unavailable(match sdk_code(&e) {
            Some("ResourceNotFoundException") => format!(
                "no log stream {stream} in {}: the container may not have started",
                logs.group
            ),
            Some("AccessDeniedException" | "AccessDenied") => format!(
                "reading {}/{stream} was refused: the caller needs logs:GetLogEvents on the log group",
                logs.group
            ),
            _ => format!(
                "could not read {}/{stream}: {}",
                logs.group,
                crate::error::flatten(&e)
            ),
        }),
    }
}

/// The containers of a stopped task that failed: an exit code other than 0, or no exit code
/// with a reason (it never ran, or was killed).
pub fn failing_containers(task: &aws_sdk_ecs::types::Task) -> Vec<&aws_sdk_ecs::types::Container> {
    task.containers()
        .iter()
        .filter(|c| match c.exit_code() {
            Some(code) => code != 0,
            None => c.reason().is_some(),
        })
        .collect()
}

/// The log part of the failure report for one stopped task: for each failing container, the
/// last `n` lines of its log, printed under the task's lines (on stderr) and returned as
/// entries of `failures[]` for `--output json`. `n` = 0 turns the log lines off.
pub async fn failure_entries(
    ctx: &Ctx,
    progress: &crate::progress::Progress,
    task: &aws_sdk_ecs::types::Task,
    destinations: &BTreeMap<String, Option<AwsLogs>>,
    n: u32,
) -> Vec<serde_json::Value> {
    let task_arn = task.task_arn().unwrap_or_default();
    let mut entries = Vec::new();
    for c in failing_containers(task) {
        let name = c.name().unwrap_or("?");
        let mut entry = serde_json::json!({
            "task": task_arn,
            "container": name,
            "exit_code": c.exit_code(),
            "reason": c.reason().or(task.stopped_reason()),
        });
        if n > 0 {
            let dest = destinations.get(name).and_then(Option::as_ref);
            let tail = tail(ctx, dest, name, task_arn, n).await;
            match &tail {
                Tail::Lines(lines) if lines.is_empty() => {
                    progress.println(format!("  {name} wrote no log lines"))
                }
                Tail::Lines(lines) => {
                    progress.println(format!("  last {} log lines of {name}:", lines.len()));
                    for l in lines {
                        progress.println(format!("    | {l}"));
                    }
                }
                Tail::Unavailable(why) => progress.println(format!("  {why}")),
            }
            entry["log_tail"] = tail.to_json();
        }
        entries.push(entry);
    }
    entries
}

/// One log line of a task's container, for the merged view.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Line {
    /// Milliseconds since the epoch (CloudWatch's event timestamp).
    pub timestamp: i64,
    /// `SHORTID CONTAINER`, the prefix printed before the message.
    pub source: String,
    pub message: String,
    /// The event id, so that a poll that overlaps the previous one prints nothing twice.
    pub id: String,
}

impl Line {
    pub fn render(&self) -> String {
        format!("[{}] {}", self.source, self.message.trim_end())
    }
}

/// A stream to read: the log group, the stream, and the `SHORTID CONTAINER` label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub group: String,
    pub stream: String,
    pub label: String,
}

/// Every stream of these tasks' containers (optionally one container), by awslogs naming.
pub fn sources(
    td: &TaskDefinition,
    task_arns: &[String],
    container: Option<&str>,
) -> (Vec<Source>, Vec<String>) {
    sources_of(&destinations(td), task_arns, container)
}

/// [`sources`] from the destinations already read ([`destinations`], or a resolved task
/// definition's `logs`).
pub fn sources_of(
    destinations: &BTreeMap<String, Option<AwsLogs>>,
    task_arns: &[String],
    container: Option<&str>,
) -> (Vec<Source>, Vec<String>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (name, logs) in destinations {
        if container.is_some_and(|c| c != name) {
            continue;
        }
        for task in task_arns {
            match logs.as_ref().and_then(|l| Some((l, l.stream(name, task)?))) {
                Some((l, stream)) => found.push(Source {
                    group: l.group.clone(),
                    stream,
                    label: format!("{} {name}", short_id(task)),
                }),
                None => missing.push(name.clone()),
            }
        }
    }
    missing.sort();
    missing.dedup();
    (found, missing)
}

/// All events of `sources` at or after `since_ms`, merged in time order. FilterLogEvents takes
/// up to 100 streams of one group per call; the pages are followed to the end.
pub async fn read_since(ctx: &Ctx, sources: &[Source], since_ms: i64) -> Result<Vec<Line>> {
    let mut by_group: BTreeMap<&str, Vec<&Source>> = BTreeMap::new();
    for s in sources {
        by_group.entry(&s.group).or_default().push(s);
    }
    let mut lines = Vec::new();
    for (group, streams) in by_group {
        for chunk in streams.chunks(100) {
            let label: BTreeMap<&str, &str> = chunk
                .iter()
                .map(|s| (s.stream.as_str(), s.label.as_str()))
                .collect();
            let mut pages = ctx
                .logs()
                .filter_log_events()
                .log_group_name(group)
                .set_log_stream_names(Some(chunk.iter().map(|s| s.stream.clone()).collect()))
                .start_time(since_ms)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(p) => p,
                    // A group or stream that does not exist yet has no lines yet.
                    Err(e) if sdk_code(&e) == Some("ResourceNotFoundException") => break,
                    Err(e) => {
                        return Err(crate::error::from_sdk(
                            format!("reading the log group {group}"),
                            e,
                        )
                        .hint("the caller needs logs:FilterLogEvents on the log group"));
                    }
                };
                for e in page.events() {
                    let stream = e.log_stream_name().unwrap_or_default();
                    lines.push(Line {
                        timestamp: e.timestamp().unwrap_or_default(),
                        source: label.get(stream).copied().unwrap_or(stream).to_string(),
                        message: e.message().unwrap_or_default().to_string(),
                        id: e.event_id().unwrap_or_default().to_string(),
                    });
                }
            }
        }
    }
    lines.sort();
    Ok(lines)
}

/// Keeps the lines not printed before: `seen` holds the ids of the last poll's lines at or
/// after the new start time (CloudWatch's start time is inclusive, so polls overlap).
pub fn unseen(lines: Vec<Line>, seen: &mut std::collections::HashSet<String>) -> Vec<Line> {
    lines
        .into_iter()
        .filter(|l| seen.insert(l.id.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration, LogDriver};

    fn td() -> TaskDefinition {
        let awslogs = |prefix: Option<&str>| {
            let mut b = LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", "/ecs/app");
            if let Some(p) = prefix {
                b = b.options("awslogs-stream-prefix", p);
            }
            b.build().unwrap()
        };
        TaskDefinition::builder()
            .container_definitions(
                ContainerDefinition::builder()
                    .name("web")
                    .log_configuration(awslogs(Some("ecs")))
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("sidecar")
                    .log_configuration(awslogs(None))
                    .build(),
            )
            .container_definitions(ContainerDefinition::builder().name("quiet").build())
            .build()
    }

    #[test]
    fn streams_are_named_as_ecs_names_them() {
        let d = destinations(&td());
        let web = d["web"].as_ref().unwrap();
        assert_eq!(web.group, "/ecs/app");
        assert_eq!(
            web.stream(
                "web",
                "arn:aws:ecs:us-west-2:123456789012:task/demo/0123456789abcdef0123456789abcdef"
            )
            .as_deref(),
            Some("ecs/web/0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            d["sidecar"].as_ref().unwrap().stream("sidecar", "t/x"),
            None
        );
        assert_eq!(d["quiet"], None);
    }

    #[test]
    fn sources_label_each_task_and_container_and_name_what_cannot_be_read() {
        let tasks = vec![
            "arn:aws:ecs:us-west-2:1:task/c/aaaaaaaa1111".to_string(),
            "arn:aws:ecs:us-west-2:1:task/c/bbbbbbbb2222".to_string(),
        ];
        let (found, missing) = sources(&td(), &tasks, None);
        let labels: Vec<&str> = found.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["aaaaaaaa web", "bbbbbbbb web"]);
        assert_eq!(missing, ["quiet", "sidecar"]);
        let (only, _) = sources(&td(), &tasks, Some("sidecar"));
        assert!(only.is_empty());
    }

    #[test]
    fn overlapping_polls_print_each_line_once() {
        let line = |t: i64, id: &str| Line {
            timestamp: t,
            source: "a web".into(),
            message: id.into(),
            id: id.into(),
        };
        let mut seen = Default::default();
        assert_eq!(unseen(vec![line(1, "x"), line(2, "y")], &mut seen).len(), 2);
        let again = unseen(vec![line(2, "y"), line(3, "z")], &mut seen);
        assert_eq!(again, vec![line(3, "z")]);
        assert_eq!(line(3, "z").render(), "[a web] z");
    }
}
