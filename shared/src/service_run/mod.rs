//! service-run: create or update the ECS service and watch a deployment until it is stable or
//! has failed. One-off tasks are task-run's ([`crate::task_run`]).
//!
//! The step is split by concern:
//! - [`flags`]: the flags and their check (pure, before any call);
//! - [`deploy`]: the service's desired state, the diff against what exists, create/update/delete;
//! - [`watch`]: following one deployment by id, and why it failed;
//! - [`day2`] and [`rollback`]: `--logs [--follow]` and `--rollback`;
//! - [`service_file`] and [`from_file`]: `--service-file`, a service in the CreateService form
//!   (the comparison and update body, then the deploy that sends the document as written);
//! - [`export`]: `--export`, a live service and its task definition written out for adoption;
//! - [`following`], [`stages`] and [`steer`]: `--wait-until`, the stage-by-stage watch of a
//!   blue/green, canary or linear deployment, `--continue` and `--stop-deployment`;
//! - [`verify`]: `--verify`, the task definition's checks and the network the deploy will use.
//!
//! What task-run uses too (the task definition lookup, the cluster, the network, the IAM retry,
//! the stopped-task report, the log reader and [`Deps`]) is in [`crate::ecs`], re-exported here
//! under the names this module's files use.
//!
//! [`ServiceRun`] builds [`Deps`] from the context and the flags and dispatches; tests build
//! their own [`Deps`] (recorded responses, a virtual clock) and call the pieces.

pub mod day2;
pub mod deploy;
pub mod export;
pub mod flags;
pub mod following;
pub mod from_file;
pub mod rollback;
pub mod service_file;
pub mod stages;
pub mod steer;
pub mod strategy;
pub mod verify;
pub mod watch;

pub use crate::ecs::{Clock, Deps, Timing, cluster, logs, network, retry, taskdef};

use crate::Report;
use crate::aws::Ctx;
use crate::error::{AwsContext, Result};

pub use crate::aws::MANAGED_BY;
pub use flags::{Args, LaunchTypeArg, Verify, parse_duration, validate};
pub use retry::is_role_not_assumable;

crate::step_flags!(Args);

/// The service-run step.
pub struct ServiceRun;

impl crate::step::Step for ServiceRun {
    const STEP: ecskit_contract::Step = ecskit_contract::Step::ServiceRun;
    type Args = Args;
    type Checked = ();

    fn check(args: &Args) -> Result<()> {
        validate(args)
    }

    async fn execute(ctx: &Ctx, args: &Args, _: ()) -> Result<Report> {
        run_with(&deps_for(ctx.clone(), args), args).await
    }
}

/// The dependencies of a run with these flags: the waiting times and log lines they give.
pub fn deps_for(ctx: Ctx, args: &Args) -> Deps {
    let log_lines = args.day2.log_lines;
    Deps::for_run(
        ctx,
        args.poll_interval,
        args.timeout,
        args.no_progress_timeout,
        log_lines,
    )
}

