//! `task-run --local`: run a registered task definition on the local Docker Engine the way
//! ECS would run it, against real AWS or the local stack.
//!
//! The order of work:
//! 1. the task definition is read from ECS and checked ([`plan::check`]): a field a local
//!    engine cannot honour (a Windows platform, a GPU, an EFS volume) is exit 2, and nothing
//!    has started;
//! 2. env files and secrets are resolved ([`resolve`]), with the execution role when the caller
//!    may assume it, as ECS's agent does;
//! 3. the task's network: a bridge network whose gateway is 169.254.170.2, and a pause
//!    container that holds the task's network namespace, as ECS's awsvpc mode does: every
//!    container joins it, so they reach each other on localhost, and the ports they map are
//!    published on 127.0.0.1;
//! 4. the task role's credentials endpoint ([`endpoint`]);
//! 5. images pulled (ECR through its token, in memory), volumes made, containers created and
//!    started in `dependsOn` order ([`plan::judge`]); their output goes to stderr, each line
//!    prefixed with the container's name;
//! 6. the task stops when an essential container stops (or on Ctrl-C): SIGTERM, `stopTimeout`,
//!    SIGKILL; then everything made for it is removed.
//!
//! Every resource is labelled with the run's id and pid: a run that was killed outright leaves
//! them behind, and the next run removes them before it starts.

pub mod cleanup;
pub mod endpoint;
mod engine;
pub mod plan;
pub mod resolve;

use std::collections::HashMap;

use super::{Args, Deps, parse_command};
use crate::Report;
use crate::error::{Error, Result};
use crate::secret::Secret;

use plan::{LocalTask, Next, State};

