//! Comparison by meaning. Both the document and the registered revision are brought to one
//! canonical form, in which what the API fills in by itself does not show:
//!
//! - the read-only fields (`revision`, `status`, `registeredAt`, ...);
//! - nulls, empty lists and empty objects (`"volumesFrom": []`, `"host": {}`);
//! - `false` booleans (every ECS boolean but `essential` defaults to false);
//! - container `"essential": true` and `"cpu": 0`, port `"protocol": "tcp"`, and in awsvpc
//!   mode a `hostPort` equal to its `containerPort`;
//! - `"networkMode": "bridge"` (the Linux default), an EFS `"rootDirectory": "/"`;
//! - task `cpu`/`memory` units (`"1 vCPU"` is `"1024"`, `"2 GB"` is `"2048"`);
//! - the order of `environment`, `secrets` (by name), `tags` (by key) and
//!   `requiresCompatibilities`;
//! - the order of keys in objects;
//! - ecskit's own `managed-by=ecskit` tag (who registered it, not what it is).

use serde_json::{Map, Value};

use super::document::READ_ONLY;
use super::validate::{cpu_units, memory_mib};

/// The canonical form of a task definition in register form (or describe form, unwrapped).
pub fn canonical(doc: &Value) -> Value {
    let mut doc = doc.clone();
    let Value::Object(td) = &mut doc else {
        return doc;
    };
    for f in READ_ONLY {
        td.remove(*f);
    }
    let awsvpc = td.get("networkMode").and_then(Value::as_str) == Some("awsvpc");
    if td.get("networkMode").and_then(Value::as_str) == Some("bridge") {
        td.remove("networkMode");
    }
    if let Some(Value::String(s)) = td.get_mut("cpu")
        && let Some(n) = cpu_units(s)
    {
        *s = n.to_string();
    }
    if let Some(Value::String(s)) = td.get_mut("memory")
        && let Some(n) = memory_mib(s)
    {
        *s = n.to_string();
    }
    // ecskit's ownership tag says who registered a revision, not what it is: a revision made
    // by hand (adopted with `cargo xtask init`) means the same as the file written from it.
    if let Some(Value::Array(tags)) = td.get_mut("tags") {
        tags.retain(|t| {
            t.get("key").and_then(Value::as_str) != Some(crate::aws::MANAGED_BY.0)
                || t.get("value").and_then(Value::as_str) != Some(crate::aws::MANAGED_BY.1)
        });
    }
    sort_list(td.get_mut("tags"), "key");
    if let Some(Value::Array(list)) = td.get_mut("requiresCompatibilities") {
        list.sort_by_key(|v| v.to_string());
    }
    if let Some(Value::Array(containers)) = td.get_mut("containerDefinitions") {
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            if c.get("essential") == Some(&Value::Bool(true)) {
                c.remove("essential");
            }
            if c.get("cpu").and_then(Value::as_u64) == Some(0) {
                c.remove("cpu");
            }
            sort_list(c.get_mut("environment"), "name");
            sort_list(c.get_mut("secrets"), "name");
            if let Some(Value::Array(ports)) = c.get_mut("portMappings") {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    if p.get("protocol").and_then(Value::as_str) == Some("tcp") {
                        p.remove("protocol");
                    }
                    if awsvpc
                        && p.get("hostPort").is_some()
                        && p.get("hostPort") == p.get("containerPort")
                    {
                        p.remove("hostPort");
                    }
                }
            }
        }
    }
    if let Some(Value::Array(volumes)) = td.get_mut("volumes") {
        for v in volumes.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Object(efs)) = v.get_mut("efsVolumeConfiguration")
                && efs.get("rootDirectory").and_then(Value::as_str) == Some("/")
            {
                efs.remove("rootDirectory");
            }
        }
    }
    prune(&mut doc);
    sorted(doc)
}

fn sort_list(list: Option<&mut Value>, key: &str) {
    if let Some(Value::Array(items)) = list {
        items.sort_by(|a, b| {
            let k = |v: &Value| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
            k(a).cmp(&k(b))
        });
    }
}

/// Removes nulls, `false` (except `essential`), empty lists and empty objects, innermost
/// first. Returns whether the value itself is now empty.
fn prune(v: &mut Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune(item);
            }
            items.is_empty()
        }
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let drop = match map.get_mut(&k) {
                    Some(Value::Bool(false)) => k != "essential",
                    Some(inner) => prune(inner),
                    None => false,
                };
                if drop {
                    map.remove(&k);
                }
            }
            map.is_empty()
        }
        _ => false,
    }
}

/// The same value with every object's keys in order (`preserve_order` keeps insertion order).
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Whether two task definitions mean the same.
pub fn same(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

/// A unified diff of the canonical forms, `registered` first.
pub fn diff(registered: &Value, registered_name: &str, doc: &Value, doc_name: &str) -> String {
    let old = pretty(&canonical(registered));
    let new = pretty(&canonical(doc));
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(registered_name, doc_name)
        .to_string()
}

pub fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_defaults_do_not_count() {
        let sent = json!({"family": "web", "cpu": "1 vCPU", "memory": "2 GB", "networkMode": "awsvpc",
            "containerDefinitions": [{"name": "app", "image": "x", "portMappings": [{"containerPort": 80}],
              "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}]});
        let described = json!({"family": "web", "revision": 4, "status": "ACTIVE", "cpu": "1024", "memory": "2048",
            "networkMode": "awsvpc", "compatibilities": ["EC2"], "placementConstraints": [], "volumes": [],
            "containerDefinitions": [{"image": "x", "name": "app", "cpu": 0, "essential": true,
              "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
              "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
              "mountPoints": [], "volumesFrom": [], "readonlyRootFilesystem": false}]});
        assert!(
            same(&sent, &described),
            "{}",
            diff(&described, "a", &sent, "b")
        );
    }

    #[test]
    fn real_changes_count_and_show_in_the_diff() {
        let a = json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "x:1", "essential": false}]});
        let mut b = a.clone();
        assert!(same(&a, &b));
        b["containerDefinitions"][0]["image"] = json!("x:2");
        assert!(!same(&a, &b));
        let d = diff(&a, "web:1", &b, "file");
        assert!(d.contains("-      \"image\": \"x:1\""), "{d}");
        assert!(d.contains("+      \"image\": \"x:2\""), "{d}");
        assert!(d.starts_with("--- web:1\n+++ file\n"), "{d}");
        // essential: false is not a default and is kept.
        assert!(
            canonical(&a)["containerDefinitions"][0]
                .get("essential")
                .is_some()
        );
    }
}
