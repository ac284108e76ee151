//! IAM policy documents: the ones the steps build, the checks on user-supplied ones, and
//! comparison by meaning.
//!
//! IAM hands documents back URL-encoded, with single values where arrays were sent (or the
//! other way round) and with statements and keys in its own order. [`canonical`] brings a
//! document to one normal form, so two documents that grant the same thing compare equal and
//! a difference can be printed as a readable diff.
//!
//! Its size: about 450 lines of code (the documents and their comparison belong together), then
//! the unit tests that pin each document.

use serde_json::{Map, Value, json};

pub const VERSION: &str = "2012-10-17";

/// The partition of a region (`aws`, `aws-cn`, `aws-us-gov`), for the ARNs we build.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARN of an AWS managed policy, `path` like `service-role/` or empty.
pub fn aws_managed(partition: &str, path: &str, name: &str) -> String {
    format!("arn:{partition}:iam::aws:policy/{path}{name}")
}

/// Whether a grant may write.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

impl std::str::FromStr for Access {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Access::Read),
            "read-write" => Ok(Access::ReadWrite),
            other => Err(format!(
                "'{other}' is not an access level: use read or read-write"
            )),
        }
    }
}

/// Access to one bucket, optionally below one prefix (stored without a trailing '/').
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct S3Grant {
    pub bucket: String,
    pub prefix: String,
    pub access: Access,
}

impl S3Grant {
    /// Parses `BUCKET[/PREFIX][:read|read-write]`; the access defaults to `default`.
    /// Validates the bucket name and the prefix.
    pub fn parse(spec: &str, default: Access) -> Result<S3Grant, String> {
        let spec = spec.strip_prefix("s3://").unwrap_or(spec);
        let (path, access) = match spec.rsplit_once(':') {
            Some((p, a)) => (p, a.parse::<Access>()?),
            None => (spec, default),
        };
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        S3Grant::new(bucket, prefix, access)
    }

    pub fn new(bucket: &str, prefix: &str, access: Access) -> Result<S3Grant, String> {
        crate::validate::bucket_name(bucket)?;
        let prefix = crate::validate::s3_prefix(prefix)?;
        Ok(S3Grant {
            bucket: bucket.to_string(),
            prefix,
            access,
        })
    }

    fn objects(&self, partition: &str) -> String {
        if self.prefix.is_empty() {
            format!("arn:{partition}:s3:::{}/*", self.bucket)
        } else {
            format!("arn:{partition}:s3:::{}/{}/*", self.bucket, self.prefix)
        }
    }
}

/// A trust policy letting one or more AWS services assume the role.
pub fn service_trust(services: &[&str]) -> Value {
    let service: Value = if services.len() == 1 {
        json!(services[0])
    } else {
        json!(services)
    };
    json!({
        "Version": VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The task role's trust: ECS tasks of this account and region only (the confused-deputy
/// conditions AWS recommends).
pub fn task_trust(partition: &str, region: &str, account: &str) -> Value {
    json!({
        "Version": VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": format!("arn:{partition}:ecs:{region}:{account}:*")}
            }
        }]
    })
}

/// The scoped S3 policy of the task role (and of `--s3-read` on the instance role): objects
/// below each prefix, and listing of the bucket limited to that prefix.
pub fn s3_grants(partition: &str, grants: &[S3Grant]) -> Value {
    let mut grants = grants.to_vec();
    grants.sort();
    grants.dedup();
    let mut statements = Vec::new();
    for g in &grants {
        let actions: Vec<&str> = match g.access {
            Access::Read => vec!["s3:GetObject"],
            Access::ReadWrite => vec!["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        };
        statements.push(json!({
            "Effect": "Allow",
            "Action": actions,
            "Resource": g.objects(partition)
        }));
        let mut list = json!({
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": format!("arn:{partition}:s3:::{}", g.bucket)
        });
        if !g.prefix.is_empty() {
            list["Condition"] = json!({
                "StringLike": {"s3:prefix": [g.prefix.clone(), format!("{}/*", g.prefix)]}
            });
        }
        statements.push(list);
    }
    json!({"Version": VERSION, "Statement": statements})
}

/// The execution role's explicit policy (`--execution-policy inline`): pulling from ECR and
/// writing to CloudWatch Logs, as in the vendor guide.
pub fn execution_inline() -> Value {
    json!({
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "ecr:GetAuthorizationToken",
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchGetImage"
                ],
                "Resource": "*"
            },
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*"
            }
        ]
    })
}

