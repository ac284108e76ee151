//! A service's before task (`[before]`, `[services.NAME.before]`): the section as written and
//! its check.

use std::collections::BTreeMap;

use ecskit_contract::validate;
use serde::Deserialize;

/// A one-off task (task-run) that runs after the service's task definition is registered and
/// before the service is updated: the usual "migrate, then roll out".
#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Before {
    /// The container's command, word by word (required).
    pub command: Option<Vec<String>>,
    /// The container the command and env are for (default: the first essential one).
    pub container: Option<String>,
    /// Environment added to that container for this run.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The longest wait for the task to stop, in seconds.
    pub timeout: Option<u64>,
}

/// A before task's problems: task-run would refuse them, but only after the task definition
/// was registered; said here, nothing runs.
pub(super) fn check_before(b: &Before, problems: &mut Vec<String>) {
    match &b.command {
        None => problems.push(
            "before.command: give the task's command, e.g. command = [\"bin/migrate\", \"--up\"]"
                .into(),
        ),
        Some(c) if c.is_empty() || c[0].trim().is_empty() => problems
            .push("before.command: the command is empty: give at least the program to run".into()),
        Some(_) => {}
    }
    if let Some(c) = &b.container
        && let Err(e) = validate::ecs_name(c, 255)
    {
        problems.push(format!("before.container: {e}"));
    }
    for k in b.env.keys() {
        if k.is_empty() || k.contains('=') || k.starts_with('-') {
            problems.push(format!(
                "before.env: '{k}' is not a variable name (no '=', not empty, no leading '-')"
            ));
        }
    }
    if b.timeout == Some(0) {
        problems.push("before.timeout: give the longest wait in seconds, more than 0".into());
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::tests::{MANY, dir};

    #[test]
    fn a_before_task_merges_like_the_other_sections_and_is_checked() {
        let d = dir();
        let text = format!(
            "{MANY}\n[before]\ncommand = [\"bin/migrate\", \"--up\"]\nenv = {{ MODE = \"once\" }}\n\
             [services.worker.before]\ncontainer = \"app\"\ntimeout = 600\n"
        );
        let s = parse(&text, &d).unwrap_or_else(|p| panic!("{}", p.join("\n")));
        let (web, worker) = (&s.services[0], &s.services[1]);
        let b = web.before.as_ref().unwrap();
        assert_eq!(b.command.as_deref().unwrap(), ["bin/migrate", "--up"]);
        assert_eq!(b.container, None);
        let b = worker.before.as_ref().unwrap();
        assert_eq!(b.command.as_deref().unwrap(), ["bin/migrate", "--up"]);
        assert_eq!(b.env["MODE"], "once");
        assert_eq!(
            (b.container.as_deref(), b.timeout),
            (Some("app"), Some(600))
        );
        // Without a command, with an empty one, a bad env name or an unknown key: all said.
        let bad = format!(
            "{MANY}\n[services.web.before]\ncommand = []\ncontainer = \"no spaces\"\nenv = {{ \"A=B\" = \"1\", \"--task-role-arn\" = \"x\" }}\ntimeout = 0\n\
             [services.worker.before]\ncontanier = \"app\"\n"
        );
        let joined = parse(&bad, &d).unwrap_err().join("\n");
        for want in [
            "services.web.before.command: the command is empty",
            "services.web.before.env: 'A=B' is not a variable name",
            "services.web.before.env: '--task-role-arn' is not a variable name",
            "services.web.before.container: ",
            "services.web.before.timeout: give the longest wait",
            "unknown key `services.worker.before.contanier`",
            "services.worker: before.command: give the task's command",
        ] {
            assert!(joined.contains(want), "{want}:\n{joined}");
        }
    }

    #[test]
    fn a_before_task_with_a_service_file_is_refused() {
        let d = dir();
        std::fs::write(d.join("service.json"), "{}").unwrap();
        let text = format!(
            "{}\n[services.web.before]\ncommand = [\"bin/migrate\"]\n",
            MANY.replace(
                "service = { count = 3 }",
                "service = { count = 3, file = \"service.json\" }"
            )
        );
        let joined = parse(&text, &d).unwrap_err().join("\n");
        assert!(
            joined.contains("a before task with service.file is not supported yet"),
            "{joined}"
        );
    }
}
