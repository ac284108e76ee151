//! From the user's file to the document that is sent: parse (syntax errors with line and
//! column), unwrap the `describe-task-definition` form, strip the read-only fields, and apply
//! the flag overrides (`${NAME}` is filled in by [`super::substitute`]).
//!
//! The document stays a `serde_json::Value` from start to finish, so fields this tool has
//! never heard of pass through untouched.

use serde_json::{Map, Value};

/// Fields that `describe-task-definition` returns and `register-task-definition` refuses.
pub const READ_ONLY: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

/// A JSON path as the user reads it: `containerDefinitions[0].image`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Parses the text. A syntax error names the source, the line and the column; a raw line
/// break (or other control character) inside a string names the line where that string
/// starts, which is where the fix goes, rather than the line after the break.
pub fn parse(source: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| {
        if e.classify() == serde_json::error::Category::Syntax
            && let Some(broken) = raw_control_in_string(text)
        {
            return broken.message(source);
        }
        format!(
            "{source}: JSON syntax error at line {}, column {}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        )
    })
}

/// A control character inside a string: where the string starts, and the character.
struct RawControl {
    line: usize,
    column: usize,
    ch: char,
}

impl RawControl {
    fn message(&self, source: &str) -> String {
        let (what, escape) = match self.ch {
            '\n' | '\r' => (
                "a raw line break",
                "write the break as \\n, or join the lines",
            ),
            '\t' => ("a raw tab", "write it as \\t"),
            _ => ("a raw control character", "write it as a \\u escape"),
        };
        format!(
            "{source}: line {}: the string that starts at column {} holds {what}, and a JSON string cannot hold one: {escape}",
            self.line, self.column
        )
    }
}

/// The first control character inside a string, found by walking the text as JSON: serde_json
/// reports it at the position after it (often "line N+1, column 0"), which is not where the user
/// looks.
fn raw_control_in_string(text: &str) -> Option<RawControl> {
    let (mut line, mut column) = (1, 0);
    let mut start: Option<(usize, usize)> = None;
    let mut escaped = false;
    for ch in text.chars() {
        column += 1;
        match start {
            None if ch == '"' => start = Some((line, column)),
            Some(_) if escaped => escaped = false,
            Some(_) if ch == '\\' => escaped = true,
            Some(_) if ch == '"' => start = None,
            Some((line, column)) if ch.is_control() && (ch as u32) < 0x20 => {
                return Some(RawControl { line, column, ch });
            }
            _ => {}
        }
        if ch == '\n' {
            line += 1;
            column = 0;
        }
    }
    None
}

/// serde_json appends " at line L column C" to its messages; the caller already says it.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// Accepts the register form, and the describe form with or without the
/// `{"taskDefinition": ..., "tags": [...]}` wrapper. Returns the register form and the
/// read-only fields that were removed.
pub fn unwrap_and_strip(doc: Value) -> Result<(Value, Vec<String>), String> {
    let Value::Object(mut top) = doc else {
        return Err(
            "the task definition must be a JSON object (the form `aws ecs register-task-definition --cli-input-json` takes)"
                .into(),
        );
    };
    let mut obj = match top.remove("taskDefinition") {
        Some(Value::Object(inner)) => {
            let mut inner = inner;
            // The wrapper's tags belong to the definition; `failures` is part of the answer.
            if let Some(tags) = top.remove("tags")
                && !inner.contains_key("tags")
            {
                inner.insert("tags".into(), tags);
            }
            top.remove("failures");
            if let Some(key) = top.keys().next() {
                return Err(format!(
                    "{key}: unexpected next to `taskDefinition` in the describe-task-definition wrapper"
                ));
            }
            inner
        }
        Some(other) => {
            top.insert("taskDefinition".into(), other);
            top
        }
        None => top,
    };
    let mut removed = Vec::new();
    for field in READ_ONLY {
        if obj.remove(*field).is_some() {
            removed.push((*field).to_string());
        }
    }
    Ok((Value::Object(obj), removed))
}

/// The overrides that flags make.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `[CONTAINER=]URI`, as given.
    pub images: Vec<String>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub family: Option<String>,
}

/// Splits `[CONTAINER=]URI`. The part before `=` is a container name only when it looks like
/// one (letters, digits, `-`, `_`): image URIs have `/` and `:` before any `=`.
pub fn split_image(spec: &str) -> (Option<&str>, &str) {
    if let Some((name, uri)) = spec.split_once('=')
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return (Some(name), uri);
    }
    (None, spec)
}

