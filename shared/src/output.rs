//! The one result type of every step, and the four ways to print it.
//!
//! A step fills a [`Report`] with named outputs (`TASK_ROLE_ARN`, `IMAGE_URI`, ...). The names
//! are the contract between steps: `--output env` prints them as `ECSKIT_TASK_ROLE_ARN=...`,
//! which the next step's flags read back from the environment; `--output github` prints
//! `task_role_arn=...` for `$GITHUB_OUTPUT`; `json` and `text` are for people and scripts.
//! Only results go to stdout; everything else goes to stderr through `tracing`.

use serde_json::{Map, Value, json};

use crate::aws::CallSummary;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object.
    Json,
    /// `ECSKIT_NAME=value` lines for `eval "$(step --output env)"`.
    Env,
    /// `name=value` lines for `>> "$GITHUB_OUTPUT"`.
    Github,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// True when the run changed (or, in dry-run, would change) anything.
    pub changed: bool,
    pub dry_run: bool,
    /// What was done (or would be done), one line each, in order.
    pub actions: Vec<String>,
    /// Named outputs in upper snake case without the `ECSKIT_` prefix, in insertion order.
    outputs: Vec<(String, Value)>,
    /// Details shown in `json` (and summarised in `text`) that are not part of the env contract.
    details: Map<String, Value>,
    /// Extra lines for `text` only.
    notes: Vec<String>,
    pub calls: CallSummary,
}

impl Report {
    pub fn new(actions: Vec<String>, dry_run: bool, calls: CallSummary) -> Self {
        Report {
            changed: !actions.is_empty(),
            dry_run,
            actions,
            outputs: Vec::new(),
            details: Map::new(),
            notes: Vec::new(),
            calls,
        }
    }

    /// A named output: `ECSKIT_<NAME>` in env, `<name>` in github and json.
    pub fn output(mut self, name: &str, value: impl Into<Value>) -> Self {
        debug_assert!(
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "output names are UPPER_SNAKE: {name}"
        );
        let value = value.into();
        if let Some(slot) = self.outputs.iter_mut().find(|(n, _)| n == name) {
            slot.1 = value;
        } else {
            self.outputs.push((name.to_string(), value));
        }
        self
    }

    /// The named outputs, in insertion order.
    pub fn outputs(&self) -> &[(String, Value)] {
        &self.outputs
    }

    /// A detail for `json` (lists of keys, events ...); `text` prints it as `name: value`.
    pub fn detail(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.details.insert(name.to_string(), value.into());
        self
    }

    /// A line for `text` output only.
    pub fn note(mut self, line: impl Into<String>) -> Self {
        self.notes.push(line.into());
        self
    }

    /// Overrides `changed` for steps whose change is not an announced action.
    pub fn changed(mut self, changed: bool) -> Self {
        self.changed = changed;
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .or_else(|| self.details.get(name))
    }

    /// The output as a string (lists joined with commas), as `env` would print it.
    pub fn get_str(&self, name: &str) -> Option<String> {
        self.get(name).map(scalar)
    }

    pub fn render(&self, format: OutputFormat) -> String {
        let mut out = String::new();
        match format {
            OutputFormat::Text => {
                for note in &self.notes {
                    out.push_str(note);
                    out.push('\n');
                }
                let verb = if self.dry_run { "would " } else { "" };
                for action in &self.actions {
                    out.push_str(&format!("  {verb}{action}\n"));
                }
                out.push_str(&format!(
                    "changed: {}{}\n",
                    self.changed,
                    if self.dry_run {
                        " (dry run: nothing was changed)"
                    } else {
                        ""
                    }
                ));
                for (name, value) in &self.outputs {
                    out.push_str(&format!("{}: {}\n", name.to_lowercase(), scalar(value)));
                }
                for (name, value) in &self.details {
                    out.push_str(&format!("{name}: {}\n", scalar(value)));
                }
            }
            OutputFormat::Json => {
                let mut obj = Map::new();
                obj.insert("changed".into(), json!(self.changed));
                obj.insert("dry_run".into(), json!(self.dry_run));
                for (name, value) in &self.outputs {
                    obj.insert(name.to_lowercase(), value.clone());
                }
                for (name, value) in &self.details {
                    obj.insert(name.clone(), value.clone());
                }
                obj.insert("actions".into(), json!(self.actions));
                obj.insert("aws_calls".into(), json!(self.calls));
                out = serde_json::to_string_pretty(&Value::Object(obj)).unwrap_or_default();
                out.push('\n');
            }
            OutputFormat::Env => {
                let pairs = self.env_pairs();
                for (name, value) in &pairs {
                    out.push_str(&ecskit_contract::env::assignment(name, value));
                    out.push('\n');
                }
                // Plain assignments are shell variables, which the next step (a child process)
                // would not see: `eval "$(a --output env)"; b` works only when they are exported.
                // The assignments stay plain `NAME=value` lines for `set -a; . file` readers.
                let names: Vec<String> = pairs
                    .iter()
                    .map(|(n, _)| ecskit_contract::outputs::var(n))
                    .collect();
                out.push_str(&format!("export {}\n", names.join(" ")));
            }
            OutputFormat::Github => {
                for (name, value) in self.env_pairs() {
                    let name = name.to_lowercase();
                    if value.contains('\n') {
                        // GitHub's multi-line syntax; the delimiter cannot occur in the value.
                        let mut delim = String::from("ECSKIT_EOF");
                        while value.contains(&delim) {
                            delim.push('_');
                        }
                        out.push_str(&format!("{name}<<{delim}\n{value}\n{delim}\n"));
                    } else {
                        out.push_str(&format!("{name}={value}\n"));
                    }
                }
            }
        }
        out
    }

