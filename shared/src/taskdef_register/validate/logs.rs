//! The awslogs log driver's options: the group, the region, the stream prefix Fargate needs,
//! and the execution role that sends the logs.

use serde_json::{Map, Value};

use super::fields::describe;
use crate::taskdef_register::document::join;

const AWSLOGS_OPTIONS: &[&str] = &[
    "awslogs-group",
    "awslogs-region",
    "awslogs-stream-prefix",
    "awslogs-create-group",
    "awslogs-datetime-format",
    "awslogs-multiline-pattern",
    "awslogs-endpoint",
    "mode",
    "max-buffer-size",
];

pub(super) fn awslogs(
    log: &Map<String, Value>,
    path: &str,
    fargate: bool,
    has_execution_role: bool,
    out: &mut Vec<String>,
) {
    let op = join(path, "options");
    let Some(Value::Object(options)) = log.get("options") else {
        out.push(format!(
            "{op}: missing: the awslogs driver needs awslogs-group, awslogs-region and awslogs-stream-prefix"
        ));
        return;
    };
    for (k, v) in options {
        if !v.is_string() {
            out.push(format!(
                "{}: must be a string, not {}",
                join(&op, k),
                describe(v)
            ));
        }
        if !AWSLOGS_OPTIONS.contains(&k.as_str()) {
            out.push(format!(
                "{}: not an awslogs option (known: {})",
                join(&op, k),
                AWSLOGS_OPTIONS.join(", ")
            ));
        }
    }
    let get = |k: &str| options.get(k).and_then(Value::as_str);
    match get("awslogs-group") {
        None => out.push(format!(
            "{}: missing: name the CloudWatch log group",
            join(&op, "awslogs-group")
        )),
        Some(g) => {
            if g.is_empty()
                || g.len() > 512
                || !g
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c))
            {
                out.push(format!(
                    "{}: '{g}' is not a valid log group name: 1 to 512 of letters, digits and ._-/#",
                    join(&op, "awslogs-group")
                ));
            }
        }
    }
    match get("awslogs-region") {
        None => out.push(format!(
            "{}: missing: the region of the log group, like us-east-1",
            join(&op, "awslogs-region")
        )),
        Some(r) if !looks_like_region(r) => out.push(format!(
            "{}: '{r}' is not a region, like us-east-1",
            join(&op, "awslogs-region")
        )),
        _ => {}
    }
    if fargate && get("awslogs-stream-prefix").is_none_or(str::is_empty) {
        out.push(format!(
            "{}: missing: Fargate requires a stream prefix, like \"ecs\"",
            join(&op, "awslogs-stream-prefix")
        ));
    }
    if fargate && !has_execution_role {
        out.push(format!(
            "{path}: awslogs on Fargate sends logs with the execution role: set executionRoleArn (or pass --execution-role-arn)"
        ));
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
fn looks_like_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}
