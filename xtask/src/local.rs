//! `cargo xtask local up|down|status|env`: the real parts the tests and the demo run against.
//!
//! - moto (the AWS emulator), pinned, in a venv this task owns, with AWS managed policies loaded;
//! - the Distribution registry (Debian `docker-registry`) with htpasswd auth whose user and
//!   password are the ones in the emulator's ECR authorization token, so the ECR-token login of
//!   image-push is a real login;
//! - a Docker Engine: the running one when `DOCKER_HOST` or `/var/run/docker.sock` answers,
//!   otherwise a private `dockerd` this task starts (and stops) itself.
//!
//! Everything listens on 127.0.0.1, on ports picked free at `up` and kept in
//! `.local-stack/state.json`. `down` stops only the pids recorded there.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::util::{self, HttpTarget, Result};

/// The moto release the tests are written against (see ../shared/notes/local-aws.md).
pub const MOTO_VERSION: &str = "5.2.5";
/// The AWS services the steps and their tests use (verify and local runs read SSM parameters
/// and Secrets Manager secrets; config-upload encrypts with KMS; capacity-create makes Auto
/// Scaling groups).
const MOTO_EXTRAS: &str = "ecr,ecs,iam,s3,sts,logs,ec2,kms,ssm,secretsmanager,autoscaling";
/// The region of the local stack; moto's ECR proxy endpoint names it too.
pub const REGION: &str = "us-west-2";

#[derive(clap::Subcommand)]
pub enum Action {
    /// Install what is missing and start the stack (a no-op when it is up).
    Up,
    /// Stop what `up` started, by pid.
    Down,
    /// Show each part and whether it answers.
    Status,
    /// Print the exports that point the binaries at the stack: eval "$(cargo xtask local env)".
    Env,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct State {
    pub moto_pid: u32,
    pub moto_port: u16,
    pub registry_pid: u32,
    pub registry_port: u16,
    /// The engine's address (`unix:///...` or `tcp://...`).
    pub docker_host: String,
    /// Set when `up` started its own dockerd.
    pub dockerd_pid: Option<u32>,
    /// Its private runtime directory (socket, pid file), removed by `down`.
    #[serde(default)]
    pub docker_run_dir: Option<PathBuf>,
}

impl State {
    pub fn moto_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.moto_port)
    }

    /// The environment that points the binaries (and the tests) at the stack.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.moto_url()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", REGION.into()),
            ("DOCKER_HOST", self.docker_host.clone()),
            (
                "ECSKIT_REGISTRY_ENDPOINT",
                format!("127.0.0.1:{}", self.registry_port),
            ),
            ("ECSKIT_LOCAL_MOTO_URL", self.moto_url()),
        ]
    }

    /// Variables that would mix real credentials into a local run.
    pub fn env_removed() -> &'static [&'static str] {
        &["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"]
    }

    fn healthy(&self) -> bool {
        moto_answers(self.moto_port)
            && registry_answers(self.registry_port)
            && docker_answers(&self.docker_host)
    }
}

pub fn run(action: Action) -> Result<()> {
    match action {
        Action::Up => up().map(|_| ()),
        Action::Down => down(),
        Action::Status => status(),
        Action::Env => {
            let state = read_state()?
                .ok_or("the local stack is not up: run `cargo xtask local up` first")?;
            for var in State::env_removed() {
                println!("unset {var}");
            }
            // Quoted with the contract's env codec: the lines are meant for `eval`.
            for (k, v) in state.env() {
                println!("export {k}={}", ecskit_contract::env::quote(&v));
            }
            Ok(())
        }
    }
}

pub fn stack_dir() -> PathBuf {
    std::env::var_os("ECSKIT_LOCAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::workspace_root().join(".local-stack"))
}

fn state_file() -> PathBuf {
    stack_dir().join("state.json")
}

pub fn read_state() -> Result<Option<State>> {
    match fs::read_to_string(state_file()) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", state_file().display())),
        Err(_) => Ok(None),
    }
}

