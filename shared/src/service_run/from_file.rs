//! `--service-file FILE`: the service deployed from a document in CreateService's JSON form,
//! sent as written. [`super::service_file`] is the pure part (the check, the comparison by
//! meaning, the update body); this is the I/O: read the file, lay the flags over it, compare
//! with DescribeServices' answer, then create or update with the document itself as the request
//! body ([`crate::aws::json_body`]), so fields this tool does not know reach ECS.
//!
//! Decisions:
//! - Flags win over the file's fields (`--desired-count`, `--launch-type`,
//!   `--capacity-provider-strategy`, the network flags, the deployment flags); the task
//!   definition is `--task-definition` (ECSKIT_TASK_DEFINITION_ARN) when given, else the file's.
//! - On create, only the request's identity is added: `cluster`, a client token derived from
//!   the body, and the `managed-by=ecskit` tag beside the file's tags. Nothing else is filled
//!   in, except the default VPC's subnets and security group for an awsvpc task definition
//!   when the file has no `networkConfiguration` (announced, as with the flags).
//! - A difference in a field only CreateService takes (launch type, scheduling strategy, role,
//!   service name ...) is drift that needs a re-create: exit 2, each field named with the
//!   service's value and the file's, nothing changed. Deleting a live service behind the user's
//!   back is not something a deploy should do; `--delete` and a second run is one command away.
//!
//! Its size: about 430 lines of code (load, identity, overlay and the three calls share the
//! document and its plan), then the unit tests of the overlay and the identity.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::service_file;
use super::taskdef::TaskDef;
use super::{Args, Deps, LaunchTypeArg, cluster, deploy, network, retry};
use crate::Report;
use crate::error::{AwsContext, Error, Result};

/// A service file read and checked: the document to send, and what was left out of it as
/// meaning "not set" (told on stderr).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub doc: Map<String, Value>,
    pub notes: Vec<String>,
}

/// Reads the file, fills in `${NAME}` from the environment as taskdef-register does, leaves out
/// what means "not set" ([`service_file::normalize`]) and checks every field the tool knows.
/// Problems name the file and the field.
pub fn load(path: &Path) -> std::result::Result<Loaded, Vec<String>> {
    let shown = path.display();
    let named = |problems: Vec<String>| -> Vec<String> {
        problems
            .into_iter()
            .map(|p| format!("--service-file {shown}: {p}"))
            .collect()
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("--service-file {shown}: cannot read it: {e}")])?;
    let mut doc: Value = serde_json::from_str(&text).map_err(|e| {
        vec![format!(
            "--service-file {shown}: not JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        )]
    })?;
    let unset =
        crate::taskdef_register::substitute::substitute(&mut doc, &|name| std::env::var(name).ok());
    if !unset.is_empty() {
        return Err(named(unset));
    }
    let Value::Object(mut obj) = doc else {
        return Err(named(service_file::check(&doc)));
    };
    let notes = service_file::normalize(&mut obj);
    let doc = Value::Object(obj);
    let problems = service_file::check(&doc);
    match doc {
        Value::Object(doc) if problems.is_empty() => Ok(Loaded { doc, notes }),
        _ => Err(named(problems)),
    }
}

/// The family a task definition reference names (`arn:...:task-definition/web:3`, `web:3`,
/// `web` are all `web`).
fn family(reference: &str) -> &str {
    let tail = reference
        .rsplit_once("task-definition/")
        .map_or(reference, |(_, t)| t);
    tail.split(':').next().unwrap_or(tail)
}

/// Where the flags and the file both name the service's identity, they must agree: a flag
/// naming another cluster, service or task definition family than the file's is a mistake
/// (exit 2, naming both). Only the revision may differ: `--task-definition` (the revision
/// taskdef-register just made, ECSKIT_TASK_DEFINITION_ARN) wins over the file's.
pub fn identity_conflicts(args: &Args, doc: &Map<String, Value>, file: &Path) -> Vec<String> {
    let text = |key: &str| doc.get(key).and_then(Value::as_str);
    let mut out = Vec::new();
    let shown = file.display();
    if let Some(c) = text("cluster")
        && !args.cluster.is_empty()
        && c.rsplit("cluster/").next() != args.cluster.rsplit("cluster/").next()
    {
        out.push(format!(
            "--cluster '{}' (or ECSKIT_CLUSTER) and {shown}'s cluster '{c}' differ: drop one, or make them the same",
            args.cluster
        ));
    }
    if let (Some(s), Some(flag)) = (text("serviceName"), &args.service)
        && s != flag
    {
        out.push(format!(
            "--service '{flag}' (or ECSKIT_SERVICE) and {shown}'s serviceName '{s}' differ: drop one, or make them the same"
        ));
    }
    if let (Some(td), Some(flag)) = (text("taskDefinition"), &args.task_definition)
        && family(td) != family(flag)
    {
        out.push(format!(
            "--task-definition '{flag}' (or ECSKIT_TASK_DEFINITION_ARN) and {shown}'s taskDefinition '{td}' name different families: drop one, or make them the same family (the flag's revision wins)"
        ));
    }
    out
}

/// The flags with the service's identity taken from the file where they are absent (the
/// `aws ecs create-service --cli-input-json` form holds `cluster`, `serviceName` and
/// `taskDefinition`).
pub fn with_identity(args: &Args, doc: &Map<String, Value>) -> Args {
    let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_string);
    let mut out = args.clone();
    if out.cluster.is_empty()
        && let Some(c) = text("cluster")
    {
        out.cluster = c;
    }
    if out.service.is_none() {
        out.service = text("serviceName");
    }
    if out.task_definition.is_none() {
        out.task_definition = text("taskDefinition");
    }
    out
}