/// The pause image when `--pause-image` names none: the one Kubernetes uses, multi-arch.
pub const DEFAULT_PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// `--local`: check, plan, run, clean up.
pub async fn run(deps: &Deps, args: &Args) -> Result<Report> {
    let td_ref = args.task_definition.as_deref().unwrap_or_default();
    let def = crate::ecs::taskdef::describe(deps, td_ref).await?;
    let mut task = plan::check(&def).map_err(|problems| {
        Error::inputs(
            problems
                .into_iter()
                .map(|p| format!("task definition {td_ref}: {p}"))
                .collect(),
        )
        .hint("these fields exist only on ECS; run the task there, or register a revision without them")
    })?;
    apply_overrides(&mut task, args)?;
    let order = plan::start_order(&task.containers).unwrap_or_default();
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let task_arn = format!("local/{}/{id}", task.family);
    let ctx = &deps.ctx;
    let p = &deps.progress;
    p.println(format!(
        "local task {task_arn} of {}:{}: {} container(s), started in the order {}",
        task.family,
        task.revision,
        task.containers.len(),
        order.join(", ")
    ));
    if ctx.dry_run {
        for c in &task.containers {
            p.println(format!(
                "would start {} ({}){}",
                c.name,
                c.image,
                if c.essential { ", essential" } else { "" }
            ));
        }
        return Ok(ctx
            .report()
            .output(ecskit_contract::outputs::TASK_ARN, task_arn)
            .note("dry run: nothing was pulled, created or started"));
    }

    // From here on a signal (Ctrl-C, SIGTERM, SIGHUP) is the run's to handle: it stops the
    // task and removes what was made, then exits 130. Before anything exists, it just exits.
    let mut signals = Signals::install()?;
    let prepared = tokio::select! {
        r = prepare(deps, &task, &id) => r?,
        signal = signals.next() => return Err(interrupted(signal)),
    };
    let Prepared {
        engine,
        task_role,
        mut resolved,
    } = prepared;

    // The guard exists before the first resource: whatever happens next (an error, a signal,
    // a panic), what carries this run's label is removed.
    let guard = cleanup::Guard::new(&id, p);
    let mut made = engine::Made::new(&id, &cleanup::Owner::this());
    let outcome = {
        let work = run_task(
            deps,
            &engine,
            &task,
            task_role,
            &mut made,
            &mut resolved,
            args,
        );
        tokio::select! {
            r = work => Ok(r),
            signal = signals.next() => Err(signal),
        }
    };
    let outcome = match outcome {
        Ok(r) => r,
        Err(signal) => {
            // The work stopped where it was; its containers get ECS's stop, unless the user
            // insists: a second signal kills them at once (the clean-up removes them by force).
            p.println(format!(
                "{signal}: stopping the task (SIGTERM, then SIGKILL after each container's stopTimeout); press Ctrl-C again to kill it at once"
            ));
            tokio::select! {
                // Their last lines, once they stopped.
                _ = async {
                    engine::stop_all(&engine, &task, &made).await;
                    made.finish_logs().await;
                } => {}
                again = signals.next() => p.println(format!("{again} again: killing the task's containers now")),
            }
            Err(interrupted(signal))
        }
    };
    tokio::select! {
        _ = guard.clean_up(&engine) => {}
        again = signals.next() => {
            // A third signal: leave now; the next run removes what is left (its owner is dead).
            p.println(format!("{again} during the clean-up: exiting now; the next local run removes what is left"));
            std::process::exit(i32::from(ecskit_contract::exit::INTERRUPTED));
        }
    }
    for v in &made.kept {
        p.println(format!(
            "kept the volume {v}: its dockerVolumeConfiguration scope is shared, so it outlives the task as on ECS"
        ));
    }
    let ended = outcome?;

    let mut report = ctx
        .report()
        .output(ecskit_contract::outputs::TASK_ARN, task_arn.clone());
    let containers: Vec<serde_json::Value> = task
        .containers
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "essential": c.essential,
                "exit_code": ended.codes.get(&c.name).copied().flatten(),
            })
        })
        .collect();
    let failed = task
        .containers
        .iter()
        .filter(|c| c.essential)
        .find_map(|c| match ended.codes.get(&c.name).copied().flatten() {
            Some(0) => None,
            code => Some((c.name.clone(), code)),
        });
    let exit_code = failed.as_ref().map(|(_, c)| c.unwrap_or(-1)).unwrap_or(0);
    report = report.output(ecskit_contract::outputs::EXIT_CODE, exit_code);
    // Each essential container's code, as ECSKIT_EXIT_CODE_<NAME> (upper snake case).
    for c in task.containers.iter().filter(|c| c.essential) {
        if let Some(code) = ended.codes.get(&c.name).copied().flatten() {
            report = report.output(&ecskit_contract::outputs::exit_code_of(&c.name), code);
        }
    }
    report = report.detail("containers", serde_json::Value::Array(containers.clone()));
    if ended.dependency || failed.is_some() {
        let why = match &failed {
            Some((name, Some(code))) => {
                format!("essential container {name} exited with code {code}")
            }
            Some((name, None)) => format!("essential container {name} did not run to an exit code"),
            None => ended.reason.clone(),
        };
        return Err(Error::deployment(format!("local task {task_arn} failed: {why}"))
            .hint(if ended.dependency {
                "a container the others depend on did not reach its condition; its lines above say why"
            } else {
                "the container's own lines above say why"
            })
            .with_details(serde_json::json!({
                "task_arn": task_arn,
                "exit_code": exit_code,
                "containers": containers,
            }))
            .with_outputs_of(&report));
    }
    Ok(report.changed(false))
}

/// What is read and checked before the first resource exists.
struct Prepared {
    engine: crate::docker::Engine,
    task_role: Option<std::sync::Arc<endpoint::TaskRole>>,
    resolved: HashMap<String, Vec<(String, Secret)>>,
}