/// Starts the stack unless it is up. Returns the state and whether this call started it.
pub fn up() -> Result<(State, bool)> {
    if let Some(state) = read_state()? {
        if state.healthy() {
            eprintln!(
                "local stack already up (moto :{}, registry :{}, docker {})",
                state.moto_port, state.registry_port, state.docker_host
            );
            return Ok((state, false));
        }
        eprintln!("local stack is partly down: stopping what is left and starting again");
        stop(&state);
    }
    let dir = stack_dir();
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let venv = ensure_venv(util::run)?;
    ensure_debian_packages(util::run)?;

    let mut started: Vec<u32> = Vec::new();
    let result = (|| -> Result<State> {
        let (moto_pid, moto_port) = start_moto(&venv, &dir)?;
        started.push(moto_pid);
        let (user, password) = ecr_credentials(&venv, moto_port)?;
        let (registry_pid, registry_port) = start_registry(&dir, &user, &password)?;
        started.push(registry_pid);
        let (docker_host, dockerd_pid, docker_run_dir) = docker_engine(&dir)?;
        Ok(State {
            moto_pid,
            moto_port,
            registry_pid,
            registry_port,
            docker_host,
            dockerd_pid,
            docker_run_dir,
        })
    })();
    let state = match result {
        Ok(s) => s,
        Err(e) => {
            for pid in started {
                util::stop_pid(pid, Duration::from_secs(5));
            }
            return Err(e);
        }
    };
    let text = serde_json::to_string_pretty(&state).map_err(|e| e.to_string())?;
    fs::write(state_file(), text).map_err(|e| format!("{}: {e}", state_file().display()))?;
    eprintln!(
        "local stack up: moto {} | registry 127.0.0.1:{} | docker {}{}",
        state.moto_url(),
        state.registry_port,
        state.docker_host,
        if state.dockerd_pid.is_some() {
            " (private dockerd)"
        } else {
            ""
        }
    );
    eprintln!("point the binaries at it with: eval \"$(cargo xtask local env)\"");
    Ok((state, true))
}

pub fn down() -> Result<()> {
    match read_state()? {
        Some(state) => {
            stop(&state);
            let _ = fs::remove_file(state_file());
            eprintln!("local stack down");
        }
        None => eprintln!("local stack is not up"),
    }
    Ok(())
}

fn stop(state: &State) {
    if let Some(pid) = state.dockerd_pid {
        util::stop_pid(pid, Duration::from_secs(15));
    }
    if let Some(run) = &state.docker_run_dir {
        let _ = fs::remove_dir_all(run);
    }
    util::stop_pid(state.registry_pid, Duration::from_secs(5));
    util::stop_pid(state.moto_pid, Duration::from_secs(5));
}

fn status() -> Result<()> {
    let Some(state) = read_state()? else {
        println!("local stack: down");
        return Ok(());
    };
    let word = |ok: bool| if ok { "up" } else { "NOT ANSWERING" };
    println!(
        "moto      {}  pid {}  {}",
        state.moto_url(),
        state.moto_pid,
        word(moto_answers(state.moto_port))
    );
    println!(
        "registry  127.0.0.1:{}  pid {}  {}",
        state.registry_port,
        state.registry_pid,
        word(registry_answers(state.registry_port))
    );
    println!(
        "docker    {}  {}  {}",
        state.docker_host,
        state
            .dockerd_pid
            .map(|p| format!("pid {p}"))
            .unwrap_or_else(|| "(not ours)".into()),
        word(docker_answers(&state.docker_host))
    );
    Ok(())
}

/// Installs what the stack runs (moto, the registry, dockerd when no engine answers) without
/// starting it: CI does this in the background while it compiles.
pub fn install(run: util::Run) -> Result<()> {
    ensure_venv(run)?;
    ensure_debian_packages(run)
}

// --- moto ---------------------------------------------------------------------------------

/// Where moto and the aws CLI are installed.
pub fn moto_venv() -> PathBuf {
    // The extras are part of the name: a venv made with fewer services is not reused.
    util::cache_dir().join(format!(
        "venv-moto-{MOTO_VERSION}-{}",
        MOTO_EXTRAS.replace(',', "-")
    ))
}

