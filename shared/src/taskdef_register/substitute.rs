//! `${NAME}` and `${NAME:-default}` in every string of the document, filled in from the
//! environment (`$${` is a literal `${`). A problem names its JSON path; an environment value
//! (which may be a secret) is never quoted in it.

use serde_json::Value;

use super::document::{index, join};

/// Fills in `${NAME}` and `${NAME:-default}` in every string value from `lookup`. `$${` is a
/// literal `${`. Returns the problems (one per undefined name, with its JSON path).
pub fn substitute(doc: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut problems = Vec::new();
    walk(doc, "", lookup, &mut problems);
    problems
}

fn walk(v: &mut Value, path: &str, lookup: &dyn Fn(&str) -> Option<String>, out: &mut Vec<String>) {
    match v {
        // An environment value may be a secret: its problems are told without it.
        Value::String(s) => match expand(s, lookup, !is_environment_value(path)) {
            Ok(Some(new)) => *s = new,
            Ok(None) => {}
            Err(msgs) => out
                .extend(msgs.into_iter().map(|m| {
                    format!("{}: {m}", if path.is_empty() { "(document)" } else { path })
                })),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &index(path, i), lookup, out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                walk(item, &join(path, k), lookup, out);
            }
        }
        _ => {}
    }
}

/// Every string of the document that still holds a template's placeholder: `{{ must_env .. }}`,
/// `{{ tfstate .. }}` and the like (ecspresso, Go templates) or `<SUBNET_ID>` (a blog's "fill
/// this in"). Such a document is a template that was not rendered, so it is refused, each
/// problem naming its JSON path. (`${NAME}` is [`substitute`]'s, a bare `ACCOUNT_ID` inside an
/// ARN is [`crate::validate::arn`]'s.)
pub fn unrendered(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    find_unrendered(doc, "", &mut out);
    out
}

fn find_unrendered(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(marker) = placeholder_in(s) {
                out.push(format!(
                    "{}: '{s}' holds the placeholder {marker}: render the template (or put in the real value) first",
                    if path.is_empty() { "(document)" } else { path }
                ));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_unrendered(item, &index(path, i), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                find_unrendered(item, &join(path, k), out);
            }
        }
        _ => {}
    }
}

/// The first `{{ .. }}` or `<NAME>` in `s` (NAME: capitals, digits and `_`, as templates write
/// it; an HTML-ish `<b>` or a comparison `a < b` is not one).
fn placeholder_in(s: &str) -> Option<&str> {
    if let Some(start) = s.find("{{")
        && let Some(len) = s[start..].find("}}")
    {
        return Some(&s[start..start + len + 2]);
    }
    let mut rest = s;
    let mut offset = 0;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        if let Some(close) = after.find('>') {
            let name = &after[..close];
            if !name.is_empty()
                && name.starts_with(|c: char| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                let at = offset + open;
                return Some(&s[at..at + close + 2]);
            }
        }
        offset += open + 1;
        rest = after;
    }
    None
}

/// The variables that hold the credentials of the process that deploys (the AWS SDK's and the
/// CI runner's own), matched by exact name or the runner's own prefix. A task definition or
/// service file may come from a pull request: `${AWS_SECRET_ACCESS_KEY}` in it would copy the
/// CI principal's key into a task that runs the author's image, or into an error message.
/// Secrets a user maps into the environment under names of their own are not known here: name
/// them only in files you trust (the documents' own secrets belong in `secrets`).
pub fn is_process_credential(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "CI_JOB_TOKEN",
        "CI_JOB_JWT",
        "CI_JOB_JWT_V2",
        "CI_REGISTRY_PASSWORD",
        "BUILDKITE_AGENT_ACCESS_TOKEN",
        "CIRCLE_TOKEN",
    ];
    NAMES.contains(&name) || name.starts_with("ACTIONS_")
}

/// `containerDefinitions[0].environment[3].value`.
fn is_environment_value(path: &str) -> bool {
    path.ends_with(".value") && path.contains(".environment[")
}

