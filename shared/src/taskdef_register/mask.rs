//! What is printed of a document never shows a value the validator calls a secret: an
//! environment variable whose name looks like a credential (`DB_PASSWORD`, `API_TOKEN`, ...).
//! Such a value can reach the document through `--allow-plaintext-secrets` or a `${VAR}`
//! filled in from the environment; it is sent to ECS as written, but the dry run's document,
//! the `--diff` and the json output show `***` in its place.

use serde_json::Value;

use super::validate::looks_like_credential;

/// What a secret value is printed as.
pub const MASK: &str = "***";
/// What a secret value that differs from the registered one is printed as in a diff.
pub const MASK_CHANGED: &str = "*** (changed)";

/// A copy of `doc` with every credential-looking environment value masked.
pub fn masked(doc: &Value) -> Value {
    let mut doc = doc.clone();
    for_each_secret(&mut doc, |_, _, value| *value = Value::from(MASK));
    doc
}

/// Both sides of a diff, masked, so that a changed secret still shows as a changed line
/// (`*** (changed)`) without showing either value.
pub fn masked_pair(registered: &Value, doc: &Value) -> (Value, Value) {
    let mut new = doc.clone();
    for_each_secret(&mut new, |container, name, value| {
        let old = secret_value(registered, container, name);
        *value = Value::from(if old == Some(&*value) {
            MASK
        } else {
            MASK_CHANGED
        });
    });
    (masked(registered), new)
}

/// The value of `name` in the environment of the container named `container`.
fn secret_value<'a>(doc: &'a Value, container: &str, name: &str) -> Option<&'a Value> {
    doc["containerDefinitions"]
        .as_array()?
        .iter()
        .find(|c| c["name"].as_str() == Some(container))?["environment"]
        .as_array()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .map(|e| &e["value"])
}

/// Calls `f(container name, variable name, value)` for each credential-looking environment
/// variable with a value.
fn for_each_secret(doc: &mut Value, mut f: impl FnMut(&str, &str, &mut Value)) {
    let Some(containers) = doc
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in containers {
        let container = c["name"].as_str().unwrap_or_default().to_string();
        let Some(env) = c.get_mut("environment").and_then(Value::as_array_mut) else {
            continue;
        };
        for var in env {
            let name = var["name"].as_str().unwrap_or_default().to_string();
            if let Some(value) = var.get_mut("value")
                && !value.is_null()
                && looks_like_credential(&name)
            {
                f(&container, &name, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(pw: &str) -> Value {
        json!({"family": "f", "containerDefinitions": [{"name": "app", "environment": [
            {"name": "DB_PASSWORD", "value": pw}, {"name": "LANG", "value": "C"}]}]})
    }

    #[test]
    fn credential_values_are_masked_and_the_rest_is_kept() {
        let m = masked(&doc("hunter2"));
        assert_eq!(
            m["containerDefinitions"][0]["environment"][0]["value"],
            MASK
        );
        assert_eq!(m["containerDefinitions"][0]["environment"][1]["value"], "C");
        assert!(!m.to_string().contains("hunter2"));
    }

    #[test]
    fn a_changed_secret_shows_as_changed_without_its_values() {
        let (old, new) = masked_pair(&doc("one"), &doc("two"));
        assert_eq!(
            old["containerDefinitions"][0]["environment"][0]["value"],
            MASK
        );
        assert_eq!(
            new["containerDefinitions"][0]["environment"][0]["value"],
            MASK_CHANGED
        );
        let (old, new) = masked_pair(&doc("same"), &doc("same"));
        assert_eq!(old, new);
    }
}