/// What the execution role reads for the task definition: `environmentFiles` objects
/// (`s3:GetObject` on each, `s3:GetBucketLocation` on their buckets) and `secrets`
/// (Secrets Manager secrets and SSM parameters by ARN). None when there is nothing to read.
pub fn execution_reads(
    partition: &str,
    objects: &[(String, String)],
    secrets: &[String],
) -> Option<Value> {
    let mut statements = Vec::new();
    if !objects.is_empty() {
        let mut arns: Vec<String> = objects
            .iter()
            .map(|(b, k)| format!("arn:{partition}:s3:::{b}/{k}"))
            .collect();
        arns.sort();
        arns.dedup();
        let mut buckets: Vec<String> = objects
            .iter()
            .map(|(b, _)| format!("arn:{partition}:s3:::{b}"))
            .collect();
        buckets.sort();
        buckets.dedup();
        statements.push(json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": arns}));
        statements.push(
            json!({"Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": buckets}),
        );
    }
    let mut sm: Vec<&String> = secrets
        .iter()
        .filter(|a| a.split(':').nth(2) == Some("secretsmanager"))
        .collect();
    let mut ssm: Vec<&String> = secrets
        .iter()
        .filter(|a| a.split(':').nth(2) == Some("ssm"))
        .collect();
    sm.sort();
    sm.dedup();
    ssm.sort();
    ssm.dedup();
    if !sm.is_empty() {
        statements.push(
            json!({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": sm}),
        );
    }
    if !ssm.is_empty() {
        statements.push(json!({"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": ssm}));
    }
    (!statements.is_empty()).then(|| json!({"Version": VERSION, "Statement": statements}))
}

/// The CloudWatch Logs policy of the container-instance role (from the AWS page).
pub fn cloudwatch_logs(partition: &str) -> Value {
    json!({
        "Version": VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams"
            ],
            "Resource": [format!("arn:{partition}:logs:*:*:*")]
        }]
    })
}

// --- reading and checking documents -------------------------------------------------------

/// A document as IAM returns it: URL-encoded JSON (or plain JSON from emulators).
pub fn decode(document: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str(document) {
        return Ok(v);
    }
    let decoded = percent_encoding::percent_decode_str(document)
        .decode_utf8()
        .map_err(|e| format!("the policy document is not UTF-8 after URL-decoding: {e}"))?;
    serde_json::from_str(&decoded).map_err(|e| format!("the policy document is not JSON: {e}"))
}

/// Checks a user-supplied policy document: JSON object, `Version`, and a `Statement` whose
/// entries each have `Effect` and `Action` (or `NotAction`). Returns the problems.
pub fn check_document(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(obj) = doc.as_object() else {
        return vec!["it is not a JSON object".into()];
    };
    match obj.get("Version").and_then(Value::as_str) {
        Some("2012-10-17" | "2008-10-17") => {}
        Some(v) => problems.push(format!("\"Version\" is '{v}': use \"2012-10-17\"")),
        None => problems.push("it has no \"Version\": add \"Version\": \"2012-10-17\"".into()),
    }
    let statements = match obj.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => {
            problems.push("it has no \"Statement\" (an object or a non-empty list)".into());
            return problems;
        }
    };
    for (i, s) in statements.iter().enumerate() {
        let Some(s) = s.as_object() else {
            problems.push(format!("Statement[{i}] is not an object"));
            continue;
        };
        match s.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            _ => problems.push(format!(
                "Statement[{i}] needs \"Effect\": \"Allow\" or \"Deny\""
            )),
        }
        if !s.contains_key("Action") && !s.contains_key("NotAction") {
            problems.push(format!("Statement[{i}] has no \"Action\""));
        }
        if !s.contains_key("Resource") && !s.contains_key("NotResource") {
            problems.push(format!("Statement[{i}] has no \"Resource\""));
        }
    }
    problems
}

/// The statements of a trust policy that allow assuming the role (Effect Allow, an Action of
/// `sts:AssumeRole`, `sts:*` or `*`); `None` when the document has no Statement.
pub fn assume_statements(doc: &Value) -> Option<Vec<&Value>> {
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return None,
    };
    Some(
        statements
            .into_iter()
            .filter(|st| st.get("Effect").and_then(Value::as_str) == Some("Allow"))
            .filter(|st| {
                strings(st.get("Action"))
                    .iter()
                    .any(|a| a == "sts:AssumeRole" || a == "sts:*" || a == "*")
            })
            .collect(),
    )
}