/// Applies the overrides. Problems name the flag.
pub fn apply_overrides(doc: &mut Value, o: &Overrides) -> Vec<String> {
    let mut problems = Vec::new();
    let Value::Object(obj) = doc else {
        return problems;
    };
    if let Some(f) = &o.family {
        obj.insert("family".into(), Value::String(f.clone()));
    }
    if let Some(arn) = &o.task_role_arn {
        obj.insert("taskRoleArn".into(), Value::String(arn.clone()));
    }
    if let Some(arn) = &o.execution_role_arn {
        obj.insert("executionRoleArn".into(), Value::String(arn.clone()));
    }
    if o.images.is_empty() {
        return problems;
    }
    let Some(Value::Array(containers)) = obj.get_mut("containerDefinitions") else {
        problems.push(
            "--image: the task definition has no containerDefinitions to set the image of".into(),
        );
        return problems;
    };
    let names: Vec<String> = containers
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    for spec in &o.images {
        let (name, uri) = split_image(spec);
        if uri.trim().is_empty() {
            problems.push(format!("--image '{spec}': the image URI is empty"));
            continue;
        }
        let target = match name {
            Some(n) => match containers
                .iter_mut()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(n))
            {
                Some(c) => c,
                None => {
                    problems.push(format!(
                        "--image '{spec}': there is no container named '{n}' (the containers are: {})",
                        names.join(", ")
                    ));
                    continue;
                }
            },
            None if containers.len() == 1 => &mut containers[0],
            None => {
                problems.push(format!(
                    "--image '{spec}': the task definition has {} containers ({}): write --image CONTAINER=URI",
                    containers.len(),
                    names.join(", ")
                ));
                continue;
            }
        };
        if let Value::Object(c) = target {
            c.insert("image".into(), Value::String(uri.to_string()));
        }
    }
    problems
}

/// Adds the `managed-by=ecskit` tag (the `--delete` marker) unless the document has it.
pub fn add_managed_tag(doc: &mut Value) {
    let Value::Object(obj) = doc else { return };
    let tags = obj
        .entry("tags")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = tags {
        let has = list
            .iter()
            .any(|t| t.get("key").and_then(Value::as_str) == Some(crate::aws::MANAGED_BY.0));
        if !has {
            let mut tag = Map::new();
            tag.insert("key".into(), crate::aws::MANAGED_BY.0.into());
            tag.insert("value".into(), crate::aws::MANAGED_BY.1.into());
            list.push(Value::Object(tag));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse("td.json", "{\n  \"family\": \"a\",\n  \"x\": }").unwrap_err();
        assert!(
            err.starts_with("td.json: JSON syntax error at line 3, column 8:"),
            "{err}"
        );
    }

    #[test]
    fn a_raw_line_break_in_a_string_names_the_line_where_the_string_starts() {
        let text = "{\n  \"family\": \"a\",\n  \"command\": [\"sh\", \"-c\", \"echo one &&\n echo two\"]\n}";
        let err = parse("td.json", text).unwrap_err();
        assert_eq!(
            err,
            "td.json: line 3: the string that starts at column 27 holds a raw line break, and a JSON string cannot hold one: write the break as \\n, or join the lines"
        );
        let tab = parse("td.json", "{\"a\": \"x\ty\"}").unwrap_err();
        assert!(tab.contains("a raw tab") && tab.contains("\\t"), "{tab}");
        // Escaped quotes and backslashes do not end the string early.
        let escaped = parse("t", "{\"a\": \"say \\\"hi\\\" \\\\\n\"}").unwrap_err();
        assert!(
            escaped.starts_with("t: line 1: the string that starts at column 7"),
            "{escaped}"
        );
    }

    #[test]
    fn wrapper_and_read_only_fields() {
        let doc = json!({"taskDefinition": {"family": "a", "revision": 3, "status": "ACTIVE",
            "containerDefinitions": []}, "tags": [{"key": "k", "value": "v"}]});
        let (doc, removed) = unwrap_and_strip(doc).unwrap();
        assert_eq!(removed, vec!["revision", "status"]);
        assert_eq!(
            doc,
            json!({"family": "a", "containerDefinitions": [], "tags": [{"key": "k", "value": "v"}]})
        );
    }

    #[test]
    fn image_overrides() {
        assert_eq!(split_image("web=repo/x:1"), (Some("web"), "repo/x:1"));
        assert_eq!(
            split_image("127.0.0.1:5000/x:1"),
            (None, "127.0.0.1:5000/x:1")
        );
        let mut one = json!({"containerDefinitions": [{"name": "web", "image": "old"}]});
        assert!(
            apply_overrides(
                &mut one,
                &Overrides {
                    images: vec!["new:1".into()],
                    ..Default::default()
                }
            )
            .is_empty()
        );
        assert_eq!(one["containerDefinitions"][0]["image"], "new:1");
        let mut two = json!({"containerDefinitions": [{"name": "web", "image": "a"}, {"name": "log", "image": "b"}]});
        let p = apply_overrides(
            &mut two,
            &Overrides {
                images: vec!["new:1".into(), "db=x".into()],
                ..Default::default()
            },
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("write --image CONTAINER=URI"), "{p:?}");
        assert!(p[1].contains("no container named 'db'"), "{p:?}");
        assert!(
            apply_overrides(
                &mut two,
                &Overrides {
                    images: vec!["log=new:2".into()],
                    family: Some("f".into()),
                    ..Default::default()
                }
            )
            .is_empty()
        );
        assert_eq!(two["containerDefinitions"][1]["image"], "new:2");
        assert_eq!(two["family"], "f");
    }
}