/// The file with the flags laid over it: what the flags say wins.
pub fn overlay(doc: &mut Map<String, Value>, args: &Args, task_definition: &str) {
    if let Some(name) = &args.service {
        doc.insert("serviceName".into(), json!(name));
    }
    doc.insert("taskDefinition".into(), json!(task_definition));
    if let Some(n) = args.desired_count {
        doc.insert("desiredCount".into(), json!(n));
    }
    if let Some(lt) = args.launch_type {
        doc.remove("capacityProviderStrategy");
        doc.insert("launchType".into(), json!(lt.sdk().as_str()));
    }
    if !args.capacity_provider_strategy.is_empty() {
        let items: Vec<Value> = args
            .capacity_provider_strategy
            .iter()
            .filter_map(|s| deploy::parse_strategy_item(s).ok())
            .map(|i| {
                json!({"capacityProvider": i.capacity_provider(), "weight": i.weight(), "base": i.base()})
            })
            .collect();
        doc.remove("launchType");
        doc.insert("capacityProviderStrategy".into(), Value::Array(items));
    }
    let net = deploy::network_flags(args);
    if net.any() {
        let vpc = object_at(doc, &["networkConfiguration", "awsvpcConfiguration"]);
        if !net.subnets.is_empty() {
            vpc.insert("subnets".into(), json!(net.subnets));
        }
        if !net.security_groups.is_empty() {
            vpc.insert("securityGroups".into(), json!(net.security_groups));
        }
        if let Some(public) = net.assign_public_ip {
            vpc.insert("assignPublicIp".into(), json!(public_ip(public)));
        }
    }
    let breaker = match (args.circuit_breaker, args.no_circuit_breaker) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    if let Some(on) = breaker {
        object_at(doc, &["deploymentConfiguration"]).insert(
            "deploymentCircuitBreaker".into(),
            json!({"enable": on, "rollback": on}),
        );
    }
    for (value, key) in [
        (args.min_healthy_percent, "minimumHealthyPercent"),
        (args.max_percent, "maximumPercent"),
    ] {
        if let Some(p) = value {
            object_at(doc, &["deploymentConfiguration"]).insert(key.into(), json!(p));
        }
    }
    if let Some(on) = args.enable_execute_command {
        doc.insert("enableExecuteCommand".into(), json!(on));
    }
    super::strategy::overlay(doc, &super::strategy::rollout(&args.rollout).0);
}