/// A policy element that is one string or a list of them (`Action`, `Principal.Service`, a
/// condition's values), as a list; anything else is empty.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Allow statements that grant all of S3 (`s3:*`, `*`, `s3:*Object*`-style wildcards count
/// only when they are the whole service) or any S3 action on Resource `*`. Returns one
/// sentence per broad statement.
pub fn broad_s3(doc: &Value) -> Vec<String> {
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return Vec::new(),
    };
    let mut found = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let actions: Vec<String> = strings(s.get("Action"))
            .into_iter()
            .map(|a| a.to_lowercase())
            .collect();
        let all_s3 = actions.iter().any(|a| a == "*" || a == "s3:*");
        let some_s3 = all_s3 || actions.iter().any(|a| a.starts_with("s3:"));
        let resources = strings(s.get("Resource"));
        let any_resource = resources.iter().any(|r| {
            r == "*" || r == "arn:aws:s3:::*" || r.ends_with(":s3:::*") || r == "arn:*:s3:::*"
        });
        if all_s3 {
            found.push(format!("Statement[{i}] grants every S3 action (s3:* or *)"));
        } else if some_s3 && any_resource {
            found.push(format!(
                "Statement[{i}] grants S3 actions on every bucket (Resource *)"
            ));
        }
    }
    found
}

// --- comparison by meaning ----------------------------------------------------------------