/// Expands one string. `Ok(None)` when it has nothing to expand. `show`: whether a problem may
/// quote the string.
fn expand(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    show: bool,
) -> Result<Option<String>, Vec<String>> {
    let quoted = |text: &str| {
        if show {
            format!("'{text}'")
        } else {
            "the value".to_string()
        }
    };
    if !s.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(s.len());
    let mut errors = Vec::new();
    let mut rest = s;
    while let Some(pos) = rest.find("${") {
        if rest[..pos].ends_with('$') {
            // `$${` is an escaped, literal `${`.
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let Some(end) = after.find('}') else {
            errors.push(format!(
                "{} has an unclosed '${{': write ${{NAME}}, or $${{ for a literal '${{'",
                quoted(s)
            ));
            return Err(errors);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let reference = if show {
                format!("'${{{inner}}}'")
            } else {
                "a '${' in the value".to_string()
            };
            errors.push(format!(
                "{reference} is not a variable reference: names are letters, digits and '_' (write $${{ for a literal '${{')"
            ));
        } else if is_process_credential(name) {
            errors.push(format!(
                "${{{name}}} names the deploying process's own credentials, which a document never takes (a file from a pull request could copy them into a task or a log): put the task's secret in `secrets` with a valueFrom"
            ));
        } else {
            match (lookup(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(d)) => out.push_str(d),
                (None, None) => errors.push(format!(
                    "${{{name}}} is not set: export {name}, or write ${{{name}:-default}}"
                )),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(Some(out))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploying_process_credentials_are_never_filled_in() {
        let lookup = |name: &str| Some(format!("value-of-{name}"));
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "GITHUB_TOKEN",
            "ACTIONS_RUNTIME_TOKEN",
        ] {
            let mut doc = serde_json::json!({"containerDefinitions": [{"environment": [
                {"name": "X", "value": format!("${{{name}}}")}]}]});
            let problems = substitute(&mut doc, &lookup);
            assert_eq!(problems.len(), 1, "{name}: {problems:?}");
            assert!(
                problems[0].starts_with("containerDefinitions[0].environment[0].value: ${")
                    && problems[0].contains("deploying process's own credentials"),
                "{problems:?}"
            );
            assert!(!doc.to_string().contains("value-of-"), "{doc}");
        }
        // Other names are filled in as before.
        let mut doc = serde_json::json!({"family": "${FAMILY}"});
        assert!(substitute(&mut doc, &lookup).is_empty());
        assert_eq!(doc["family"], "value-of-FAMILY");
    }
    use serde_json::json;

    #[test]
    fn unrendered_templates_are_found_by_path() {
        let doc = json!({"subnets": ["{{ must_env `SUBNETS` }}", "subnet-0123abcd"],
            "lb": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/<TG_NAME>/x"}],
            "cluster": "<CLUSTER_NAME>", "command": "test $a < $b && echo <b>ok</b>"});
        assert_eq!(
            unrendered(&doc),
            [
                "subnets[0]: '{{ must_env `SUBNETS` }}' holds the placeholder {{ must_env `SUBNETS` }}: render the template (or put in the real value) first",
                "lb[0].targetGroupArn: 'arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/<TG_NAME>/x' holds the placeholder <TG_NAME>: render the template (or put in the real value) first",
                "cluster: '<CLUSTER_NAME>' holds the placeholder <CLUSTER_NAME>: render the template (or put in the real value) first",
            ]
        );
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "TAG" => Some("v2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitution_fills_defaults_and_names_paths() {
        let mut doc = json!({"containerDefinitions": [{"image": "repo:${TAG}",
            "environment": [{"name": "A", "value": "${NOPE}"}, {"name": "B", "value": "${NOPE2:-x}${EMPTY}"}],
            "command": ["echo $${HOME}"]}]});
        let problems = substitute(&mut doc, &env);
        assert_eq!(
            problems,
            vec![
                "containerDefinitions[0].environment[0].value: ${NOPE} is not set: export NOPE, or write ${NOPE:-default}"
            ]
        );
        assert_eq!(doc["containerDefinitions"][0]["image"], "repo:v2");
        assert_eq!(
            doc["containerDefinitions"][0]["environment"][1]["value"],
            "x"
        );
        assert_eq!(doc["containerDefinitions"][0]["command"][0], "echo ${HOME}");
    }

    #[test]
    fn problems_in_an_environment_value_do_not_quote_it() {
        let mut doc = json!({"containerDefinitions": [{"image": "repo:${TAG",
            "environment": [{"name": "DB_PASSWORD", "value": "hunter${2"},
                            {"name": "API_TOKEN", "value": "s3cr${e t}"}]}]});
        let problems = substitute(&mut doc, &env);
        assert_eq!(
            problems,
            vec![
                "containerDefinitions[0].image: 'repo:${TAG' has an unclosed '${': write ${NAME}, or $${ for a literal '${'",
                "containerDefinitions[0].environment[0].value: the value has an unclosed '${': write ${NAME}, or $${ for a literal '${'",
                "containerDefinitions[0].environment[1].value: a '${' in the value is not a variable reference: names are letters, digits and '_' (write $${ for a literal '${')",
            ]
        );
    }
}