/// The step's pieces with their dependencies given: [`ServiceRun`] calls it with [`Deps`] built
/// from the context and the flags, and the recorded-response tests with an ECS client of their
/// own.
pub async fn run_with(deps: &Deps, args: &Args) -> Result<Report> {
    if args.delete || args.delete_cluster {
        return deploy::delete(deps, args).await;
    }
    if args.watch {
        return watch::attach(deps, args).await;
    }
    if args.day2.logs {
        return day2::show_logs(deps, args).await;
    }
    if args.day2.rollback {
        return day2::rollback(deps, args).await;
    }
    if args.export {
        return export::export(deps, args).await;
    }
    if args.follow.steers() {
        return steer::run(deps, args).await;
    }
    // Checked by `validate` already; read again here, where it is used. A file in the
    // `create-service --cli-input-json` form names the cluster, service and task definition
    // the flags leave out.
    let file = match &args.service_file {
        Some(path) => Some((path, from_file::load(path).map_err(crate::Error::inputs)?)),
        None => None,
    };
    let with_identity;
    let args = match &file {
        Some((_, loaded)) => {
            with_identity = from_file::with_identity(args, &loaded.doc);
            &with_identity
        }
        None => args,
    };
    let td_ref = args
        .task_definition
        .clone()
        .or_else(|| {
            file.as_ref()
                .and_then(|(_, loaded)| loaded.doc.get("taskDefinition"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    // A dry run may name the revision taskdef-register's dry run would register: without a
    // network mode to read, a Fargate (or network-flagged) deploy implies awsvpc.
    let awsvpc_guess = deploy::Want::from_args(args, &Default::default()).fargate()
        || deploy::network_flags(args).any()
        || file
            .as_ref()
            .is_some_and(|(_, loaded)| loaded.doc.contains_key("networkConfiguration"));
    let td = taskdef::resolve_planned(deps, &td_ref, awsvpc_guess).await?;
    following::check_stage_wait(deps, args, file.as_ref().map(|(_, l)| &l.doc)).await?;
    let checks = if args.verify.is_some_and(|v| v != Verify::Off) {
        Some(
            verify::checks(
                deps,
                args,
                file.as_ref().map(|(_, loaded)| &loaded.doc),
                &td,
            )
            .await?,
        )
    } else {
        None
    };
    let report = match file {
        Some((path, loaded)) => from_file::deploy(deps, args, &td, loaded, path).await?,
        None => deploy::deploy(deps, args, &td).await?,
    };
    Ok(match checks {
        Some(c) => c.add_to(report),
        None => report,
    })
}

/// Reads one service; `None` when it is missing or INACTIVE.
pub async fn describe_service(
    deps: &Deps,
    cluster: &str,
    service: &str,
) -> Result<Option<aws_sdk_ecs::types::Service>> {
    let out = deps
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await;
    let out = match out {
        Ok(o) => o,
        // A missing cluster has no services.
        Err(e) if crate::error::sdk_is(&e, &["ClusterNotFoundException"]) => {
            return Ok(None);
        }
        Err(e) => {
            return Err(e).context(format!("describing service {service} in cluster {cluster}"));
        }
    };
    Ok(out
        .services
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.status.as_deref() != Some("INACTIVE")))
}

#[cfg(test)]
mod duration_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_and_a_huge_one_is_refused_not_wrapped() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        let huge = format!("{}h", u64::MAX / 2);
        assert_eq!(
            parse_duration(&huge),
            Err(format!(
                "'{huge}' is too long a duration: use at most a few days, like 72h"
            ))
        );
        assert!(parse_duration("soon").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn validation_names_every_bad_flag() {
        let args = Args::try_parse_from([
            "service-run",
            "--cluster",
            "a b",
            "--service",
            "web",
            "--task-definition",
            "web:x",
            "--desired-count=-1",
            "--subnets",
            "abc",
            "--max-percent",
            "50",
        ])
        .unwrap();
        let err = validate(&args).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.exit_code(), 2);
        for flag in [
            "--cluster",
            "--task-definition",
            "--desired-count",
            "--subnets",
            "--max-percent",
        ] {
            assert!(text.contains(flag), "{flag} missing from: {text}");
        }
    }

    #[test]
    fn one_off_tasks_are_refused_with_a_pointer_to_task_run() {
        for flag in ["--run-task", "--local"] {
            let args = Args::try_parse_from([
                "service-run",
                "--cluster",
                "acme",
                "--service",
                "web",
                "--task-definition",
                "web:3",
                flag,
            ])
            .unwrap();
            let err = validate(&args).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            let text = err.to_string();
            assert!(
                text.contains(flag) && text.contains("use task-run"),
                "{text}"
            );
        }
        // The old help's own example gets the pointer too, not clap's "unexpected argument".
        let old = [
            "service-run",
            "--cluster",
            "acme",
            "--task-definition",
            "migrate",
            "--run-task",
            "--command",
            "bin/migrate --up",
            "--env",
            "MODE=once",
            "--container",
            "app",
            "--task-role-arn",
            "arn:aws:iam::123456789012:role/migrate",
        ];
        let args = Args::try_parse_from(old).unwrap();
        let text = validate(&args).unwrap_err().to_string();
        for flag in ["--run-task", "--command", "--env", "--task-role-arn"] {
            assert!(
                text.contains(&format!("{flag}: service-run runs services only")),
                "{text}"
            );
        }
    }

    #[test]
    fn role_messages() {
        assert!(is_role_not_assumable(
            "ECS was unable to assume the role 'arn:aws:iam::1:role/x' that was provided for this task."
        ));
        assert!(!is_role_not_assumable(
            "CannotPullContainerError: pull access denied"
        ));
    }
}
