//! The types of the fields this tool knows, and the helpers that walk lists of objects. A
//! field that is not in these tables is left to the API, which is the judge of it.

use serde_json::{Map, Value};

use crate::taskdef_register::document::{index, join};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    Int,
    Bool,
    Arr,
    Obj,
}

impl Kind {
    fn matches(self, v: &Value) -> bool {
        match self {
            Kind::Str => v.is_string(),
            Kind::Int => v.is_i64() || v.is_u64(),
            Kind::Bool => v.is_boolean(),
            Kind::Arr => v.is_array(),
            Kind::Obj => v.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Int => "an integer",
            Kind::Bool => "true or false",
            Kind::Arr => "a list",
            Kind::Obj => "an object",
        }
    }
}

use Kind::*;

pub(super) const TASK_FIELDS: &[(&str, Kind)] = &[
    ("family", Str),
    ("taskRoleArn", Str),
    ("executionRoleArn", Str),
    ("networkMode", Str),
    ("containerDefinitions", Arr),
    ("volumes", Arr),
    ("placementConstraints", Arr),
    ("requiresCompatibilities", Arr),
    ("cpu", Str),
    ("memory", Str),
    ("tags", Arr),
    ("pidMode", Str),
    ("ipcMode", Str),
    ("proxyConfiguration", Obj),
    ("inferenceAccelerators", Arr),
    ("ephemeralStorage", Obj),
    ("runtimePlatform", Obj),
    ("enableFaultInjection", Bool),
];

pub(super) const CONTAINER_FIELDS: &[(&str, Kind)] = &[
    ("name", Str),
    ("image", Str),
    ("repositoryCredentials", Obj),
    ("cpu", Int),
    ("memory", Int),
    ("memoryReservation", Int),
    ("links", Arr),
    ("portMappings", Arr),
    ("essential", Bool),
    ("restartPolicy", Obj),
    ("entryPoint", Arr),
    ("command", Arr),
    ("environment", Arr),
    ("environmentFiles", Arr),
    ("mountPoints", Arr),
    ("volumesFrom", Arr),
    ("linuxParameters", Obj),
    ("secrets", Arr),
    ("dependsOn", Arr),
    ("startTimeout", Int),
    ("stopTimeout", Int),
    ("versionConsistency", Str),
    ("hostname", Str),
    ("user", Str),
    ("workingDirectory", Str),
    ("disableNetworking", Bool),
    ("privileged", Bool),
    ("readonlyRootFilesystem", Bool),
    ("dnsServers", Arr),
    ("dnsSearchDomains", Arr),
    ("extraHosts", Arr),
    ("dockerSecurityOptions", Arr),
    ("interactive", Bool),
    ("pseudoTerminal", Bool),
    ("dockerLabels", Obj),
    ("ulimits", Arr),
    ("logConfiguration", Obj),
    ("healthCheck", Obj),
    ("systemControls", Arr),
    ("resourceRequirements", Arr),
    ("firelensConfiguration", Obj),
    ("credentialSpecs", Arr),
];

pub(super) const PORT_FIELDS: &[(&str, Kind)] = &[
    ("containerPort", Int),
    ("hostPort", Int),
    ("protocol", Str),
    ("name", Str),
    ("appProtocol", Str),
    ("containerPortRange", Str),
];

pub(super) const NAME_VALUE: &[(&str, Kind)] = &[("name", Str), ("value", Str)];
pub(super) const NAME_VALUE_FROM: &[(&str, Kind)] = &[("name", Str), ("valueFrom", Str)];

/// Checks the types of the known fields of one object; unknown fields are left alone.
pub(super) fn types(
    obj: &Map<String, Value>,
    path: &str,
    fields: &[(&str, Kind)],
    out: &mut Vec<String>,
) {
    for (name, kind) in fields {
        if let Some(v) = obj.get(*name)
            && !v.is_null()
            && !kind.matches(v)
        {
            let hint = match (name, kind) {
                (&"cpu" | &"memory", Str) if v.is_number() => format!(", like \"{v}\""),
                _ => String::new(),
            };
            out.push(format!(
                "{}: must be {}{hint}, not {}",
                join(path, name),
                kind.name(),
                describe(v)
            ));
        }
    }
}

pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Each item of a list field, when it is an object; non-objects are reported.
pub(super) fn items<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    field: &str,
    out: &mut Vec<String>,
) -> Vec<(String, &'a Map<String, Value>)> {
    let mut found = Vec::new();
    if let Some(Value::Array(list)) = obj.get(field) {
        for (i, item) in list.iter().enumerate() {
            let p = index(&join(path, field), i);
            match item {
                Value::Object(m) => found.push((p, m)),
                other => out.push(format!("{p}: must be an object, not {}", describe(other))),
            }
        }
    }
    found
}
