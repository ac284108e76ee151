//! Checks of the document before any call. Every problem found is reported, each starting
//! with its JSON path, so one run shows all there is to fix.
//!
//! Only fields this tool knows are checked; unknown fields pass through to the API, which is
//! the judge of them.

mod fields;
mod logs;
mod sizes;
mod warnings;

use serde_json::Value;

use crate::taskdef_register::document::join;
use fields::*;
pub use sizes::{cpu_units, fargate_memory_for, memory_mib};
pub use warnings::warnings;

/// A credential-looking environment variable name.
pub fn looks_like_credential(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper == "AWS_SECRET_ACCESS_KEY"
        || ["PASSWORD", "TOKEN", "SECRET"]
            .iter()
            .any(|w| upper.contains(w))
}

/// All the problems in a document (empty when it may be sent).
pub fn validate(doc: &Value, allow_plaintext_secrets: bool) -> Vec<String> {
    let mut out = Vec::new();
    let Value::Object(td) = doc else {
        out.push("the task definition must be a JSON object".into());
        return out;
    };
    types(td, "", TASK_FIELDS, &mut out);

    // family
    match td.get("family") {
        None | Some(Value::Null) => {
            out.push("family: missing: name the task definition family (or pass --family)".into())
        }
        Some(Value::String(f)) => {
            if f.is_empty()
                || f.len() > 255
                || !f
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                out.push(format!(
                    "family: '{f}' is not a valid family name: 1 to 255 letters, digits, '-' and '_'"
                ));
            }
        }
        Some(_) => {} // reported by types()
    }

    let compat: Vec<&str> = td
        .get("requiresCompatibilities")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(Value::Array(list)) = td.get("requiresCompatibilities") {
        for (i, v) in list.iter().enumerate() {
            if !matches!(
                v.as_str(),
                Some("EC2" | "FARGATE" | "EXTERNAL" | "MANAGED_INSTANCES")
            ) {
                out.push(format!(
                    "requiresCompatibilities[{i}]: {v} is not one of EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES"
                ));
            }
        }
    }
    let fargate = compat.contains(&"FARGATE");
    let network_mode = td.get("networkMode").and_then(Value::as_str);
    if let Some(m) = network_mode
        && !matches!(m, "bridge" | "host" | "awsvpc" | "none")
    {
        out.push(format!(
            "networkMode: '{m}' is not one of bridge, host, awsvpc, none"
        ));
    }
    let awsvpc = network_mode == Some("awsvpc");

    let task_cpu = td.get("cpu").and_then(Value::as_str);
    let task_mem = td.get("memory").and_then(Value::as_str);
    let cpu = task_cpu.and_then(cpu_units);
    let mem = task_mem.and_then(memory_mib);
    if let (Some(s), None) = (task_cpu, cpu) {
        out.push(format!(
            "cpu: '{s}' is not a CPU size: write CPU units like \"256\" or \"1024\", or \"1 vCPU\""
        ));
    }
    if let (Some(s), None) = (task_mem, mem) {
        out.push(format!(
            "memory: '{s}' is not a memory size: write MiB like \"512\" or \"2048\", or \"2 GB\""
        ));
    }

    if fargate {
        if !awsvpc {
            out.push(format!(
                "networkMode: Fargate requires \"awsvpc\", not {}",
                network_mode.map_or("nothing".to_string(), |m| format!("\"{m}\""))
            ));
        }
        match (cpu, mem) {
            (Some(c), Some(m)) => match fargate_memory_for(c) {
                None => out.push(format!(
                    "cpu: {c} is not a Fargate CPU size: use 256, 512, 1024, 2048, 4096, 8192 or 16384"
                )),
                Some(allowed) if !allowed.contains(&m) => out.push(format!(
                    "memory: {m} MiB is not valid with cpu {c} on Fargate: allowed are {} to {} ({})",
                    sizes::gb(allowed[0]),
                    sizes::gb(allowed[allowed.len() - 1]),
                    if allowed.len() <= 3 {
                        allowed.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
                    } else {
                        format!("in steps of {} MiB", allowed[1] - allowed[0])
                    }
                )),
                Some(_) => {}
            },
            _ => {
                if td.get("cpu").is_none_or(Value::is_null) {
                    out.push("cpu: Fargate requires a task-level cpu, like \"256\"".into());
                }
                if td.get("memory").is_none_or(Value::is_null) {
                    out.push("memory: Fargate requires a task-level memory, like \"512\"".into());
                }
            }
        }
    }

    for (field, value) in [
        ("taskRoleArn", td.get("taskRoleArn")),
        ("executionRoleArn", td.get("executionRoleArn")),
    ] {
        if let Some(Value::String(arn)) = value
            && let Err(e) = crate::validate::role_arn(arn)
        {
            out.push(format!(
                "{field}: {e}: give a role ARN like arn:aws:iam::123456789012:role/NAME"
            ));
        }
    }
    let has_execution_role = td.get("executionRoleArn").is_some_and(|v| v.is_string());

    // containers
    let containers = match td.get("containerDefinitions") {
        None | Some(Value::Null) => {
            out.push(
                "containerDefinitions: missing: a task definition needs at least one container"
                    .into(),
            );
            Vec::new()
        }
        Some(Value::Array(l)) if l.is_empty() => {
            out.push(
                "containerDefinitions: empty: a task definition needs at least one container"
                    .into(),
            );
            Vec::new()
        }
        Some(Value::Array(_)) => items(td, "", "containerDefinitions", &mut out),
        Some(_) => Vec::new(),
    };
    let mut seen_names: Vec<&str> = Vec::new();
    let mut reserved_sum = 0u64;
    for (path, c) in &containers {
        types(c, path, CONTAINER_FIELDS, &mut out);
        match c.get("name") {
            None | Some(Value::Null) => out.push(format!(
                "{}: missing: every container needs a name",
                join(path, "name")
            )),
            Some(Value::String(n)) => {
                if n.is_empty()
                    || n.len() > 255
                    || !n
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
                {
                    out.push(format!(
                        "{}: '{n}' is not a valid container name: 1 to 255 letters, digits, '-' and '_'",
                        join(path, "name")
                    ));
                } else if seen_names.contains(&n.as_str()) {
                    out.push(format!(
                        "{}: '{n}' is used by another container: names must be unique",
                        join(path, "name")
                    ));
                } else {
                    seen_names.push(n);
                }
            }
            Some(_) => {}
        }
        match c.get("image") {
            None | Some(Value::Null) => out.push(format!(
                "{}: missing: every container needs an image (or pass --image)",
                join(path, "image")
            )),
            Some(Value::String(i)) if i.trim().is_empty() => out.push(format!(
                "{}: empty: give an image URI (or pass --image)",
                join(path, "image")
            )),
            _ => {}
        }

        // memory
        let cmem = c.get("memory").and_then(Value::as_u64);
        let cres = c.get("memoryReservation").and_then(Value::as_u64);
        if let (Some(m), Some(r)) = (cmem, cres)
            && r > m
        {
            out.push(format!(
                "{}: {r} MiB is more than the container's memory limit ({m} MiB)",
                join(path, "memoryReservation")
            ));
        }
        if let Some(task) = mem {
            for (field, v) in [("memory", cmem), ("memoryReservation", cres)] {
                if let Some(v) = v
                    && v > task
                {
                    out.push(format!(
                        "{}: {v} MiB is more than the task's memory ({task} MiB)",
                        join(path, field)
                    ));
                }
            }
        } else if cmem.is_none() && cres.is_none() {
            out.push(format!(
                "{}: missing: without a task-level memory every container needs memory or memoryReservation",
                join(path, "memory")
            ));
        }
        reserved_sum += cres.or(cmem).unwrap_or(0);

        // ports
        for (pp, port) in items(c, path, "portMappings", &mut out) {
            types(port, &pp, PORT_FIELDS, &mut out);
            let cp = port.get("containerPort").and_then(Value::as_u64);
            let hp = port.get("hostPort").and_then(Value::as_u64);
            if (awsvpc || fargate)
                && let (Some(cp), Some(hp)) = (cp, hp)
                && cp != hp
            {
                out.push(format!(
                    "{}: {hp} differs from containerPort {cp}: {} hostPort must equal containerPort or be left out",
                    join(&pp, "hostPort"),
                    if fargate { "on Fargate" } else { "with networkMode awsvpc" }
                ));
            }
            if let Some(p) = port.get("protocol").and_then(Value::as_str)
                && !matches!(p, "tcp" | "udp")
            {
                out.push(format!(
                    "{}: '{p}' is not tcp or udp",
                    join(&pp, "protocol")
                ));
            }
        }

        // environment
        for (ep, var) in items(c, path, "environment", &mut out) {
            types(var, &ep, NAME_VALUE, &mut out);
            // ECS takes such an entry and registers the variable with no value at all: the
            // container would start without it, so it is refused here.
            if var.contains_key("valueFrom") {
                out.push(format!(
                    "{}: an environment variable takes a value, not a valueFrom (ECS would register {} without a value): move it to `secrets`, which take a valueFrom",
                    join(&ep, "valueFrom"),
                    var.get("name").and_then(Value::as_str).unwrap_or("it")
                ));
            }
            if let (Some(name), Some(value)) = (
                var.get("name").and_then(Value::as_str),
                var.get("value").and_then(Value::as_str),
            ) && !allow_plaintext_secrets
                && !value.is_empty()
                && looks_like_credential(name)
            {
                out.push(format!(
                    "{ep}: {name} looks like a credential and has a plaintext value: move it to `secrets` with a valueFrom (Secrets Manager or SSM Parameter Store ARN), or pass --allow-plaintext-secrets"
                ));
            }
        }
        let secrets = items(c, path, "secrets", &mut out);
        for (sp, s) in &secrets {
            types(s, sp, NAME_VALUE_FROM, &mut out);
        }
        if !secrets.is_empty() && !has_execution_role {
            out.push(format!(
                "{}: secrets are fetched with the execution role: set executionRoleArn (or pass --execution-role-arn)",
                join(path, "secrets")
            ));
        }

        // logs
        if let Some(Value::Object(log)) = c.get("logConfiguration") {
            let lp = join(path, "logConfiguration");
            if log.get("logDriver").and_then(Value::as_str) == Some("awslogs") {
                logs::awslogs(log, &lp, fargate, has_execution_role, &mut out);
            }
        }
    }
    if let Some(task) = mem
        && containers.len() > 1
        && reserved_sum > task
    {
        out.push(format!(
            "containerDefinitions: the containers reserve {reserved_sum} MiB together, more than the task's memory ({task} MiB)"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fargate() -> Value {
        json!({
            "family": "web",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "512",
            "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
            "containerDefinitions": [{
                "name": "app", "image": "nginx",
                "portMappings": [{"containerPort": 80, "hostPort": 80}],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/web", "awslogs-region": "us-west-2", "awslogs-stream-prefix": "ecs"}}
            }]
        })
    }

    #[test]
    fn a_good_fargate_definition_passes() {
        assert_eq!(validate(&fargate(), false), Vec::<String>::new());
    }

    #[test]
    fn fargate_sizes() {
        let mut d = fargate();
        d["memory"] = json!("4096");
        let p = validate(&d, false);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("memory: 4096 MiB is not valid with cpu 256 on Fargate"),
            "{p:?}"
        );
    }

    #[test]
    fn all_problems_at_once_with_paths() {
        let mut d = fargate();
        d["networkMode"] = json!("bridge");
        d["cpu"] = json!(256);
        d["taskRoleArn"] = json!("app-task");
        d["containerDefinitions"][0]["portMappings"][0]["hostPort"] = json!(8080);
        d["containerDefinitions"][0]["memory"] = json!("512");
        d["containerDefinitions"][0]["environment"] =
            json!([{"name": "DB_PASSWORD", "value": "hunter2"}]);
        d["containerDefinitions"][0]["logConfiguration"]["options"]
            .as_object_mut()
            .unwrap()
            .remove("awslogs-region");
        d["containerDefinitions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "side"}));
        let p = validate(&d, false);
        let want = [
            "cpu: must be a string, like \"256\", not the number 256",
            "networkMode: Fargate requires \"awsvpc\", not \"bridge\"",
            "taskRoleArn: 'app-task' is not an ARN",
            "containerDefinitions[0].memory: must be an integer, not the string \"512\"",
            "containerDefinitions[0].environment[0]: DB_PASSWORD looks like a credential",
            "containerDefinitions[0].logConfiguration.options.awslogs-region: missing",
            "containerDefinitions[1].image: missing",
        ];
        for w in want {
            assert!(
                p.iter().any(|x| x.starts_with(w)),
                "missing '{w}' in {p:#?}"
            );
        }
        // hostPort is not checked outside awsvpc, but the Fargate rule caught the mode.
        assert!(
            validate(&d, true)
                .iter()
                .all(|x| !x.contains("DB_PASSWORD"))
        );
    }

    #[test]
    fn host_port_and_memory_limits() {
        let mut d = fargate();
        d["containerDefinitions"][0]["portMappings"][0]["hostPort"] = json!(8080);
        d["containerDefinitions"][0]["memory"] = json!(1024);
        let p = validate(&d, false);
        assert!(
            p.iter()
                .any(|x| x
                    .starts_with("containerDefinitions[0].portMappings[0].hostPort: 8080 differs")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|x| x.starts_with(
                "containerDefinitions[0].memory: 1024 MiB is more than the task's memory (512 MiB)"
            )),
            "{p:?}"
        );
    }

    #[test]
    fn required_fields() {
        let p = validate(&json!({"containerDefinitions": [{"memory": 128}]}), false);
        assert!(p.iter().any(|x| x.starts_with("family: missing")), "{p:?}");
        assert!(
            p.iter()
                .any(|x| x.starts_with("containerDefinitions[0].name: missing")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|x| x.starts_with("containerDefinitions[0].image: missing")),
            "{p:?}"
        );
        let p = validate(&json!({"family": "x"}), false);
        assert!(
            p.iter()
                .any(|x| x.starts_with("containerDefinitions: missing")),
            "{p:?}"
        );
    }

    #[test]
    fn value_from_in_the_environment_is_refused() {
        let mut d = fargate();
        d["containerDefinitions"][0]["environment"] = json!([{"name": "DB_HOST",
            "valueFrom": "arn:aws:ssm:us-west-2:123456789012:parameter/db-host"}]);
        let p = validate(&d, false);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("containerDefinitions[0].environment[0].valueFrom: an environment variable takes a value"),
            "{p:?}"
        );
    }

    #[test]
    fn credential_names() {
        for n in [
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "github_token",
            "CLIENT_SECRET",
        ] {
            assert!(looks_like_credential(n), "{n}");
        }
        for n in ["LANG", "AWS_REGION", "PASSWD_FILE"] {
            assert!(!looks_like_credential(n), "{n}");
        }
    }
}