fn public_ip(on: bool) -> &'static str {
    if on { "ENABLED" } else { "DISABLED" }
}

/// The object at `path` inside `doc`, made (or made an object) where missing.
fn object_at<'a>(doc: &'a mut Map<String, Value>, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut here = doc;
    for key in path {
        let slot = here
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        here = slot.as_object_mut().expect("made an object above");
    }
    here
}

/// Whether the document's tasks run on Fargate: its launch type, or a strategy of Fargate
/// providers only; with neither, the cluster's default strategy decides, which for a cluster
/// service-run creates is FARGATE.
pub(super) fn fargate(doc: &Map<String, Value>) -> bool {
    match (doc.get("launchType"), doc.get("capacityProviderStrategy")) {
        (Some(lt), _) => lt.as_str() == Some(LaunchTypeArg::Fargate.sdk().as_str()),
        (None, Some(Value::Array(items))) => items.iter().all(|i| {
            i.get("capacityProvider")
                .and_then(Value::as_str)
                .is_some_and(|p| p.starts_with("FARGATE"))
        }),
        _ => true,
    }
}

/// The document's awsvpc settings, when it gives subnets.
pub(super) fn network_of(
    doc: &Map<String, Value>,
) -> Option<aws_sdk_ecs::types::NetworkConfiguration> {
    let vpc = doc
        .get("networkConfiguration")?
        .get("awsvpcConfiguration")?;
    let strings = |key: &str| -> Vec<String> {
        vpc.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let subnets = strings("subnets");
    if subnets.is_empty() {
        return None;
    }
    let public = vpc.get("assignPublicIp").and_then(Value::as_str) == Some("ENABLED");
    Some(network::configuration(
        subnets,
        strings("securityGroups"),
        public,
    ))
}

/// Compares with the live service, then creates it or updates what differs (nothing when the
/// file means what the service is), then watches like the flags' path.
pub async fn deploy(
    deps: &Deps,
    args: &Args,
    td: &TaskDef,
    loaded: Loaded,
    file: &Path,
) -> Result<Report> {
    let cluster_name = &args.cluster;
    let Loaded { mut doc, notes } = loaded;
    for note in notes {
        deps.progress
            .println(format!("note: --service-file {}: {note}", file.display()));
    }
    overlay(&mut doc, args, &td.arn);
    let name = doc
        .get("serviceName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // Remembered on the service, and compared on the next run: the document as the file and
    // the flags say it, before the default network is filled in.
    let applied = service_file::digest(&Value::Object(doc.clone()));
    // Everything that can refuse runs before the cluster is created: exit 2 changes nothing.
    let live = service_file::describe_both(&deps.ecs, cluster_name, &name).await?;
    let fargate = fargate(&doc);
    let mut plan = None;
    // The file's rollout, checked against the strategy the service keeps (ECS's default for a
    // new one).
    let rollout = super::strategy::Rollout {
        deployment: doc
            .get("deploymentConfiguration")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    };
    match &live {
        Some((_, live_json)) => {
            let p = service_file::plan(&Value::Object(doc.clone()), live_json);
            refuse_what_update_cannot_do(cluster_name, &p, live_json, &name, file)?;
            if p.update.contains_key("deploymentConfiguration") {
                super::strategy::check_over_live(live_json, &rollout, &name)?;
            }
            plan = Some(p);
        }
        None if td.awsvpc && !doc.contains_key("networkConfiguration") => {
            let conf = network::resolve(deps, &Default::default(), fargate).await?;
            if let Some(vpc) = conf.awsvpc_configuration() {
                doc.insert(
                    "networkConfiguration".into(),
                    json!({"awsvpcConfiguration": {
                        "subnets": vpc.subnets(),
                        "securityGroups": vpc.security_groups(),
                        "assignPublicIp": vpc.assign_public_ip().map(|a| a.as_str()),
                    }}),
                );
            }
        }
        None => {}
    }
    if live.is_none() {
        // A new service starts from ECS's defaults (rolling).
        super::strategy::check_over_live(&json!({}), &rollout, &name)?;
    }
    let ensured = cluster::ensure(deps, cluster_name, args.container_insights).await?;
    if !fargate && !deps.ctx.dry_run && !ensured.ec2_capacity {
        deps.progress.println(format!(
            "warning: cluster {cluster_name} has no EC2 capacity: no container instance has joined it and it has no EC2 capacity provider, so EC2 tasks will stay PENDING until instances join (instance-profile makes their role)"
        ));
    }
    let service = match (live, plan) {
        (Some((svc, live_json)), Some(plan)) => {
            if plan.update.is_empty() && plan.tags.is_empty() {
                tracing::info!(
                    "service {name} already is what {} says: no change",
                    file.display()
                );
            }
            let updated = if plan.update.is_empty() {
                None
            } else {
                send_update(deps, cluster_name, &name, &live_json, &plan.update).await?
            };
            send_tags(deps, &name, &live_json, &plan).await?;
            updated.or(Some(svc))
        }
        _ => send_create(deps, cluster_name, &name, doc, &applied, file).await?,
    };
    deploy::watch_and_report(deps, args, td, &ensured.arn, &name, service).await
}

/// Exit 2 before any call: a field only CreateService takes differs, or the service's
/// deployments are not ECS's to make (CODE_DEPLOY, EXTERNAL) and the file would update it.
fn refuse_what_update_cannot_do(
    cluster: &str,
    plan: &service_file::Plan,
    live: &Value,
    name: &str,
    file: &Path,
) -> Result<()> {
    if !plan.needs_recreate.is_empty() {
        return Err(Error::inputs(
            plan.needs_recreate
                .iter()
                .map(|d| format!("service {name}: {d} (UpdateService cannot change it)"))
                .collect(),
        )
        .hint(format!(
            "ECS sets these only when it creates a service: put the service's values back in {}, or delete the service (service-run --delete) and run again to re-create it",
            file.display()
        )));
    }
    // A file that moves the service to the ECS controller is the way out, not a half-update.
    let moves_to_ecs = plan
        .update
        .get("deploymentController")
        .and_then(|d| d.get("type"))
        .and_then(Value::as_str)
        == Some("ECS");
    if !moves_to_ecs {
        let changes: Vec<String> = plan.update.keys().map(|k| format!("{k} differs")).collect();
        super::strategy::refuse_controller(cluster, name, live, &changes)?;
    }
    Ok(())
}

async fn send_create(
    deps: &Deps,
    cluster: &str,
    name: &str,
    mut body: Map<String, Value>,
    applied: &str,
    file: &Path,
) -> Result<Option<aws_sdk_ecs::types::Service>> {
    let mut tags: Vec<Value> = body
        .remove("tags")
        .and_then(|t| t.as_array().cloned())
        .unwrap_or_default();
    let ours = [super::MANAGED_BY.0, service_file::LAST_APPLIED];
    tags.retain(|t| {
        !t.get("key")
            .and_then(Value::as_str)
            .is_some_and(|k| ours.contains(&k))
    });
    tags.push(json!({"key": super::MANAGED_BY.0, "value": super::MANAGED_BY.1}));
    tags.push(json!({"key": service_file::LAST_APPLIED, "value": applied}));
    body.insert("tags".into(), Value::Array(tags));
    body.insert("cluster".into(), json!(cluster));
    let fields: Vec<&str> = body.keys().map(String::as_str).collect();
    if !deps.ctx.apply(format!(
        "create service {name} in cluster {cluster} from {} ({})",
        file.display(),
        fields.join(", ")
    )) {
        return Ok(None);
    }
    // The token is derived from the request, so a retried create is the same request.
    let token = retry::client_token(&[cluster, name, &Value::Object(body.clone()).to_string()]);
    body.insert("clientToken".into(), json!(token));
    let body = Value::Object(body);
    let out = retry::with_iam_retry(
        deps,
        &format!("creating service {name} in cluster {cluster}"),
        || {
            deps.ecs
                .create_service()
                .service_name(name)
                .customize()
                .mutate_request(crate::aws::json_body(&body))
                .send()
        },
    )
    .await?;
    Ok(out.service)
}

async fn send_update(
    deps: &Deps,
    cluster: &str,
    name: &str,
    live: &Value,
    fields: &Map<String, Value>,
) -> Result<Option<aws_sdk_ecs::types::Service>> {
    let changes: Vec<String> = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} {} -> {v}",
                live.get(k)
                    .map(Value::to_string)
                    .unwrap_or_else(|| "unset".into())
            )
        })
        .collect();
    if !deps.ctx.apply(format!(
        "update service {name} in cluster {cluster}: {}",
        changes.join("; ")
    )) {
        return Ok(None);
    }
    let mut body: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.clone(), service_file::update_value(v, live.get(k))))
        .collect();
    // The file's deploymentConfiguration is laid over the live one: a strategy the file
    // changes must not carry the live strategy's settings along.
    if let Some(Value::Object(dc)) = body.get_mut("deploymentConfiguration") {
        super::strategy::tidy(dc);
    }
    // ECS moves a service to another capacity provider strategy only with a new deployment.
    if body.contains_key("capacityProviderStrategy") {
        body.insert("forceNewDeployment".into(), json!(true));
    }
    body.insert("cluster".into(), json!(cluster));
    body.insert("service".into(), json!(name));
    let body = Value::Object(body);
    let out = deps
        .ecs
        .update_service()
        .service(name)
        .customize()
        .mutate_request(crate::aws::json_body(&body))
        .send()
        .await
        .context(format!("updating service {name} in cluster {cluster}"))?;
    Ok(out.service)
}