/// Connects to the engine, clears a dead run's leftovers, assumes the task role, resolves the
/// secrets and env files: every failure here leaves nothing to clean up.
async fn prepare(deps: &Deps, task: &LocalTask, id: &str) -> Result<Prepared> {
    let ctx = &deps.ctx;
    let p = &deps.progress;
    let engine = crate::docker::Engine::connect().await?;
    cleanup::clear_leftovers(&engine, &cleanup::Owner::this(), p).await?;
    let session = format!("ecskit-local-{id}");
    // The task role is assumed before anything is created (the endpoint then serves these
    // credentials): a role the caller may not assume fails the run here, not in the
    // container's first AWS call.
    let task_role = match &task.task_role_arn {
        Some(arn) => {
            let role = endpoint::TaskRole::new(ctx, arn, &session);
            role.answer().await.map_err(|e| {
                e.hint("the local run assumes the task role as you (ECS assumes it as ecs-tasks.amazonaws.com): its trust policy must also allow your principal, or pass --task-role-arn of a role that does")
            })?;
            Some(role)
        }
        None => None,
    };
    // Secrets and env files are resolved before anything is created: a missing one fails the
    // run with nothing to clean up. The execution role is assumed only when there are some.
    let needs_exec = task
        .containers
        .iter()
        .any(|c| !c.secrets.is_empty() || !c.env_files.is_empty());
    let exec_ctx = if needs_exec {
        let (exec_ctx, how) =
            resolve::execution_ctx(ctx, task.execution_role_arn.as_deref(), &session).await;
        p.println(format!("secrets and environment files are read with {how}"));
        exec_ctx
    } else {
        ctx.clone()
    };
    let mut resolved: HashMap<String, Vec<(String, Secret)>> = HashMap::new();
    for c in &task.containers {
        // ECS's order of precedence: env files, then `environment`, then secrets.
        let mut env = resolve::env_files(&exec_ctx, &c.env_files).await?;
        env.extend(
            c.environment
                .iter()
                .map(|(k, v)| (k.clone(), Secret::new(v.clone()))),
        );
        for (name, value_from) in &c.secrets {
            let at = format!("container {}, secret {name}", c.name);
            env.push((
                name.clone(),
                resolve::secret(&exec_ctx, &at, value_from).await?,
            ));
        }
        resolved.insert(c.name.clone(), env);
    }
    Ok(Prepared {
        engine,
        task_role,
        resolved,
    })
}

