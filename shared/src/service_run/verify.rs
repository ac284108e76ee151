//! `--verify`: the checks that run before service-run's first mutating call.
//!
//! `--verify` checks what the task definition names (roles, images, secrets, env files, log
//! groups, permissions: [`crate::verify`]) and the network the deploy will use;
//! `--verify=network` checks the network only. The chain (`cargo xtask deploy`, `cargo xtask
//! verify`) asks for the network only: its taskdef-register `--verify` has checked the task
//! definition, and a no-change re-deploy should not read it all twice.
//!
//! The network checked is the one the deploy would send, found the way the deploy finds it:
//! the flags laid over the service file's `networkConfiguration`, else over the live service's,
//! else, for a new service, the default VPC's subnets and `default` security group. A stack
//! without subnets of its own is checked too: its default VPC is where the tasks would run.
//!
//! The rollout's CloudWatch alarms (`--alarm`, the file's `deploymentConfiguration.alarms`) are
//! checked at both levels: an alarm that does not exist never fires, so the deployment it
//! should guard would never be rolled back by it. A missing one is a failure.

use aws_sdk_ecs::types::NetworkConfiguration;
use serde_json::{Map, Value};

use super::taskdef::{self, TaskDef};
use super::{Args, Deps, deploy, describe_service, from_file, network};
use crate::Result;
use crate::verify::{Check, Checks, Network, TaskSubject};

/// The checks `--verify` asks for; a failed one is exit 2 (nothing has been changed yet).
pub async fn checks(
    deps: &Deps,
    args: &Args,
    file: Option<&Map<String, Value>>,
    td: &TaskDef,
) -> Result<Checks> {
    let mut checks = Vec::new();
    if args.verifies_task() {
        if td.pending {
            checks.push(Check::warning(
                "task-definition",
                &td.arn,
                "not registered yet (a dry run): taskdef-register --verify checks what it names",
            ));
        } else {
            let def = taskdef::describe(deps, &td.arn).await?;
            let task = crate::verify::verify(&deps.ctx, &TaskSubject::from_ecs(&def), None).await?;
            checks.extend(task.0);
        }
    }
    if args.verifies_network() && td.awsvpc {
        match network_to_check(deps, args, file).await? {
            Ok(net) => checks.extend(crate::verify::network::check(&deps.ctx, &net).await),
            Err(failed) => checks.push(failed),
        }
    }
    if args.verifies_network() {
        checks.extend(alarms(deps, &alarm_names(args, file)).await?);
    }
    let checks = Checks(checks);
    checks.conclude()?;
    Ok(checks)
}

/// The awsvpc settings the deploy would use, or the failure that says why there are none (no
/// subnets anywhere and no default VPC).
async fn network_to_check(
    deps: &Deps,
    args: &Args,
    file: Option<&Map<String, Value>>,
) -> Result<std::result::Result<Network, Check>> {
    let flags = deploy::network_flags(args);
    let (written, fargate, service) = match file {
        Some(doc) => {
            let mut doc = doc.clone();
            from_file::overlay(&mut doc, args, "");
            (
                from_file::network_of(&doc),
                from_file::fargate(&doc),
                doc.get("serviceName")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
        }
        None => (
            network::overlay(None, &flags).filter(|_| !flags.subnets.is_empty()),
            deploy::Want::from_args(args, &TaskDef::default()).fargate(),
            args.service.clone(),
        ),
    };
    let conf = match written {
        Some(c) => c,
        None => {
            let live = match &service {
                Some(name) => describe_service(deps, &args.cluster, name)
                    .await?
                    .and_then(|s| s.network_configuration)
                    .and_then(|n| network::overlay(Some(&n), &flags)),
                _ => None,
            };
            match live {
                Some(c) => c,
                None => match network::resolve(deps, &flags, fargate).await {
                    Ok(c) => c,
                    Err(e) if e.exit_code() == ecskit_contract::exit::INPUT => {
                        return Ok(Err(Check::failure("network", "default VPC", e.to_string())));
                    }
                    Err(e) => return Err(e),
                },
            }
        }
    };
    Ok(Ok(subject(&conf, fargate)))
}

fn subject(conf: &NetworkConfiguration, fargate: bool) -> Network {
    let vpc = conf.awsvpc_configuration();
    Network {
        subnets: vpc.map(|v| v.subnets().to_vec()).unwrap_or_default(),
        security_groups: vpc
            .map(|v| v.security_groups().to_vec())
            .unwrap_or_default(),
        assign_public_ip: vpc.and_then(|v| v.assign_public_ip())
            == Some(&aws_sdk_ecs::types::AssignPublicIp::Enabled),
        fargate,
    }
}

/// The alarms the deploy would send: the flags', laid over the service file's.
fn alarm_names(args: &Args, file: Option<&Map<String, Value>>) -> Vec<String> {
    let mut doc = file.cloned().unwrap_or_default();
    super::strategy::overlay(&mut doc, &super::strategy::rollout(&args.rollout).0);
    doc.get("deploymentConfiguration")
        .and_then(|d| d.get("alarms"))
        .and_then(|a| a.get("alarmNames"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

/// One line per alarm: it exists (CloudWatch DescribeAlarms), or the failure that says it
/// does not.
async fn alarms(deps: &Deps, names: &[String]) -> Result<Vec<Check>> {
    use crate::error::AwsContext;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let cw = deps.ctx.cloudwatch();
    let mut found = std::collections::HashSet::new();
    // DescribeAlarms takes up to 100 names a call.
    for batch in names.chunks(100) {
        let out = cw
            .describe_alarms()
            .set_alarm_names(Some(batch.to_vec()))
            .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
            .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
            .send()
            .await
            .context("describing the deployment's CloudWatch alarms")?;
        let metric = out.metric_alarms().iter().filter_map(|a| a.alarm_name());
        let composite = out.composite_alarms().iter().filter_map(|a| a.alarm_name());
        found.extend(metric.chain(composite).map(str::to_string));
    }
    Ok(names
        .iter()
        .map(|n| {
            if found.contains(n) {
                Check::ok("alarm", n, "exists")
            } else {
                Check::failure(
                    "alarm",
                    n,
                    "no CloudWatch alarm of this name in this region: it would never fire, and never roll the deployment back (create it, or fix the name)",
                )
            }
        })
        .collect())
}