/// The file's tags the service lacks (UpdateService takes no tags) and the digest of what was
/// applied, in one TagResource.
async fn send_tags(deps: &Deps, name: &str, live: &Value, plan: &service_file::Plan) -> Result<()> {
    let Some(applied) = &plan.remember else {
        return Ok(());
    };
    let arn = live
        .get("serviceArn")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let mut tags = plan.tags.clone();
    tags.push((service_file::LAST_APPLIED.to_string(), applied.clone()));
    let shown: Vec<String> = plan.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let what = if shown.is_empty() {
        format!(
            "remember on service {name} what was applied ({})",
            service_file::LAST_APPLIED
        )
    } else {
        format!(
            "tag service {name}: {} (and {})",
            shown.join(", "),
            service_file::LAST_APPLIED
        )
    };
    if !deps.ctx.apply(what) {
        return Ok(());
    }
    let tags: Vec<aws_sdk_ecs::types::Tag> = tags
        .into_iter()
        .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
        .collect();
    deps.ecs
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags))
        .send()
        .await
        .context(format!("tagging service {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut all = vec!["service-run", "--cluster", "c"];
        all.extend_from_slice(extra);
        Args::try_parse_from(all).unwrap()
    }

    #[test]
    fn flags_win_over_the_files_fields_and_the_rest_is_kept() {
        let mut doc = json!({
            "serviceName": "web",
            "taskDefinition": "web:1",
            "desiredCount": 2,
            "launchType": "FARGATE",
            "deploymentConfiguration": {"maximumPercent": 150, "alarms": {"alarmNames": ["a"]}},
            "futureSetting": {"x": 1}
        })
        .as_object()
        .unwrap()
        .clone();
        let a = args(&[
            "--desired-count",
            "3",
            "--capacity-provider-strategy",
            "FARGATE_SPOT:2",
            "--subnets",
            "subnet-1",
            "--assign-public-ip=false",
            "--min-healthy-percent",
            "50",
        ]);
        overlay(
            &mut doc,
            &a,
            "arn:aws:ecs:us-west-2:1:task-definition/web:2",
        );
        assert_eq!(
            Value::Object(doc),
            json!({
                "serviceName": "web",
                "taskDefinition": "arn:aws:ecs:us-west-2:1:task-definition/web:2",
                "desiredCount": 3,
                "deploymentConfiguration": {"maximumPercent": 150, "alarms": {"alarmNames": ["a"]}, "minimumHealthyPercent": 50},
                "futureSetting": {"x": 1},
                "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 2, "base": 0}],
                "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}}
            })
        );
    }

    #[test]
    fn the_cli_input_form_names_the_service_and_a_flag_naming_another_is_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("service.json");
        std::fs::write(
            &p,
            r#"{"cluster": "web-apps", "serviceName": "web", "taskDefinition": "web-td:3", "desiredCount": 1}"#,
        )
        .unwrap();
        let file = p.to_str().unwrap();
        let parse = |extra: &[&str]| {
            let mut all = vec!["service-run", "--service-file", file];
            all.extend_from_slice(extra);
            Args::try_parse_from(all).unwrap()
        };
        // The flags are absent: the file's identity is taken.
        let bare = parse(&[]);
        super::super::validate(&bare).unwrap();
        let doc = load(&p).unwrap().doc;
        let taken = with_identity(&bare, &doc);
        assert_eq!(
            (
                taken.cluster.as_str(),
                taken.service.as_deref(),
                taken.task_definition.as_deref()
            ),
            ("web-apps", Some("web"), Some("web-td:3"))
        );
        // The same names, or a newer revision of the family (taskdef-register's): fine.
        let arn = "arn:aws:ecs:us-west-2:123456789012:task-definition/web-td:4";
        let same = parse(&[
            "--cluster",
            "web-apps",
            "--service",
            "web",
            "--task-definition",
            arn,
        ]);
        super::super::validate(&same).unwrap();
        assert_eq!(
            with_identity(&same, &doc).task_definition.as_deref(),
            Some(arn)
        );
        // Another cluster, service or family: exit 2 naming both.
        let other = parse(&[
            "--cluster",
            "prod",
            "--service",
            "api",
            "--task-definition",
            "api:1",
        ]);
        let err = super::super::validate(&other).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        for both in [
            "--cluster 'prod' (or ECSKIT_CLUSTER) and ",
            "'s cluster 'web-apps' differ",
            "--service 'api' (or ECSKIT_SERVICE) and ",
            "'s serviceName 'web' differ",
            "--task-definition 'api:1' (or ECSKIT_TASK_DEFINITION_ARN) and ",
            "'s taskDefinition 'web-td:3' name different families",
        ] {
            assert!(text.contains(both), "{both} not in {text}");
        }
    }

    #[test]
    fn fargate_follows_the_launch_type_or_the_strategy() {
        let doc = |v: Value| v.as_object().unwrap().clone();
        assert!(fargate(&doc(json!({}))));
        assert!(!fargate(&doc(json!({"launchType": "EC2"}))));
        assert!(fargate(&doc(
            json!({"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT"}]})
        )));
        assert!(!fargate(&doc(
            json!({"capacityProviderStrategy": [{"capacityProvider": "my-asg"}]})
        )));
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("service.json");
        std::fs::write(&p, r#"{"serviceName": "web", "desiredCount": "two"}"#).unwrap();
        let problems = load(&p).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .ends_with("service.json: desiredCount: \"two\" is not a count from 0 to 10000"),
            "{problems:?}"
        );
        std::fs::write(&p, "{\"serviceName\": ").unwrap();
        assert!(load(&p).unwrap_err()[0].contains("not JSON"));
    }
}