/// The signals that stop a local run: Ctrl-C, SIGTERM (a CI job cancelled) and SIGHUP (the
/// terminal closed). Once installed, they no longer end the process by themselves.
struct Signals {
    #[cfg(unix)]
    streams: Vec<(&'static str, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn install() -> Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut streams = Vec::new();
            for (name, kind) in [
                ("SIGINT", SignalKind::interrupt()),
                ("SIGTERM", SignalKind::terminate()),
                ("SIGHUP", SignalKind::hangup()),
            ] {
                let s = signal(kind)
                    .map_err(|e| Error::io(format!("installing the {name} handler"), e))?;
                streams.push((name, s));
            }
            Ok(Signals { streams })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The name of the next signal.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            let waits = self.streams.iter_mut().map(|(name, s)| {
                Box::pin(async move {
                    s.recv().await;
                    *name
                })
            });
            futures_util::future::select_all(waits).await.0
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

fn interrupted(signal: &str) -> Error {
    Error::interrupted(signal).hint(
        "the task was stopped and what the run made was removed; exit code 130, as a shell reports Ctrl-C",
    )
}

/// `--container`, `--command`, `--env` and `--task-role-arn`, as ECS's run-task overrides.
fn apply_overrides(task: &mut LocalTask, args: &Args) -> Result<()> {
    if let Some(role) = &args.task_role_arn {
        task.task_role_arn = Some(role.clone());
    }
    if args.command.is_none() && args.env.is_empty() {
        return Ok(());
    }
    let target = match &args.container {
        Some(name) => task
            .containers
            .iter_mut()
            .find(|c| &c.name == name)
            .ok_or_else(|| {
                Error::input(format!(
                    "--container '{name}' is not a container of the task definition"
                ))
            })?,
        None => task
            .containers
            .iter_mut()
            .find(|c| c.essential)
            .ok_or_else(|| Error::input("the task definition has no essential container"))?,
    };
    if let Some(cmd) = &args.command {
        target.command =
            Some(parse_command(cmd).map_err(|e| Error::input(format!("--command {e}")))?);
    }
    for (k, v) in &args.env {
        target.environment.retain(|(name, _)| name != k);
        target.environment.push((k.clone(), v.clone()));
    }
    Ok(())
}

/// How the task ended.
struct Ended {
    reason: String,
    dependency: bool,
    codes: HashMap<String, Option<i64>>,
}

async fn run_task(
    deps: &Deps,
    engine: &crate::docker::Engine,
    task: &LocalTask,
    task_role: Option<std::sync::Arc<endpoint::TaskRole>>,
    made: &mut engine::Made,
    resolved: &mut HashMap<String, Vec<(String, Secret)>>,
    args: &Args,
) -> Result<Ended> {
    let ctx = &deps.ctx;
    let p = &deps.progress;
    engine::create_network(engine, made).await?;
    p.println(format!(
        "created the task network {} ({})",
        made.network.as_deref().unwrap_or_default(),
        endpoint::SUBNET
    ));
    // The endpoints live as long as this function: dropping them stops them.
    let credentials = match task_role {
        Some(role) => {
            let arn = role.role_arn.clone();
            let e = endpoint::serve_credentials(role, args.credentials_uri).await?;
            p.println(format!(
                "task role {arn}: credentials served through {} (sts:AssumeRole, refreshed before they expire)",
                e.how
            ));
            Some(e)
        }
        None => {
            p.println(
                "the task definition names no task role: the containers get no AWS credentials",
            );
            None
        }
    };
    let forwarder = match ctx.endpoint_url().and_then(endpoint::loopback_target) {
        Some(target) => {
            let f = endpoint::forward(target).await?;
            p.println(format!(
                "the AWS endpoint {target} is reached from the task as {}",
                f.url
            ));
            Some(f)
        }
        None => None,
    };
    let region = ctx.region().unwrap_or_default().to_string();
    let mut common: Vec<(String, Secret)> = vec![
        ("AWS_REGION".into(), Secret::new(region.clone())),
        ("AWS_DEFAULT_REGION".into(), Secret::new(region)),
        ("AWS_EXECUTION_ENV".into(), Secret::new("ecskit_local")),
    ];
    if let Some(c) = &credentials {
        common.extend(c.env.iter().cloned());
    }
    if let Some(f) = &forwarder {
        common.push(("AWS_ENDPOINT_URL".into(), Secret::new(f.url.clone())));
    }

    engine::pull_images(deps, engine, task).await?;
    let pause = engine::start_pause(engine, deps, task, made, &args.pause_image).await?;
    engine::create_volumes(engine, task, made).await?;
    for c in &task.containers {
        let mut env = common.clone();
        env.extend(resolved.remove(&c.name).unwrap_or_default());
        engine::create_container(engine, task, c, &pause, env, made).await?;
    }

    let mut states: HashMap<String, State> = task
        .containers
        .iter()
        .map(|c| (c.name.clone(), State::NotStarted))
        .collect();
    let (reason, dependency) = loop {
        match plan::judge(&task.containers, &states) {
            Next::Start(names) => {
                for name in names {
                    engine::start(engine, made, &name, p).await?;
                    states.insert(name, State::Running { healthy: None });
                }
                continue;
            }
            Next::Stop { reason, dependency } => break (reason, dependency),
            Next::Wait => {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        for c in &task.containers {
            if states.get(&c.name) != Some(&State::NotStarted) {
                states.insert(c.name.clone(), engine::state(engine, made, &c.name).await?);
            }
        }
    };
    p.println(format!("stopping the task: {reason}"));
    engine::stop_all(engine, task, made).await;
    let mut codes = HashMap::new();
    for c in &task.containers {
        let code = match engine::state(engine, made, &c.name).await? {
            State::Exited(code) if states.get(&c.name) != Some(&State::NotStarted) => Some(code),
            _ => None,
        };
        codes.insert(c.name.clone(), code);
    }
    // The log streams end with their containers; give them a moment to print the last lines.
    made.finish_logs().await;
    drop(credentials);
    drop(forwarder);
    Ok(Ended {
        reason,
        dependency,
        codes,
    })
}
