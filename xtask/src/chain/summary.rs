//! The table (or JSON) a run of the chain ends with: each step, its outputs, its calls.

use std::time::Duration;

use serde_json::{Value, json};

use crate::stack::Stack;

use super::{Calls, Step, StepResult, exit_code};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

pub struct Summary<'a> {
    pub title: &'a str,
    pub stack: &'a Stack,
    pub planned: &'a [Step],
    pub results: &'a [StepResult],
    pub time: Duration,
    pub dry_run: bool,
}

impl Summary<'_> {
    pub fn calls(&self) -> Calls {
        self.results
            .iter()
            .fold(Calls::default(), |acc, r| acc + r.calls)
    }

    fn result(&self, step: Step) -> Option<&StepResult> {
        self.results.iter().find(|r| r.step == step)
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.text(),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&self.json()).unwrap_or_default();
                s.push('\n');
                s
            }
        }
    }

    pub fn json(&self) -> Value {
        let steps: Vec<Value> = self
            .planned
            .iter()
            .map(|step| match self.result(*step) {
                Some(r) => {
                    let outputs: serde_json::Map<String, Value> = r
                        .outputs
                        .iter()
                        .map(|(k, v)| (k.trim_start_matches("ECSKIT_").to_lowercase(), json!(v)))
                        .collect();
                    json!({
                        "step": step.binary(),
                        "status": if r.code == 0 { "ok" } else { "failed" },
                        "exit_code": r.code,
                        "changed": r.changed,
                        "seconds": secs(r.time),
                        "aws_calls": r.calls,
                        "outputs": outputs,
                        "error": r.error,
                    })
                }
                None => json!({"step": step.binary(), "status": "not run"}),
            })
            .collect();
        json!({
            "task": self.title,
            "stack": self.stack.path.display().to_string(),
            "app": self.stack.app,
            "region": self.stack.region,
            "dry_run": self.dry_run,
            "exit_code": exit_code(self.results),
            "changed": self.results.iter().any(|r| r.changed == Some(true)),
            "seconds": secs(self.time),
            "aws_calls": self.calls(),
            "steps": steps,
        })
    }

    fn text(&self) -> String {
        let mut out = format!(
            "{} {}: app {} in {}{}\n",
            self.title,
            self.stack.path.display(),
            self.stack.app,
            self.stack.region,
            if self.dry_run {
                " (dry run: nothing was changed)"
            } else {
                ""
            }
        );
        out.push_str(&format!(
            "  {:<17} {:<8} {:<8} {:>6} {:>9} {:>8}\n",
            "step", "result", "changed", "calls", "mutating", "time"
        ));
        for step in self.planned {
            match self.result(*step) {
                Some(r) => {
                    let result = if r.code == 0 {
                        "ok".to_string()
                    } else {
                        format!("exit {}", r.code)
                    };
                    let changed = match r.changed {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "-",
                    };
                    out.push_str(&format!(
                        "  {:<17} {:<8} {:<8} {:>6} {:>9} {:>7.2}s\n",
                        step.binary(),
                        result,
                        changed,
                        r.calls.total,
                        r.calls.mutating,
                        secs(r.time)
                    ));
                    for key in step.key_outputs() {
                        let name = format!("ECSKIT_{key}");
                        if let Some((_, v)) = r.outputs.iter().find(|(k, _)| *k == name) {
                            out.push_str(&format!("      {}: {v}\n", key.to_lowercase()));
                        }
                    }
                    if let Some(e) = &r.error {
                        for line in e.lines() {
                            out.push_str(&format!("      | {line}\n"));
                        }
                    }
                }
                None => out.push_str(&format!("  {:<17} not run\n", step.binary())),
            }
        }
        let calls = self.calls();
        out.push_str(&format!(
            "  {:<17} {:<8} {:<8} {:>6} {:>9} {:>7.2}s\n",
            "total",
            if exit_code(self.results) == 0 && self.results.len() == self.planned.len() {
                "ok"
            } else {
                "FAILED"
            },
            if self.results.iter().any(|r| r.changed == Some(true)) {
                "yes"
            } else {
                "no"
            },
            calls.total,
            calls.mutating,
            secs(self.time)
        ));
        out
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::runner::tests::result;
    use crate::chain::tests::stack;

    #[test]
    fn summary_shows_each_step_and_the_totals() {
        let s = stack();
        let planned = [Step::ImagePush, Step::RoleCreate, Step::TaskdefRegister];
        let results = vec![
            result(Step::ImagePush, 0, Some(false), 120),
            result(Step::RoleCreate, 1, None, 80),
        ];
        let summary = Summary {
            title: "deploy",
            stack: &s,
            planned: &planned,
            results: &results,
            time: Duration::from_millis(200),
            dry_run: false,
        };
        let text = summary.render(Format::Text);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("step") && lines[1].contains("mutating"));
        assert!(lines[2].starts_with("  image-push") && lines[2].contains(" ok "));
        assert!(lines[2].contains(" no ") && lines[2].ends_with("0.12s"));
        assert_eq!(lines[3], "      image_uri: 127.0.0.1:5000/web@sha256:ab");
        assert!(lines[4].starts_with("  role-create") && lines[4].contains("exit 1"));
        assert_eq!(lines[5], "      | error: no such image web:1");
        assert_eq!(lines[6].trim(), "taskdef-register  not run");
        assert!(lines[7].contains("FAILED") && lines[7].contains("8"));

        let v = summary.json();
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["aws_calls"], json!({"total": 8, "mutating": 0}));
        assert_eq!(v["steps"][0]["changed"], false);
        assert_eq!(
            v["steps"][0]["outputs"]["image_uri"],
            "127.0.0.1:5000/web@sha256:ab"
        );
        assert_eq!(v["steps"][1]["status"], "failed");
        assert_eq!(v["steps"][2]["status"], "not run");
    }
}
