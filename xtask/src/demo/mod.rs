//! `cargo xtask demo`: the README's first command.
//!
//! It brings the local stack up (moto, a registry, a Docker Engine), builds an image from
//! scratch that holds a real program (`examples/demo-app`, see [`run_local`]: nothing comes from
//! the internet), deploys `examples/ecskit.toml` to the stack (a Fargate service whose task role
//! reads its config files from its own S3 prefix), then runs the deployed task definition on the
//! local engine with the emulator's IAM enforcement on, and shows the container's own lines.
//! The image is built only when it is missing, so a second run finds every step unchanged.

pub mod run_local;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use crate::chain::{self, Format, Runner, Summary};
use crate::local::{self, State};
use crate::util::{self, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The stack file to deploy (default: examples/ecskit.toml of this workspace).
    #[arg(long)]
    pub stack: Option<PathBuf>,
    /// How to print the summary on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// The environment of a step run against the local stack.
pub fn local_runner(runner: &mut Runner, state: &State) {
    runner.base_env = state
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    runner.remove_env = State::env_removed().iter().map(|s| s.to_string()).collect();
}

/// `docker` against the stack's engine.
pub fn docker(state: &State) -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", &state.docker_host);
    c
}

pub fn image_exists(state: &State, image: &str) -> bool {
    docker(state)
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds `image` from scratch: a tarball holding one small file with `content`, imported with
/// `docker import`. The same content gives the same layer; the import time still makes a new
/// image id, so callers build only when they mean to change the image.
pub fn build_image(state: &State, image: &str, content: &str) -> Result<()> {
    let dir = run_local::tempfile_dir("ecskit-image")?;
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc/app")).map_err(|e| e.to_string())?;
    std::fs::write(root.join("etc/app/version"), content).map_err(|e| e.to_string())?;
    std::fs::write(
        root.join("README"),
        "A from-scratch image made by `cargo xtask bench`: it holds no program.\n",
    )
    .map_err(|e| e.to_string())?;
    run_local::import(state, &dir, &root, image, &["CMD [\"/app\"]"])
}

pub fn main(args: Args) -> ExitCode {
    match demo(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("xtask demo: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn demo(args: &Args) -> Result<u8> {
    let path = args
        .stack
        .clone()
        .unwrap_or_else(|| util::workspace_root().join("examples/ecskit.toml"));
    let stacks = chain::load_stack(&path).map_err(|(e, _)| e)?;
    if stacks.is_multi() {
        return Err(format!(
            "{}: the demo runs one service's task; give a stack file without [services]",
            path.display()
        ));
    }
    let stack = stacks.services[0].clone();
    let (state, _) = local::up()?;
    if stack.region != local::REGION {
        return Err(format!(
            "{}: app.region is {}, the local stack's region is {}",
            path.display(),
            stack.region,
            local::REGION
        ));
    }
    // The steps and the demo's program in one build.
    let mut runner = Runner::new_with(
        &chain::Step::ALL,
        &[run_local::APP_PACKAGE],
        &stack.region,
        false,
    )?;
    if image_exists(&state, &stack.image_source) {
        eprintln!(
            "image {} is there (kept, so the deploy below is a no-op when nothing else changed)",
            stack.image_source
        );
    } else {
        eprintln!(
            "building {} from scratch around the demo program",
            stack.image_source
        );
        run_local::build_app_image(&state, &stack.image_source, "1\n")?;
    }
    run_local::build_pause_image(&state)?;
    local_runner(&mut runner, &state);
    let units = chain::plan::deploy(&stacks, &Default::default());
    let start = Instant::now();
    let results = chain::run_chain(&runner, &stacks, &units, &[], chain::DEFAULT_JOBS);
    let time = start.elapsed();
    let _ = std::fs::remove_dir_all(&runner.log_dir);
    let saved = chain::outputs_file(&stack);
    let outputs = results
        .iter()
        .flatten()
        .filter(|r| r.code == 0)
        .flat_map(|r| r.outputs.iter().cloned())
        .collect();
    if let Err(e) = chain::save_outputs(&saved, &outputs) {
        eprintln!("xtask demo: warning: could not save the outputs: {e}");
    }
    let summary = Summary {
        title: "demo",
        stacks: &stacks,
        units: &units,
        results: &results,
        time,
        dry_run: false,
    };
    print!("{}", summary.render(args.output));
    let code = chain::exit_code(&results);
    if code != 0 {
        return Ok(code);
    }
    let task_definition = results
        .iter()
        .flatten()
        .flat_map(|r| r.outputs.iter())
        .find(|(k, _)| k == ecskit_contract::outputs::env::TASK_DEFINITION_ARN)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| stack.family.clone());
    eprintln!(
        "\nrunning {task_definition} on the local Docker Engine with IAM enforcement on (task-run --local):"
    );
    let lines = run_local::run_task(
        &state,
        &runner.bin_dir,
        &task_definition,
        &format!("{}-task", stack.app),
    )?;
    if args.output == Format::Text {
        print!("{}", observed(&lines));
        print!("{}", guide(&stack, &state, &saved, &runner.bin_dir));
    }
    let served = lines.iter().any(|l| l.contains("[app] serving on port"));
    Ok(if served { 0 } else { 3 })
}

/// The container's own lines of the local run: the seeds' story, observed.
fn observed(lines: &[String]) -> String {
    let app: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("[app] "))
        .collect();
    let mut out = String::from(
        "\nThe deployed task, run on the local Docker Engine (the container's own lines):\n",
    );
    for l in &app {
        out.push_str(&format!("  {l}\n"));
    }
    if app.is_empty() {
        out.push_str("  (the container printed nothing: see the lines above)\n");
    }
    out
}

/// How to look at what the demo created, with the binaries and with the aws CLI.
fn guide(stack: &crate::stack::Stack, state: &State, saved: &Path, bin: &Path) -> String {
    let rel = |p: &Path| {
        p.strip_prefix(util::workspace_root())
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let bin = rel(bin);
    format!(
        r#"
What the demo created, on the local stack ({moto}):
  an ECR repository {repo} holding {image}, pushed to the registry at {registry}
  roles {app}-task (reads s3://{bucket}/{prefix}/ only) and {app}-execution
  bucket {bucket} (private, encrypted) with the files of examples/config under {prefix}/
  task definition family {family}, and service {service} on cluster {cluster}

Look at it with the binaries (the step outputs are saved in {saved}):
  eval "$(cargo xtask local env)"
  set -a; . {saved}; set +a
  {bin}/service-run --cluster {cluster} --service {service} --watch
  {bin}/taskdef-register --file {taskdef} --diff
  {bin}/config-upload --bucket {bucket} --prefix {prefix} --dry-run examples/config
  {bin}/role-create --name {app} --bucket {bucket} --prefix {prefix} --dry-run -v

Or with the aws CLI the stack installed:
  aws --endpoint-url {moto} ecs describe-services --cluster {cluster} --services {service}
  aws --endpoint-url {moto} s3 ls s3://{bucket}/{prefix}/

Run `cargo xtask demo` again: every step reports changed: no and makes no mutating call.
Remove it all (with the local env above): cargo xtask destroy --stack {stack_file}
"#,
        moto = state.moto_url(),
        registry = format_args!("127.0.0.1:{}", state.registry_port),
        repo = stack.repository,
        image = stack.image_source,
        app = stack.app,
        bucket = stack.bucket,
        prefix = stack.prefix,
        family = stack.family,
        service = stack.service,
        cluster = stack.cluster,
        saved = rel(saved),
        taskdef = rel(&stack.taskdef_file),
        stack_file = rel(&stack.path),
    )
}
