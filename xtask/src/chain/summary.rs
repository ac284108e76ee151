//! The table (or JSON) a run of the chain ends with: each step, its outputs, its calls.

use std::time::Duration;

use serde_json::{Value, json};

use crate::stack::Stacks;

use super::{Calls, StepResult, Unit, exit_code};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

pub struct Summary<'a> {
    pub title: &'a str,
    pub stacks: &'a Stacks,
    pub units: &'a [Unit],
    /// One per unit; `None` for a unit that did not run.
    pub results: &'a [Option<StepResult>],
    pub time: Duration,
    pub dry_run: bool,
}

impl Summary<'_> {
    /// Every unit's calls, counted once (a unit shared by services ran once).
    pub fn calls(&self) -> Calls {
        self.results
            .iter()
            .flatten()
            .fold(Calls::default(), |acc, r| acc + r.calls)
    }

    fn changed(&self) -> bool {
        self.results
            .iter()
            .flatten()
            .any(|r| r.changed == Some(true))
    }

    fn ok(&self) -> bool {
        exit_code(self.results) == 0 && self.results.iter().all(|r| r.is_some())
    }

    /// The failed units, as "service: step (exit N)", in the order of the plan.
    pub fn failures(&self) -> Vec<String> {
        self.units
            .iter()
            .zip(self.results)
            .filter_map(|(u, r)| {
                let r = r.as_ref().filter(|r| r.code != 0)?;
                Some(format!(
                    "{}{} (exit {})",
                    if self.stacks.is_multi() {
                        format!("{}: ", self.service_names(u).join(", "))
                    } else {
                        String::new()
                    },
                    u.step.binary(),
                    r.code
                ))
            })
            .collect()
    }

    fn service_names(&self, u: &Unit) -> Vec<&str> {
        u.services
            .iter()
            .map(|i| self.stacks.services[*i].label())
            .collect()
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
        let multi = self.stacks.is_multi();
        let steps: Vec<Value> = self
            .units
            .iter()
            .zip(self.results)
            .map(|(u, r)| {
                let mut v = match r {
                    Some(r) => {
                        let outputs: serde_json::Map<String, Value> = r
                            .outputs
                            .iter()
                            .map(|(k, v)| {
                                (k.trim_start_matches("ECSKIT_").to_lowercase(), json!(v))
                            })
                            .collect();
                        json!({
                            "step": u.step.binary(),
                            "status": if r.code == 0 { "ok" } else { "failed" },
                            "exit_code": r.code,
                            "changed": r.changed,
                            "seconds": secs(r.time),
                            "aws_calls": r.calls,
                            "outputs": outputs,
                            "error": r.error,
                        })
                    }
                    None => json!({"step": u.step.binary(), "status": "not run"}),
                };
                if multi {
                    v["services"] = json!(self.service_names(u));
                }
                v
            })
            .collect();
        let mut out = json!({
            "task": self.title,
            "stack": self.stacks.path.display().to_string(),
            "app": self.stacks.app,
            "region": self.stacks.region,
            "dry_run": self.dry_run,
            "exit_code": exit_code(self.results),
            "changed": self.changed(),
            "seconds": secs(self.time),
            "aws_calls": self.calls(),
            "steps": steps,
        });
        if multi {
            let services: Vec<Value> = self
                .stacks
                .services
                .iter()
                .enumerate()
                .filter(|(i, _)| self.units.iter().any(|u| u.services.contains(i)))
                .map(|(i, s)| {
                    let mine: Vec<Option<&StepResult>> = self
                        .units
                        .iter()
                        .zip(self.results)
                        .filter(|(u, _)| u.services.contains(&i))
                        .map(|(_, r)| r.as_ref())
                        .collect();
                    json!({
                        "name": s.label(),
                        "cluster": s.cluster,
                        "service": s.service,
                        "exit_code": mine.iter().flatten().find(|r| r.code != 0).map(|r| r.code).unwrap_or(0),
                        "changed": mine.iter().flatten().any(|r| r.changed == Some(true)),
                        "not_run": mine.iter().filter(|r| r.is_none()).count(),
                    })
                })
                .collect();
            out["services"] = json!(services);
        }
        out
    }

    fn text(&self) -> String {
        let mut out = format!(
            "{} {}: app {} in {}{}\n",
            self.title,
            self.stacks.path.display(),
            self.stacks.app,
            self.stacks.region,
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
        if self.stacks.is_multi() {
            for (i, s) in self.stacks.services.iter().enumerate() {
                let mine: Vec<usize> = (0..self.units.len())
                    .filter(|u| self.units[*u].services.contains(&i))
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                out.push_str(&format!(
                    "  {} (service {} in cluster {})\n",
                    s.label(),
                    s.service,
                    s.cluster
                ));
                for u in mine {
                    let first = self.units[u].services[0];
                    if first == i {
                        self.row(&mut out, u);
                    } else {
                        // Shared: it ran once, shown (and counted) with its first service.
                        out.push_str(&format!(
                            "  {:<17} shared with {}\n",
                            self.units[u].step.binary(),
                            self.stacks.services[first].label()
                        ));
                    }
                }
            }
        } else {
            for u in 0..self.units.len() {
                self.row(&mut out, u);
            }
        }
        let calls = self.calls();
        out.push_str(&format!(
            "  {:<17} {:<8} {:<8} {:>6} {:>9} {:>7.2}s\n",
            "total",
            if self.ok() { "ok" } else { "FAILED" },
            if self.changed() { "yes" } else { "no" },
            calls.total,
            calls.mutating,
            secs(self.time)
        ));
        for f in self.failures() {
            out.push_str(&format!("  failed: {f}\n"));
        }
        out
    }

    /// One unit's line, its key outputs and its error.
    fn row(&self, out: &mut String, u: usize) {
        let step = self.units[u].step;
        let Some(r) = &self.results[u] else {
            out.push_str(&format!("  {:<17} not run\n", step.binary()));
            return;
        };
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
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Step;
    use crate::chain::plan::tests::{TWO, stacks};
    use crate::chain::runner::tests::result;

    fn unit(step: Step, services: &[usize]) -> Unit {
        Unit {
            step,
            args: Vec::new(),
            services: services.to_vec(),
            after: Vec::new(),
        }
    }

    #[test]
    fn summary_shows_each_step_and_the_totals() {
        let mut s = stacks(TWO);
        s.services.truncate(1);
        s.services[0].key = None;
        let units = [
            unit(Step::ImagePush, &[0]),
            unit(Step::RoleCreate, &[0]),
            unit(Step::TaskdefRegister, &[0]),
        ];
        let results = vec![
            Some(result(Step::ImagePush, 0, Some(false), 120)),
            Some(result(Step::RoleCreate, 1, None, 80)),
            None,
        ];
        let summary = Summary {
            title: "deploy",
            stacks: &s,
            units: &units,
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
        assert_eq!(lines[8], "  failed: role-create (exit 1)");

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
        assert!(v.get("services").is_none());
    }

    #[test]
    fn several_services_each_show_their_steps_and_a_failure_names_its_service() {
        let s = stacks(TWO);
        let units = [
            unit(Step::RoleCreate, &[0, 1]),
            unit(Step::ServiceRun, &[0]),
            unit(Step::ServiceRun, &[1]),
        ];
        let results = vec![
            Some(result(Step::RoleCreate, 0, Some(true), 50)),
            Some(result(Step::ServiceRun, 0, Some(true), 50)),
            Some(result(Step::ServiceRun, 3, None, 50)),
        ];
        let summary = Summary {
            title: "deploy",
            stacks: &s,
            units: &units,
            results: &results,
            time: Duration::from_millis(100),
            dry_run: false,
        };
        let text = summary.render(Format::Text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "  web (service web in cluster shop)");
        assert!(lines[3].starts_with("  role-create") && lines[3].contains(" yes "));
        assert!(lines[4].starts_with("  service-run") && lines[4].contains(" ok "));
        assert_eq!(lines[5], "  worker (service worker in cluster shop)");
        assert_eq!(lines[6], "  role-create       shared with web");
        assert!(lines[7].starts_with("  service-run") && lines[7].contains("exit 3"));
        let total = lines.iter().find(|l| l.starts_with("  total")).unwrap();
        // The shared role-create counted once: 3 units of 4 calls.
        assert!(
            total.contains("FAILED") && total.contains(" 12 "),
            "{total}"
        );
        assert_eq!(
            lines.last().unwrap(),
            &"  failed: worker: service-run (exit 3)"
        );
        let v = summary.json();
        assert_eq!(v["exit_code"], 3);
        assert_eq!(v["steps"][0]["services"], json!(["web", "worker"]));
        assert_eq!(v["services"][0]["exit_code"], 0);
        assert_eq!(v["services"][1]["exit_code"], 3);
    }
}
