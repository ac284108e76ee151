//! What ECS registers but the task will not do as its author meant: said as warnings, because
//! the API accepts it (refusing would break "what ECS accepts registers as written"), and the
//! public task definitions show people writing it (../shared/corpus/real-taskdefs: a health
//! check without `CMD`, a proxy configuration naming a container the task lacks).

use serde_json::Value;

/// Each warning starts with its JSON path, like the problems of [`super::validate`].
pub fn warnings(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let containers = doc
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some(proxy) = doc
        .get("proxyConfiguration")
        .and_then(|p| p.get("containerName"))
        .and_then(Value::as_str)
        && !containers
            .iter()
            .any(|c| c.get("name").and_then(Value::as_str) == Some(proxy))
    {
        out.push(format!(
            "proxyConfiguration.containerName: '{proxy}' names no container of this task definition: \
             its tasks will not start; name the proxy (Envoy) container or add it"
        ));
    }
    for (i, c) in containers.iter().enumerate() {
        let Some(command) = c
            .get("healthCheck")
            .and_then(|h| h.get("command"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        let first = command.first().and_then(Value::as_str).unwrap_or_default();
        if !matches!(first, "CMD" | "CMD-SHELL" | "NONE") {
            out.push(format!(
                "containerDefinitions[{i}].healthCheck.command: starts with '{first}', not CMD or \
                 CMD-SHELL: Docker does not run it as written and the container never becomes \
                 healthy; write [\"CMD-SHELL\", \"{first}\"] (a shell line) or [\"CMD\", program, args...]"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_health_check_without_cmd_is_warned_naming_the_container() {
        let doc = json!({"containerDefinitions": [
            {"name": "ok", "healthCheck": {"command": ["CMD-SHELL", "true"]}},
            {"name": "presto", "healthCheck": {"command": ["curl http://localhost:8080"]}}
        ]});
        let w = warnings(&doc);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("containerDefinitions[1].healthCheck.command: starts with 'curl"),
            "{w:?}"
        );
    }

    #[test]
    fn a_proxy_configuration_naming_no_container_is_warned() {
        let doc = json!({
            "proxyConfiguration": {"type": "APPMESH", "containerName": "envoy"},
            "containerDefinitions": [{"name": "app"}]
        });
        let w = warnings(&doc);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("'envoy' names no container"), "{w:?}");
        let with_envoy = json!({
            "proxyConfiguration": {"type": "APPMESH", "containerName": "envoy"},
            "containerDefinitions": [{"name": "app"}, {"name": "envoy"}]
        });
        assert!(warnings(&with_envoy).is_empty());
    }
}