/// The venv lives in the user's cache, keyed by the moto version, so clones and worktrees
/// share one install; a marker file is written only after pip succeeded.
fn ensure_venv(run: util::Run) -> Result<PathBuf> {
    let venv = moto_venv();
    let marker = venv.join(".ecskit-installed");
    if marker.exists() {
        return Ok(venv);
    }
    let python = util::which("python3").ok_or(
        "python3 is needed for the AWS emulator (moto): install Python 3 (apt-get install python3 python3-venv)",
    )?;
    eprintln!("installing moto {MOTO_VERSION} into {}", venv.display());
    run(Command::new(&python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("moto[{MOTO_EXTRAS}]=={MOTO_VERSION}"))
        // flask is what moto_server serves with; awscli is the reference client of the
        // benchmark (the seeds' way: one `aws` call per step).
        .args(["flask", "flask-cors", "awscli"]))?;
    fs::write(&marker, MOTO_VERSION).map_err(|e| e.to_string())?;
    Ok(venv)
}

pub fn start_moto(venv: &Path, dir: &Path) -> Result<(u32, u16)> {
    let port = util::free_port()?;
    let log = fs::File::create(dir.join("moto.log")).map_err(|e| e.to_string())?;
    let child = Command::new(venv.join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        // AWS managed policies (AmazonEC2ContainerServiceforEC2Role ...) exist only with this.
        .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        // Services with desiredCount 1 report one running task, so a deploy can become stable.
        .env("MOTO_ECS_SERVICE_RUNNING", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not start moto_server: {e}"))?;
    let pid = child.id();
    if !util::wait_for(Duration::from_secs(60), || moto_answers(port)) {
        util::stop_pid(pid, Duration::from_secs(5));
        return Err(format!(
            "moto did not answer on 127.0.0.1:{port}; see {}",
            dir.join("moto.log").display()
        ));
    }
    Ok((pid, port))
}

fn moto_answers(port: u16) -> bool {
    matches!(
        util::http_get(&HttpTarget::Tcp(format!("127.0.0.1:{port}")), "/moto-api/"),
        Some((200, _))
    )
}

/// The user and password inside the emulator's ECR authorization token, asked of the emulator
/// itself (with boto3 from the venv) rather than written down here.
fn ecr_credentials(venv: &Path, port: u16) -> Result<(String, String)> {
    let script = r#"
import base64, boto3, sys
ecr = boto3.client("ecr", endpoint_url=sys.argv[1], region_name=sys.argv[2],
                   aws_access_key_id="test", aws_secret_access_key="test")
token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
print(base64.b64decode(token).decode())
"#;
    let out = util::output(
        Command::new(venv.join("bin/python"))
            .args(["-c", script])
            .arg(format!("http://127.0.0.1:{port}"))
            .arg(REGION),
    )?;
    let (user, password) = out
        .trim()
        .split_once(':')
        .ok_or("the emulator's ECR token is not USER:PASSWORD")?;
    Ok((user.to_string(), password.to_string()))
}

// --- registry -----------------------------------------------------------------------------

fn start_registry(dir: &Path, user: &str, password: &str) -> Result<(u32, u16)> {
    let reg = dir.join("registry");
    fs::create_dir_all(reg.join("data")).map_err(|e| e.to_string())?;
    let htpasswd = util::output(Command::new("htpasswd").args(["-Bbn", user, password]))?;
    fs::write(reg.join("htpasswd"), htpasswd).map_err(|e| e.to_string())?;
    let port = util::free_port()?;
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: ecskit-local\n    path: {htpasswd}\n",
        data = reg.join("data").display(),
        htpasswd = reg.join("htpasswd").display(),
    );
    fs::write(reg.join("config.yml"), config).map_err(|e| e.to_string())?;
    let log = fs::File::create(dir.join("registry.log")).map_err(|e| e.to_string())?;
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(reg.join("config.yml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not start docker-registry: {e}"))?;
    let pid = child.id();
    if !util::wait_for(Duration::from_secs(20), || registry_answers(port)) {
        util::stop_pid(pid, Duration::from_secs(5));
        return Err(format!(
            "the registry did not answer on 127.0.0.1:{port}; see {}",
            dir.join("registry.log").display()
        ));
    }
    Ok((pid, port))
}

/// `/v2/` answers 401 without credentials when auth is on: that is the healthy answer.
fn registry_answers(port: u16) -> bool {
    matches!(
        util::http_get(&HttpTarget::Tcp(format!("127.0.0.1:{port}")), "/v2/"),
        Some((401, _))
    )
}

// --- docker -------------------------------------------------------------------------------

fn docker_target(host: &str) -> Option<HttpTarget> {
    if let Some(path) = host.strip_prefix("unix://") {
        Some(HttpTarget::Unix(PathBuf::from(path)))
    } else {
        host.strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .map(|a| HttpTarget::Tcp(a.trim_end_matches('/').to_string()))
    }
}

fn docker_answers(host: &str) -> bool {
    docker_target(host)
        .and_then(|t| util::http_get(&t, "/_ping"))
        .is_some_and(|(code, _)| code == 200)
}

/// The engine to use: the user's (DOCKER_HOST, then the default socket) when it answers,
/// otherwise a private dockerd.
fn docker_engine(dir: &Path) -> Result<(String, Option<u32>, Option<PathBuf>)> {
    if let Ok(host) = std::env::var("DOCKER_HOST")
        && !host.is_empty()
        && docker_answers(&host)
    {
        return Ok((host, None, None));
    }
    let default = "unix:///var/run/docker.sock";
    if docker_answers(default) {
        return Ok((default.to_string(), None, None));
    }
    // Unix socket paths are limited to 108 bytes, and containerd's sockets live below the exec
    // root: keep the runtime directory short, in /tmp. It is made private (0700, a random name,
    // created by us), so no other user can have put a socket or pid file there first; `down`
    // removes it.
    let run = tempfile::Builder::new()
        .prefix("ecskit-dk-")
        .tempdir_in("/tmp")
        .map_err(|e| format!("a private directory in /tmp for dockerd: {e}"))?
        .keep();
    let socket = run.join("docker.sock");
    let host = format!("unix://{}", socket.display());
    let data = dir.join("docker-data");
    fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let log = fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
    let child = Command::new("dockerd")
        .arg("--host")
        .arg(&host)
        .args([
            "--storage-driver",
            "vfs",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
        ])
        .arg("--data-root")
        .arg(&data)
        .arg("--exec-root")
        .arg(run.join("exec"))
        .arg("--pidfile")
        .arg(run.join("docker.pid"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not start dockerd: {e}"))?;
    let pid = child.id();
    if !util::wait_for(Duration::from_secs(30), || docker_answers(&host)) {
        util::stop_pid(pid, Duration::from_secs(10));
        return Err(format!(
            "dockerd did not answer on {host}; see {}",
            dir.join("dockerd.log").display()
        ));
    }
    Ok((host, Some(pid), Some(run)))
}

// --- installing ---------------------------------------------------------------------------

/// docker-registry, htpasswd and busybox always; dockerd only when no engine answers.
fn ensure_debian_packages(run: util::Run) -> Result<()> {
    let mut missing = Vec::new();
    if util::which("docker-registry").is_none() {
        missing.push("docker-registry");
    }
    if util::which("htpasswd").is_none() {
        missing.push("apache2-utils");
    }
    // A static busybox: the from-scratch images the local-run tests start hold it.
    if !Path::new("/bin/busybox").exists() {
        missing.push("busybox-static");
    }
    let engine_running = std::env::var("DOCKER_HOST")
        .ok()
        .is_some_and(|h| !h.is_empty() && docker_answers(&h))
        || docker_answers("unix:///var/run/docker.sock");
    if !engine_running && util::which("dockerd").is_none() {
        missing.push("docker.io");
    }
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !util::is_root() {
        return Err(format!(
            "the local stack needs {}: run `sudo apt-get update && sudo {command}`",
            missing.join(", ")
        ));
    }
    eprintln!("installing {}", missing.join(", "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
