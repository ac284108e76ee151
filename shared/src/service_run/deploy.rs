//! The service itself: what the flags ask for, the difference from what exists, create or
//! update (only when something differs) and delete. The IAM-propagation retry is in
//! [`super::retry`], the task definition's lookup in [`super::taskdef`].
//!
//! Its size: about 500 lines of code (the wanted state, the comparison and the two calls share
//! one vocabulary), then the unit tests of the comparison.

use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, DeploymentCircuitBreaker, DeploymentConfiguration, LaunchType,
    NetworkConfiguration, PropagateTags, Service,
};

use super::network::{self, NetworkFlags};
use super::retry::{client_token, with_iam_retry};
use super::taskdef::TaskDef;
use super::{Args, Deps, cluster, describe_service, service_file, strategy, watch};
use crate::Report;
pub use crate::ecs::placement::parse_strategy_item;
use crate::error::{AwsContext, Error, Result};

/// What the flags ask of the service. `None` means "not given": a create uses the default, an
/// update keeps what the service has.
#[derive(Clone, Debug, Default)]
pub struct Want {
    pub task_definition: String,
    pub desired_count: Option<i32>,
    pub launch_type: Option<LaunchType>,
    pub strategy: Vec<CapacityProviderStrategyItem>,
    pub network: NetworkFlags,
    /// `Some` when a flag asked (`--circuit-breaker` / `--no-circuit-breaker`): a create turns it
    /// on unless told otherwise, an update keeps the service's own setting.
    pub circuit_breaker: Option<bool>,
    pub min_healthy_percent: Option<i32>,
    pub max_percent: Option<i32>,
    pub enable_execute_command: Option<bool>,
}

impl Want {
    pub fn from_args(args: &Args, td: &TaskDef) -> Self {
        Want {
            task_definition: td.arn.clone(),
            desired_count: args.desired_count,
            launch_type: args.launch_type.map(|l| l.sdk()),
            strategy: args
                .capacity_provider_strategy
                .iter()
                .filter_map(|s| parse_strategy_item(s).ok())
                .collect(),
            network: network_flags(args),
            circuit_breaker: match (args.circuit_breaker, args.no_circuit_breaker) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            min_healthy_percent: args.min_healthy_percent,
            max_percent: args.max_percent,
            enable_execute_command: args.enable_execute_command,
        }
    }

    /// Whether the tasks run on Fargate: the launch type, or a strategy of Fargate providers
    /// only (the default when neither is given).
    pub fn fargate(&self) -> bool {
        crate::ecs::placement::fargate(self.launch_type.as_ref(), &self.strategy)
    }

    fn deployment_configuration(
        &self,
        existing: Option<&DeploymentConfiguration>,
    ) -> DeploymentConfiguration {
        let existing_cb = existing
            .and_then(|d| d.deployment_circuit_breaker())
            .map(|c| c.enable() && c.rollback());
        let cb = self.circuit_breaker.or(existing_cb).unwrap_or(true);
        DeploymentConfiguration::builder()
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder()
                    .enable(cb)
                    .rollback(cb)
                    .build(),
            )
            .set_minimum_healthy_percent(
                self.min_healthy_percent
                    .or_else(|| existing.and_then(|d| d.minimum_healthy_percent()))
                    .or(Some(100)),
            )
            .set_maximum_percent(
                self.max_percent
                    .or_else(|| existing.and_then(|d| d.maximum_percent()))
                    .or(Some(200)),
            )
            .build()
    }
}

pub fn network_flags(args: &Args) -> NetworkFlags {
    NetworkFlags {
        subnets: args.subnets.clone(),
        security_groups: args.security_groups.clone(),
        assign_public_ip: args.assign_public_ip,
    }
}

/// Whether the service runs this task definition. The emulator stores the reference as given
/// (`family:2`), ECS stores the ARN: both are the same revision.
pub fn same_task_definition(stored: &str, arn: &str) -> bool {
    stored == arn || arn.ends_with(&format!("/{stored}"))
}