/// The normal form of a document: single values as sorted lists, condition values as
/// strings, object keys sorted, statements sorted. Two documents mean the same when their
/// normal forms are equal.
pub fn canonical(doc: &Value) -> Value {
    let Some(obj) = doc.as_object() else {
        return doc.clone();
    };
    let mut out = Map::new();
    let mut keys: Vec<&String> = obj.keys().collect();
    keys.sort();
    for k in keys {
        let v = &obj[k];
        let v = if k == "Statement" {
            let list = match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            let mut list: Vec<Value> = list.iter().map(canonical_statement).collect();
            list.sort_by_key(|s| s.to_string());
            list.dedup();
            Value::Array(list)
        } else {
            v.clone()
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn sorted_strings(v: &Value) -> Value {
    let mut list: Vec<String> = match v {
        Value::Array(a) => a.iter().map(scalar_string).collect(),
        other => vec![scalar_string(other)],
    };
    list.sort();
    list.dedup();
    json!(list)
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn sorted_map(obj: &Map<String, Value>, f: impl Fn(&Value) -> Value) -> Value {
    let mut keys: Vec<&String> = obj.keys().collect();
    keys.sort();
    let mut out = Map::new();
    for k in keys {
        out.insert(k.clone(), f(&obj[k]));
    }
    Value::Object(out)
}

fn canonical_statement(s: &Value) -> Value {
    let Some(obj) = s.as_object() else {
        return s.clone();
    };
    let mut out = Map::new();
    let mut keys: Vec<&String> = obj.keys().collect();
    keys.sort();
    for k in keys {
        let v = &obj[k];
        let v = match k.as_str() {
            "Action" | "NotAction" | "Resource" | "NotResource" => sorted_strings(v),
            "Principal" | "NotPrincipal" => match v {
                Value::Object(p) => sorted_map(p, sorted_strings),
                other => other.clone(),
            },
            "Condition" => match v {
                Value::Object(ops) => sorted_map(ops, |keys| match keys {
                    Value::Object(kv) => sorted_map(kv, sorted_strings),
                    other => other.clone(),
                }),
                other => other.clone(),
            },
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// Whether two documents mean the same.
pub fn same(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

/// A unified diff of two documents' normal forms (`-` current, `+` desired).
pub fn diff(current: &Value, desired: &Value) -> String {
    let a = serde_json::to_string_pretty(&canonical(current)).unwrap_or_default();
    let b = serde_json::to_string_pretty(&canonical(desired)).unwrap_or_default();
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(2)
        .header("current", "desired")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(spec: &str) -> S3Grant {
        S3Grant::parse(spec, Access::Read).unwrap()
    }

    #[test]
    fn grants_parse() {
        assert_eq!(
            grant("s3://cfg-bucket/app/prod/:read-write"),
            S3Grant {
                bucket: "cfg-bucket".into(),
                prefix: "app/prod".into(),
                access: Access::ReadWrite
            }
        );
        assert_eq!(
            grant("cfg-bucket"),
            S3Grant {
                bucket: "cfg-bucket".into(),
                prefix: "".into(),
                access: Access::Read
            }
        );
        assert!(S3Grant::parse("Bad_Bucket/x", Access::Read).is_err());
        assert!(S3Grant::parse("cfg-bucket/x:write", Access::Read).is_err());
        assert!(S3Grant::parse("cfg-bucket/a/*", Access::Read).is_err());
    }

    #[test]
    fn task_trust_snapshot() {
        insta::assert_json_snapshot!(task_trust("aws", "us-west-2", "123456789012"));
    }

    #[test]
    fn s3_read_snapshot() {
        insta::assert_json_snapshot!(s3_grants("aws", &[grant("cfg-bucket/app/prod")]));
    }

    #[test]
    fn s3_read_write_and_whole_bucket_snapshot() {
        insta::assert_json_snapshot!(s3_grants(
            "aws",
            &[grant("other-bucket"), grant("cfg-bucket/app:read-write")]
        ));
    }

    #[test]
    fn execution_snapshots() {
        insta::assert_json_snapshot!("execution_inline", execution_inline());
        insta::assert_json_snapshot!(
            "execution_reads",
            execution_reads(
                "aws",
                &[("cfg-bucket".into(), "app/app.env".into())],
                &[
                    "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-AbCdEf".into(),
                    "arn:aws:ssm:us-west-2:123456789012:parameter/app/token".into()
                ]
            )
        );
        assert_eq!(execution_reads("aws", &[], &[]), None);
    }

    #[test]
    fn instance_snapshots() {
        insta::assert_json_snapshot!("ec2_trust", service_trust(&["ec2.amazonaws.com"]));
        insta::assert_json_snapshot!("cloudwatch_logs", cloudwatch_logs("aws"));
    }

    #[test]
    fn same_meaning_despite_encoding_and_order() {
        let ours = s3_grants("aws", &[grant("cfg-bucket/app")]);
        // What IAM might answer: URL-encoded, statements and keys reordered, single values unwrapped.
        let theirs = r#"{"Statement":[{"Resource":"arn:aws:s3:::cfg-bucket","Condition":{"StringLike":{"s3:prefix":["app/*","app"]}},"Action":["s3:ListBucket"],"Effect":"Allow"},{"Effect":"Allow","Resource":["arn:aws:s3:::cfg-bucket/app/*"],"Action":"s3:GetObject"}],"Version":"2012-10-17"}"#;
        let encoded: String =
            percent_encoding::utf8_percent_encode(theirs, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let decoded = decode(&encoded).unwrap();
        assert!(same(&ours, &decoded), "{}", diff(&decoded, &ours));
        let rw = s3_grants("aws", &[grant("cfg-bucket/app:read-write")]);
        assert!(!same(&ours, &rw));
        assert!(
            diff(&ours, &rw).contains("+        \"s3:PutObject\""),
            "{}",
            diff(&ours, &rw)
        );
    }

    #[test]
    fn condition_values_compare_as_strings() {
        let a = json!({"Version": VERSION, "Statement": {"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":true}}}});
        let b = json!({"Version": VERSION, "Statement": [{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["*"],"Condition":{"Bool":{"aws:SecureTransport":["true"]}}}]});
        assert!(same(&a, &b));
    }

    #[test]
    fn documents_are_checked() {
        assert!(check_document(&s3_grants("aws", &[grant("cfg-bucket")])).is_empty());
        let p = check_document(&json!({"Statement": [{"Effect": "Maybe"}]}));
        assert_eq!(p.len(), 4, "{p:?}");
        assert_eq!(
            check_document(&json!([1])),
            vec!["it is not a JSON object".to_string()]
        );
    }

    #[test]
    fn broad_s3_is_found() {
        let all = json!({"Version": VERSION, "Statement": [{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}]});
        let star = json!({"Version": VERSION, "Statement": {"Effect":"Allow","Action":["s3:GetObject"],"Resource":"*"}});
        let deny = json!({"Version": VERSION, "Statement": {"Effect":"Deny","Action":"s3:*","Resource":"*"}});
        let ours = s3_grants("aws", &[grant("cfg-bucket:read-write")]);
        assert_eq!(broad_s3(&all).len(), 1);
        assert_eq!(broad_s3(&star).len(), 1);
        assert!(broad_s3(&deny).is_empty());
        assert!(broad_s3(&ours).is_empty());
        assert!(broad_s3(&execution_inline()).is_empty());
    }
}