    fn env_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .outputs
            .iter()
            .map(|(n, v)| (n.clone(), scalar(v)))
            .collect();
        pairs.push(("CHANGED".into(), self.changed.to_string()));
        pairs
    }
}

/// A value as one line: strings bare, lists joined with commas, the rest as JSON.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report::new(
            vec!["create role app-task".into()],
            false,
            CallSummary {
                total: 3,
                mutating: 1,
            },
        )
        .output("TASK_ROLE_ARN", "arn:aws:iam::123456789012:role/app-task")
        .output("KEYS", vec!["a b", "c"])
    }

    #[test]
    fn env_lines_can_be_evaled() {
        assert_eq!(
            sample().render(OutputFormat::Env),
            "ECSKIT_TASK_ROLE_ARN=arn:aws:iam::123456789012:role/app-task\nECSKIT_KEYS='a b,c'\nECSKIT_CHANGED=true\nexport ECSKIT_TASK_ROLE_ARN ECSKIT_KEYS ECSKIT_CHANGED\n"
        );
    }

    #[test]
    fn env_output_reaches_the_next_process_through_eval() {
        let rendered = sample().render(OutputFormat::Env);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"eval "$ECSKIT_TEST_RENDERED"; sh -c 'printf "%s|%s|%s" "$ECSKIT_TASK_ROLE_ARN" "$ECSKIT_KEYS" "$ECSKIT_CHANGED"'"#)
            .env("ECSKIT_TEST_RENDERED", rendered)
            .env_remove("ECSKIT_TASK_ROLE_ARN")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "arn:aws:iam::123456789012:role/app-task|a b,c|true"
        );
    }

    #[test]
    fn github_lines_are_lower_case() {
        assert_eq!(
            sample().render(OutputFormat::Github),
            "task_role_arn=arn:aws:iam::123456789012:role/app-task\nkeys=a b,c\nchanged=true\n"
        );
    }

    #[test]
    fn github_multiline_values_use_a_delimiter() {
        let r = Report::new(vec![], false, CallSummary::default()).output("DIFF", "a\nb");
        assert_eq!(
            r.render(OutputFormat::Github),
            "diff<<ECSKIT_EOF\na\nb\nECSKIT_EOF\nchanged=false\n"
        );
    }

    #[test]
    fn json_has_changed_outputs_and_calls() {
        let v: Value = serde_json::from_str(&sample().render(OutputFormat::Json)).unwrap();
        assert_eq!(v["changed"], json!(true));
        assert_eq!(
            v["task_role_arn"],
            json!("arn:aws:iam::123456789012:role/app-task")
        );
        assert_eq!(v["aws_calls"], json!({"total": 3, "mutating": 1}));
        assert_eq!(v["actions"], json!(["create role app-task"]));
    }

    #[test]
    fn text_says_dry_run() {
        let r = Report::new(vec!["create role x".into()], true, CallSummary::default());
        let text = r.render(OutputFormat::Text);
        assert!(text.contains("  would create role x\n"), "{text}");
        assert!(
            text.contains("changed: true (dry run: nothing was changed)"),
            "{text}"
        );
    }
}