fn strategy_key(items: &[CapacityProviderStrategyItem]) -> Vec<(String, i32, i32)> {
    let mut v: Vec<_> = items
        .iter()
        .map(|i| (i.capacity_provider().to_string(), i.weight(), i.base()))
        .collect();
    v.sort();
    v
}

/// The planned update of an existing service: one line per difference, and the network it
/// should have. An empty list means no call at all.
#[derive(Debug, Default)]
pub struct Plan {
    pub changes: Vec<String>,
    pub network: Option<NetworkConfiguration>,
    pub strategy_changed: bool,
}

/// Compares the service with what is wanted. Fields the API did not return are not compared:
/// ECS always returns them, and an emulator that does not would otherwise be updated forever.
pub fn plan_update(existing: &Service, want: &Want, td: &TaskDef) -> Result<Plan> {
    let mut plan = Plan::default();
    let stored_td = existing.task_definition().unwrap_or_default();
    if !same_task_definition(stored_td, &want.task_definition) {
        plan.changes.push(format!(
            "task definition {stored_td} -> {}",
            want.task_definition
        ));
    }
    if let Some(n) = want.desired_count
        && n != existing.desired_count()
    {
        plan.changes
            .push(format!("desired count {} -> {n}", existing.desired_count()));
    }
    let name = existing.service_name().unwrap_or_default();
    if let Some(lt) = &want.launch_type {
        let current = existing.launch_type();
        let has_strategy = !existing.capacity_provider_strategy().is_empty();
        if (current.is_some() && current != Some(lt)) || (current.is_none() && has_strategy) {
            return Err(Error::input(format!(
                "--launch-type {lt} differs from service {name}'s {}: ECS cannot change it in place",
                current.map(|l| l.as_str().to_string()).unwrap_or_else(|| "capacity provider strategy".into())
            ))
            .hint("keep the service's setting, or delete it (--delete) and run again"));
        }
    }
    if !want.strategy.is_empty() {
        let current = existing.capacity_provider_strategy();
        let differs = if current.is_empty() {
            // A launch-type service moves to a strategy with a new deployment; a service with
            // neither (an emulator) is not compared.
            existing.launch_type().is_some()
        } else {
            strategy_key(current) != strategy_key(&want.strategy)
        };
        if differs {
            plan.strategy_changed = true;
            plan.changes.push("capacity provider strategy".to_string());
        }
    }
    if td.awsvpc || want.network.any() {
        let wanted = network::overlay(existing.network_configuration(), &want.network);
        if wanted.is_some() && !network::same(existing.network_configuration(), wanted.as_ref()) {
            plan.changes
                .push("network (awsvpc subnets, security groups, public IP)".to_string());
        }
        plan.network = wanted;
    }
    if let Some(current) = existing.deployment_configuration() {
        let cb = current
            .deployment_circuit_breaker()
            .map(|c| (c.enable(), c.rollback()))
            .unwrap_or((false, false));
        if let Some(on) = want.circuit_breaker
            && cb != (on, on)
        {
            plan.changes.push(format!(
                "circuit breaker with rollback {}",
                if on { "on" } else { "off" }
            ));
        }
        if let Some(p) = want.min_healthy_percent
            && current.minimum_healthy_percent() != Some(p)
        {
            plan.changes.push(format!("minimum healthy percent -> {p}"));
        }
        if let Some(p) = want.max_percent
            && current.maximum_percent() != Some(p)
        {
            plan.changes.push(format!("maximum percent -> {p}"));
        }
    }
    if let Some(e) = want.enable_execute_command
        && e != existing.enable_execute_command()
    {
        plan.changes
            .push(format!("execute command {}", if e { "on" } else { "off" }));
    }
    Ok(plan)
}

