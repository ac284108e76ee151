//! The report of a stopped task: why it stopped, each container's exit code, and which
//! essential container failed (a service's deployment and a one-off task read it alike).

use aws_sdk_ecs::types::Task;

/// The task's stopped reason, with the containers' reasons (where ECS puts pull errors).
pub fn stopped_reason(task: &Task) -> String {
    let mut parts = vec![
        task.stopped_reason()
            .unwrap_or("no reason given")
            .to_string(),
    ];
    for c in task.containers() {
        if let Some(r) = c.reason()
            && !parts.iter().any(|p| p.contains(r))
        {
            parts.push(r.to_string());
        }
    }
    parts.join("; ")
}

/// Lines for one stopped task: its reason, and every container's exit code and reason.
pub fn describe_stopped(task: &Task) -> Vec<String> {
    let arn = task.task_arn().unwrap_or_default();
    let short = arn.rsplit('/').next().unwrap_or(arn);
    let mut lines = vec![format!(
        "task {short} stopped: {}",
        task.stopped_reason().unwrap_or("no reason given")
    )];
    for c in task.containers() {
        lines.push(format!(
            "  container {}: exit code {}{}",
            c.name().unwrap_or("?"),
            c.exit_code()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "none".into()),
            c.reason().map(|r| format!(" ({r})")).unwrap_or_default()
        ));
    }
    lines
}

/// The first essential container that exited non-zero (or never ran), with its exit code.
/// Without a list of essential containers every container counts as essential.
pub fn essential_exit(task: &Task, essentials: &[String]) -> Option<(String, Option<i32>)> {
    task.containers()
        .iter()
        .filter(|c| {
            essentials.is_empty() || essentials.iter().any(|e| Some(e.as_str()) == c.name())
        })
        .find(|c| c.exit_code() != Some(0))
        .map(|c| (c.name().unwrap_or("?").to_string(), c.exit_code()))
}