/// Create or update, then (unless --no-wait or a dry run) watch this run's deployment.
pub async fn deploy(deps: &Deps, args: &Args, td: &TaskDef) -> Result<Report> {
    let service_name = args.service.clone().unwrap_or_default();
    let cluster_name = &args.cluster;
    let want = Want::from_args(args, td);
    if !td.awsvpc && want.network.any() {
        return Err(Error::input(format!(
            "--subnets/--security-groups/--assign-public-ip need an awsvpc task definition; {} uses another network mode",
            td.arn
        ))
        .hint("drop the network flags, or register the task definition with networkMode awsvpc"));
    }
    // Everything that can refuse (the default-VPC lookup of a new service, a rollout that needs
    // a load balancer) runs before the cluster is created: exit 2 means nothing was changed.
    // The service is read with every field ECS sent, so the rollout is compared as sent.
    let existing = service_file::describe_both(&deps.ecs, cluster_name, &service_name).await?;
    let rollout = strategy::rollout(&args.rollout).0;
    let next = match &existing {
        None => {
            let fields =
                strategy::update_fields(&serde_json::json!({}), &rollout, &service_name)?.0;
            // A new service starts from ECS's defaults (rolling).
            strategy::check_over_live(&serde_json::json!({}), &rollout, &service_name)?;
            Next::Create(fields)
        }
        Some((svc, live)) => Next::Update(
            svc,
            live,
            plan_whole_update(cluster_name, svc, live, &rollout, &want, td)?,
        ),
    };
    let network = match &existing {
        None if td.awsvpc => Some(network::resolve(deps, &want.network, want.fargate()).await?),
        _ => None,
    };
    if want.fargate() && !td.awsvpc {
        return Err(Error::input(format!(
            "{} is not an awsvpc task definition, and Fargate runs only awsvpc tasks",
            td.arn
        ))
        .hint("register it with networkMode awsvpc, or pass --launch-type EC2"));
    }
    let cluster = cluster::ensure(deps, cluster_name, args.container_insights).await?;
    let cluster_arn = cluster.arn;
    if !want.fargate() && !deps.ctx.dry_run && !cluster.ec2_capacity {
        deps.progress.println(format!(
            "warning: cluster {cluster_name} has no EC2 capacity: no container instance has joined it and it has no EC2 capacity provider, so EC2 tasks will stay PENDING until instances join (instance-profile makes their role)"
        ));
    }
    let service = match next {
        Next::Create(created_rollout) => {
            create(
                deps,
                cluster_name,
                &service_name,
                &want,
                td,
                network,
                created_rollout,
            )
            .await?
        }
        Next::Update(svc, live, prepared) => {
            update(deps, cluster_name, svc, live, prepared, &want, td).await?
        }
    };
    watch_and_report(deps, args, td, &cluster_arn, &service_name, service).await
}

/// After the create or update (`service`: the answer, `None` in a dry run): follows this
/// run's deployment unless --no-wait or a dry run, and reports. Shared with the service file.
pub(super) async fn watch_and_report(
    deps: &Deps,
    args: &Args,
    td: &TaskDef,
    cluster_arn: &str,
    service_name: &str,
    service: Option<Service>,
) -> Result<Report> {
    let cluster_name = &args.cluster;
    let service_arn = service
        .as_ref()
        .and_then(|s| s.service_arn().map(str::to_string))
        .unwrap_or_else(|| computed_service_arn(cluster_arn, service_name));
    let deployment = service.as_ref().and_then(watch::primary_deployment);
    let mut report_state = watch::Outcome::from_service(service.as_ref(), deployment.as_deref());
    if !args.no_wait
        && !deps.ctx.dry_run
        && let Some(id) = &deployment
    {
        let target = watch::Target {
            cluster: cluster_name.clone(),
            service: service_name.to_string(),
            deployment_id: id.clone(),
            essentials: td.essentials.clone(),
            logs: td.logs.clone(),
            wait_until: args.follow.wait_until.clone(),
        };
        // The service was created or updated: an AWS failure while watching (a throttle) still
        // names it.
        report_state = watch::follow(deps, &target).await.map_err(|e| {
            e.with_made_output(ecskit_contract::outputs::CLUSTER_ARN, cluster_arn)
                .with_made_output(ecskit_contract::outputs::SERVICE_ARN, service_arn.clone())
                .with_made_output(
                    ecskit_contract::outputs::TASK_DEFINITION_ARN,
                    td.arn.clone(),
                )
        })?;
    }
    let mut report = deps
        .ctx
        .report()
        .output(
            ecskit_contract::outputs::CLUSTER_ARN,
            cluster_arn.to_string(),
        )
        .output(ecskit_contract::outputs::SERVICE_ARN, service_arn)
        .output(
            ecskit_contract::outputs::TASK_DEFINITION_ARN,
            td.arn.clone(),
        );
    report = report_state.add_to(report);
    Ok(report)
}

/// `arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME` from the cluster's ARN (dry runs).
fn computed_service_arn(cluster_arn: &str, service: &str) -> String {
    match cluster_arn.split_once(":cluster/") {
        Some((prefix, cluster)) => format!("{prefix}:service/{cluster}/{service}"),
        None => service.to_string(),
    }
}

async fn create(
    deps: &Deps,
    cluster: &str,
    name: &str,
    want: &Want,
    td: &TaskDef,
    network: Option<NetworkConfiguration>,
    rollout: serde_json::Map<String, serde_json::Value>,
) -> Result<Option<Service>> {
    let desired = want.desired_count.unwrap_or(1);
    let launch = if want.strategy.is_empty() {
        format!(
            "launch type {}",
            want.launch_type.clone().unwrap_or(LaunchType::Fargate)
        )
    } else {
        format!(
            "capacity providers {}",
            strategy_key(&want.strategy)
                .iter()
                .map(|(p, w, b)| format!("{p}:{w}:{b}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    if !deps.ctx.apply(format!(
        "create service {name} in cluster {cluster} ({}, {desired} task(s), {launch}, circuit breaker {})",
        td.arn,
        if want.circuit_breaker.unwrap_or(true) { "on" } else { "off" }
    )) {
        return Ok(None);
    }
    let token = client_token(&[
        cluster,
        name,
        &want.task_definition,
        &desired.to_string(),
        &launch,
    ]);
    let deployment_configuration = want.deployment_configuration(None);
    let out = with_iam_retry(
        deps,
        &format!("creating service {name} in cluster {cluster}"),
        || {
            let mut req = deps
                .ecs
                .create_service()
                .cluster(cluster)
                .service_name(name)
                .task_definition(&want.task_definition)
                .desired_count(desired)
                .client_token(&token)
                .deployment_configuration(deployment_configuration.clone())
                .enable_execute_command(want.enable_execute_command.unwrap_or(false))
                .propagate_tags(PropagateTags::Service)
                .tags(cluster::tag())
                .set_network_configuration(network.clone());
            if want.strategy.is_empty() {
                req = req.launch_type(want.launch_type.clone().unwrap_or(LaunchType::Fargate));
            } else {
                req = req.set_capacity_provider_strategy(Some(want.strategy.clone()));
            }
            req.customize()
                .mutate_request(strategy::merge_into_body(
                    Default::default(),
                    rollout.clone(),
                ))
                .send()
        },
    )
    .await?;
    Ok(out.service)
}

/// What the run does to the service: create it with the rollout's fields, or update it.
enum Next<'a> {
    Create(serde_json::Map<String, serde_json::Value>),
    Update(&'a Service, &'a serde_json::Value, Update),
}

/// An update worked out before any call that changes something: what differs, and the
/// rollout's fields to send. Every refusal (a field ECS cannot change in place, a rollout the
/// live service cannot take, a service whose deployments ECS does not make) is made here.
struct Update {
    plan: Plan,
    rollout_fields: serde_json::Map<String, serde_json::Value>,
}

fn plan_whole_update(
    cluster: &str,
    existing: &Service,
    live: &serde_json::Value,
    rollout: &strategy::Rollout,
    want: &Want,
    td: &TaskDef,
) -> Result<Update> {
    let name = existing.service_name().unwrap_or_default();
    let mut plan = plan_update(existing, want, td)?;
    let (rollout_fields, rollout_changes) = strategy::update_fields(live, rollout, name)?;
    plan.changes.extend(rollout_changes);
    // Nothing is sent to a service whose deployments ECS does not make: that refusal, with
    // its way out, comes before what the rollout's settings would need.
    strategy::refuse_controller(cluster, name, live, &plan.changes)?;
    strategy::check_over_live(live, rollout, name)?;
    Ok(Update {
        plan,
        rollout_fields,
    })
}

async fn update(
    deps: &Deps,
    cluster: &str,
    existing: &Service,
    live: &serde_json::Value,
    update: Update,
    want: &Want,
    td: &TaskDef,
) -> Result<Option<Service>> {
    let name = existing.service_name().unwrap_or_default();
    let Update {
        plan,
        rollout_fields,
    } = update;
    if plan.changes.is_empty() {
        tracing::info!("service {name} already runs {} as asked: no change", td.arn);
        return Ok(Some(existing.clone()));
    }
    if !deps.ctx.apply(format!(
        "update service {name} in cluster {cluster}: {}",
        plan.changes.join("; ")
    )) {
        return Ok(Some(existing.clone()));
    }
    let mut req = deps
        .ecs
        .update_service()
        .cluster(cluster)
        .service(name)
        .task_definition(&want.task_definition)
        .desired_count(want.desired_count.unwrap_or(existing.desired_count()))
        .deployment_configuration(
            want.deployment_configuration(existing.deployment_configuration()),
        )
        .set_network_configuration(plan.network.clone())
        .set_enable_execute_command(want.enable_execute_command);
    if plan.strategy_changed {
        req = req
            .set_capacity_provider_strategy(Some(want.strategy.clone()))
            .force_new_deployment(true);
    }
    // What the typed request leaves out of deploymentConfiguration (alarms, hooks, strategy)
    // keeps the service's value; the rollout flags' fields go over it.
    let under: serde_json::Map<String, serde_json::Value> = live
        .get("deploymentConfiguration")
        .map(|d| ("deploymentConfiguration".to_string(), d.clone()))
        .into_iter()
        .collect();
    let out = req
        .customize()
        .mutate_request(strategy::merge_into_body(under, rollout_fields))
        .send()
        .await
        .context(format!("updating service {name} in cluster {cluster}"))?;
    Ok(out.service)
}

/// `--delete` and `--delete-cluster`.
pub async fn delete(deps: &Deps, args: &Args) -> Result<Report> {
    let cluster_name = &args.cluster;
    let mut service_arn = None;
    if args.delete {
        let name = args.service.clone().unwrap_or_default();
        if let Some(svc) = describe_service(deps, cluster_name, &name).await? {
            let arn = svc.service_arn().unwrap_or(&name).to_string();
            let tags = deps
                .ecs
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await
                .context(format!("reading the tags of service {name}"))?;
            if !cluster::is_managed(tags.tags()) {
                return Err(Error::input(format!(
                    "service {name} is not tagged managed-by=ecskit: --delete only removes what ecskit created"
                ))
                .hint("delete it with the console or `aws ecs delete-service` if it really should go"));
            }
            if svc.desired_count() > 0 && deps.ctx.apply(format!("scale service {name} to 0 tasks"))
            {
                deps.ecs
                    .update_service()
                    .cluster(cluster_name)
                    .service(&name)
                    .desired_count(0)
                    .send()
                    .await
                    .context(format!("scaling service {name} to 0"))?;
            }
            if deps
                .ctx
                .apply(format!("delete service {name} from cluster {cluster_name}"))
            {
                deps.ecs
                    .delete_service()
                    .cluster(cluster_name)
                    .service(&name)
                    .send()
                    .await
                    .context(format!("deleting service {name}"))?;
                if !args.no_wait {
                    watch::until_inactive(deps, cluster_name, &name).await?;
                }
            }
            service_arn = Some(arn);
        } else {
            tracing::info!(
                "service {name} does not exist in cluster {cluster_name}: nothing to delete"
            );
        }
    }
    let cluster_arn = if args.delete_cluster {
        cluster::delete_if_empty(deps, cluster_name).await?
    } else {
        cluster::describe(deps, cluster_name)
            .await?
            .and_then(|c| c.cluster_arn().map(str::to_string))
    };
    // The report is taken after the actions so that `changed` counts them.
    let mut report = deps.ctx.report().output(
        ecskit_contract::outputs::CLUSTER_ARN,
        cluster_arn.unwrap_or_default(),
    );
    if let Some(arn) = service_arn {
        report = report.output(ecskit_contract::outputs::SERVICE_ARN, arn);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_items() {
        let i = parse_strategy_item("FARGATE_SPOT:3:1").unwrap();
        assert_eq!(
            (i.capacity_provider(), i.weight(), i.base()),
            ("FARGATE_SPOT", 3, 1)
        );
        assert_eq!(parse_strategy_item("FARGATE").unwrap().weight(), 1);
        assert!(parse_strategy_item("FARGATE:x").is_err());
        assert!(parse_strategy_item(":1").is_err());
    }

    #[test]
    fn emulator_task_definition_references_match_arns() {
        let arn = "arn:aws:ecs:us-west-2:123456789012:task-definition/web:2";
        assert!(same_task_definition("web:2", arn));
        assert!(same_task_definition(arn, arn));
        assert!(!same_task_definition("web:1", arn));
    }

    fn service() -> Service {
        Service::builder()
            .service_name("web")
            .task_definition("arn:aws:ecs:us-west-2:123456789012:task-definition/web:2")
            .desired_count(2)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network::configuration(
                vec!["subnet-1".into()],
                vec!["sg-1".into()],
                true,
            ))
            .deployment_configuration(
                Want {
                    circuit_breaker: Some(true),
                    ..Default::default()
                }
                .deployment_configuration(None),
            )
            .build()
    }

    fn td() -> TaskDef {
        TaskDef {
            arn: "arn:aws:ecs:us-west-2:123456789012:task-definition/web:2".into(),
            awsvpc: true,
            ..Default::default()
        }
    }

    #[test]
    fn same_inputs_plan_nothing() {
        let want = Want {
            task_definition: td().arn,
            circuit_breaker: Some(true),
            ..Default::default()
        };
        let plan = plan_update(&service(), &want, &td()).unwrap();
        assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    }

    #[test]
    fn each_difference_is_listed() {
        let want = Want {
            task_definition: "arn:aws:ecs:us-west-2:123456789012:task-definition/web:3".into(),
            desired_count: Some(3),
            network: NetworkFlags {
                assign_public_ip: Some(false),
                ..Default::default()
            },
            circuit_breaker: Some(false),
            max_percent: Some(150),
            enable_execute_command: Some(true),
            ..Default::default()
        };
        let plan = plan_update(&service(), &want, &td()).unwrap();
        assert_eq!(plan.changes.len(), 6, "{:?}", plan.changes);
        let ec2 = Want {
            launch_type: Some(LaunchType::Ec2),
            ..want
        };
        assert_eq!(
            plan_update(&service(), &ec2, &td())
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn a_circuit_breaker_not_asked_for_keeps_the_services_setting() {
        let off = Service::builder()
            .deployment_configuration(
                Want {
                    circuit_breaker: Some(false),
                    ..Default::default()
                }
                .deployment_configuration(None),
            )
            .task_definition(td().arn)
            .build();
        let not_given = Want {
            task_definition: td().arn,
            ..Default::default()
        };
        let plan = plan_update(&off, &not_given, &td()).unwrap();
        assert!(plan.changes.is_empty(), "{:?}", plan.changes);
        // The update request keeps it off too.
        let sent = not_given.deployment_configuration(off.deployment_configuration());
        let cb = sent.deployment_circuit_breaker().unwrap();
        assert_eq!((cb.enable(), cb.rollback()), (false, false));
        let on = Want {
            circuit_breaker: Some(true),
            ..not_given
        };
        let plan = plan_update(&off, &on, &td()).unwrap();
        assert_eq!(plan.changes, ["circuit breaker with rollback on"]);
        // A new service gets it on.
        let fresh = Want::default().deployment_configuration(None);
        assert!(fresh.deployment_circuit_breaker().unwrap().enable());
    }

    #[test]
    fn client_tokens_are_stable_and_short() {
        let a = client_token(&["c", "s", "td"]);
        assert_eq!(a, client_token(&["c", "s", "td"]));
        assert_ne!(a, client_token(&["c", "s", "td2"]));
        assert_eq!(a.len(), 32);
    }
}
