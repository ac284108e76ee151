//! `cargo xtask init`: adopt a service that was set up by hand (in the console, say).
//!
//! The live service and its task definition are read by `service-run --export` (the xtask
//! links no AWS SDK, so the reading is the binary's: one read-only run, counted like any
//! other); this module writes what it answers as the three files a deploy needs:
//!
//! - `service.json`: the service in CreateService's form (load balancers, registries, capacity
//!   provider strategy, deployment configuration and the rest carried over);
//! - `taskdef.json`: the task definition in the register form (read-only fields dropped,
//!   unknown fields kept), its image literal, or `${ECSKIT_IMAGE_URI}` with --image-from-step;
//! - `ecskit.toml`: the stack file naming the existing roles (role-create references a role it
//!   did not create and changes nothing on it), the config bucket and prefix when the task
//!   role's policies name exactly one, and the service file.
//!
//! What could not be carried over is said on stdout. A deploy right after makes no change to
//! the task definition or the service.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use serde_json::Value;

use crate::chain::{Step, build, target_dir};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The cluster of the live service.
    #[arg(long)]
    pub cluster: String,
    /// The live service.
    #[arg(long)]
    pub service: String,
    /// Where to write ecskit.toml, service.json and taskdef.json.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Put `${ECSKIT_IMAGE_URI}` in the task definition instead of the live image: the image
    /// comes from image-push (the stack's image.source, a local image you build).
    #[arg(long)]
    pub image_from_step: bool,
    /// AWS region (default: AWS_REGION or the profile's).
    #[arg(long)]
    pub region: Option<String>,
    /// Overwrite files that exist already.
    #[arg(long)]
    pub force: bool,
}

/// Exit codes: 0 written, 2 bad input (a missing service, files in the way), 1 AWS failure.
pub fn main(args: Args) -> ExitCode {
    match init(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err((msg, code)) => {
            eprintln!("xtask init: error: {msg}");
            ExitCode::from(code)
        }
    }
}

const FILES: [&str; 3] = ["ecskit.toml", "service.json", "taskdef.json"];

fn init(args: &Args) -> Result<String, (String, u8)> {
    let in_the_way: Vec<String> = FILES
        .iter()
        .map(|f| args.dir.join(f))
        // symlink_metadata: a link, dangling or not, is in the way too (never followed).
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| p.display().to_string())
        .collect();
    if !in_the_way.is_empty() && !args.force {
        return Err((
            format!(
                "{} exist(s) already: pass --force to overwrite, or another --dir",
                in_the_way.join(", ")
            ),
            2,
        ));
    }
    let exported = export(args)?;
    let adopted = Adopted::from_export(&exported, args)?;
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| (format!("creating {}: {e}", args.dir.display()), 1))?;
    for (name, text) in [
        ("ecskit.toml", adopted.stack.clone()),
        ("service.json", pretty(&adopted.service)),
        ("taskdef.json", pretty(&adopted.task_definition)),
    ] {
        write_new(&args.dir.join(name), &text, args.force)?;
    }
    Ok(adopted.summary(&args.dir))
}

/// Writes a whole file or nothing: the text goes to a temporary file beside it, which then
/// takes the name. Without `--force` the name is taken only if nothing has it (a file made
/// meanwhile, or a link, dangling or not, is never replaced or followed: exit 2); with it,
/// whatever has the name is replaced (a link itself, not the file it points to).
fn write_new(path: &Path, text: &str, force: bool) -> Result<(), (String, u8)> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| (format!("writing {}: {e}", path.display()), 1))?;
    // The temporary file is private (0600); these files are meant to be committed and read.
    use std::os::unix::fs::PermissionsExt;
    tmp.write_all(text.as_bytes())
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| (format!("writing {}: {e}", path.display()), 1))?;
    let placed = if force {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    placed.map_err(|e| match e.error.kind() {
        std::io::ErrorKind::AlreadyExists => (
            format!(
                "{} appeared while init ran: it was left as it is; pass --force to overwrite, or another --dir",
                path.display()
            ),
            2,
        ),
        _ => (format!("writing {}: {}", path.display(), e.error), 1),
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

/// `service-run --cluster C --service S --export --output json`: its stderr passed through,
/// its stdout the JSON it answered.
fn export(args: &Args) -> Result<Value, (String, u8)> {
    let bin_dir = match std::env::var_os("ECSKIT_BIN_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            build(&[Step::ServiceRun], &[], false).map_err(|e| (e, 1))?;
            target_dir().join("debug")
        }
    };
    let mut cmd = Command::new(bin_dir.join(Step::ServiceRun.binary()));
    cmd.args(["--cluster", &args.cluster, "--service", &args.service])
        .args(["--export", "--output", "json"])
        .env_remove("ECSKIT_OUTPUT")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(r) = &args.region {
        cmd.args(["--region", r]);
    }
    let out = cmd.output().map_err(|e| {
        (
            format!("running {}: {e}", bin_dir.join("service-run").display()),
            1,
        )
    })?;
    if !out.status.success() {
        let code = out
            .status
            .code()
            .map(|c| c.clamp(1, 255) as u8)
            .unwrap_or(1);
        return Err((
            "service-run --export failed (its error is above)".into(),
            code,
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| (format!("service-run --export printed no JSON: {e}"), 1))
}

/// What init writes, computed from the export (no I/O: tested alone).
#[derive(Debug)]
pub struct Adopted {
    pub stack: String,
    pub service: Value,
    pub task_definition: Value,
    pub not_carried: Vec<String>,
}

impl Adopted {
    pub fn from_export(e: &Value, args: &Args) -> Result<Adopted, (String, u8)> {
        let mut task_definition = e["task_definition"].clone();
        let family = task_definition["family"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut not_carried: Vec<String> = e["not_carried"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let containers = task_definition["containerDefinitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if containers.is_empty() {
            return Err((
                format!(
                    "the live task definition {family} has no containerDefinitions: there is nothing to adopt"
                ),
                1,
            ));
        }
        // The image image-push would push: the first essential container's (ECS's default:
        // essential unless it says otherwise).
        let main = containers
            .iter()
            .position(|c| c["essential"].as_bool() != Some(false))
            .unwrap_or(0);
        let image = containers
            .get(main)
            .and_then(|c| c["image"].as_str())
            .unwrap_or_default()
            .to_string();
        if args.image_from_step {
            task_definition["containerDefinitions"][main]["image"] =
                Value::String("${ECSKIT_IMAGE_URI}".into());
            if containers.len() > 1 {
                not_carried.push(format!(
                    "--image-from-step: only container {} takes the pushed image; the other containers keep their literal images",
                    containers[main]["name"].as_str().unwrap_or("?")
                ));
            }
        }
        let region = e["region"]
            .as_str()
            .map(str::to_string)
            .or_else(|| args.region.clone())
            .ok_or((
                "no region in service-run's answer: pass --region".to_string(),
                2,
            ))?;
        let app = &args.service;
        let (bucket, prefix) = match (
            e["config"]["bucket"].as_str(),
            e["config"]["prefix"].as_str(),
        ) {
            (Some(b), p) => (b.to_string(), p.map(str::to_string)),
            (None, _) => {
                not_carried.push(format!(
                    "roles.bucket: no config bucket found, so ecskit.toml names {app}-config; role-create gives it to the task role only if it creates that role"
                ));
                (format!("{app}-config"), None)
            }
        };
        let quoted = |s: &str| Value::String(s.to_string()).to_string();
        let mut stack = format!(
            "# Written by `cargo xtask init --cluster {cluster} --service {app}` from the live service.\n\
             # service.json and taskdef.json are what ECS has now; edit them, then `cargo xtask deploy`.\n\n\
             [app]\nname = {name}\nregion = {region}\n\n",
            cluster = args.cluster,
            name = quoted(app),
            region = quoted(&region),
        );
        if args.image_from_step {
            stack.push_str(&format!(
                "[image]\n# The local image image-push pushes into the repository below (taskdef.json takes its URI).\nsource = {}\n",
                quoted(&image)
            ));
            if let Some(repo) = ecr_repository(&image) {
                stack.push_str(&format!("repository = {}\n", quoted(&repo)));
            }
        } else {
            // No [image]: nothing is pushed, and the deploy right after changes nothing.
            stack.push_str(&format!(
                "# No [image]: taskdef.json names the live image ({}) and deploy pushes nothing.\n\
                 # To build and push your own, add [image] source = \"LOCAL-IMAGE\" and put\n\
                 # ${{ECSKIT_IMAGE_URI}} in taskdef.json (or run init with --image-from-step).\n",
                image
            ));
        }
        stack.push_str(&format!("\n[roles]\nbucket = {}\n", quoted(&bucket)));
        if let Some(p) = &prefix {
            stack.push_str(&format!("prefix = {}\n", quoted(p)));
        }
        for (key, name) in [
            ("task_role_name", &e["task_role_name"]),
            ("execution_role_name", &e["execution_role_name"]),
        ] {
            match name.as_str() {
                Some(n) => stack.push_str(&format!(
                    "{key} = {}   # existing: role-create references it and changes nothing on it\n",
                    quoted(n)
                )),
                None => not_carried.push(format!(
                    "roles.{key}: the task definition names no such role; role-create will create one for {app}"
                )),
            }
        }
        let plaintext: Vec<(String, String, String)> = e["plaintext_secrets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let field = |k: &str| p[k].as_str().unwrap_or_default().to_string();
                (field("container"), field("name"), field("variable"))
            })
            .collect();
        let allow = if plaintext.is_empty() {
            String::new()
        } else {
            let mut lines = String::from(
                "# The live task definition has credentials as plaintext environment values.\n\
                 # taskdef.json holds ${VARIABLE} placeholders, never the values: set each variable\n\
                 # before a deploy (the live value: the console's task definition shows it):\n",
            );
            for (container, name, variable) in &plaintext {
                lines.push_str(&format!(
                    "#   {variable}: {name} of container {container}\n"
                ));
            }
            lines.push_str(
                "# Better: move each into the container's `secrets` (a Secrets Manager or SSM\n\
                 # parameter ARN as valueFrom) and remove this line.\n\
                 allow_plaintext_secrets = true\n",
            );
            let names: Vec<&str> = plaintext.iter().map(|(_, _, v)| v.as_str()).collect();
            not_carried.push(format!(
                "plaintext credentials: taskdef.json names ${{{}}}: set them to the live values before deploying, or move them to secrets (ecskit.toml says how)",
                names.join("}, ${")
            ));
            lines
        };
        stack.push_str(&format!(
            "\n[task_definition]\nfile = \"taskdef.json\"\nfamily = {}\n{allow}\n[service]\ncluster = {}\nname = {}\nfile = \"service.json\"   # desired count, launch type or capacity providers, network ...\n",
            quoted(&family),
            quoted(&args.cluster),
            quoted(app),
        ));
        Ok(Adopted {
            stack,
            service: e["service"].clone(),
            task_definition,
            not_carried,
        })
    }

    fn summary(&self, dir: &Path) -> String {
        let mut out = String::new();
        for f in FILES {
            out.push_str(&format!("wrote {}\n", dir.join(f).display()));
        }
        if self.not_carried.is_empty() {
            out.push_str("not carried over: nothing\n");
        } else {
            out.push_str("not carried over:\n");
            for n in &self.not_carried {
                out.push_str(&format!("  - {n}\n"));
            }
        }
        let stack = dir.join("ecskit.toml");
        out.push_str(&format!(
            "next:\n  cargo xtask verify --stack {s}\n  cargo xtask deploy --stack {s}\n",
            s = stack.display(),
        ));
        out
    }
}

/// `REPOSITORY` of an ECR image URI (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY[:TAG|@DIGEST]`).
fn ecr_repository(image: &str) -> Option<String> {
    let (host, rest) = image.split_once('/')?;
    if !host.contains(".dkr.ecr.") {
        return None;
    }
    let repo = rest.split('@').next()?;
    let repo = match repo.rsplit_once(':') {
        Some((r, _)) => r,
        None => repo,
    };
    Some(repo.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(image_from_step: bool) -> Args {
        Args {
            cluster: "console".into(),
            service: "snaplex".into(),
            dir: PathBuf::from("."),
            image_from_step,
            region: None,
            force: false,
        }
    }

    fn export() -> Value {
        json!({
            "service": {"serviceName": "snaplex", "loadBalancers": []},
            "task_definition": {"family": "snaplex", "containerDefinitions": [
                {"name": "jcc", "image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/snaplex:4.35"},
                {"name": "log-router", "image": "amazon/aws-for-fluent-bit", "essential": false}
            ]},
            "task_role_name": "snaplex-task",
            "execution_role_name": null,
            "config": {"bucket": "cfg", "prefix": "snaplex/prod"},
            "region": "us-west-2",
            "not_carried": []
        })
    }

    /// The three files written into a new directory, and the stack file parsed from there.
    fn written(a: &Adopted) -> (tempfile::TempDir, crate::stack::Stack) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("taskdef.json"), pretty(&a.task_definition)).unwrap();
        std::fs::write(dir.path().join("service.json"), pretty(&a.service)).unwrap();
        let stack = crate::stack::parse(&a.stack, dir.path())
            .unwrap_or_else(|p| panic!("{p:?}\n{}", a.stack))
            .services
            .remove(0);
        (dir, stack)
    }

    #[test]
    fn the_stack_file_names_what_exists_and_parses() {
        let a = Adopted::from_export(&export(), &args(true)).unwrap();
        assert_eq!(
            a.task_definition["containerDefinitions"][0]["image"],
            "${ECSKIT_IMAGE_URI}"
        );
        assert_eq!(
            a.task_definition["containerDefinitions"][1]["image"],
            "amazon/aws-for-fluent-bit"
        );
        let (dir, stack) = written(&a);
        assert_eq!(stack.bucket, "cfg");
        assert_eq!(stack.prefix, "snaplex/prod");
        assert_eq!(stack.task_role_name.as_deref(), Some("snaplex-task"));
        assert_eq!(stack.execution_role_name, None);
        assert!(stack.push_image);
        assert_eq!(stack.repository, "snaplex");
        assert_eq!(stack.service_file, Some(dir.path().join("service.json")));
        assert_eq!(stack.family, "snaplex");
        // What it could not carry over is said.
        let said = a.not_carried.join("\n");
        assert!(said.contains("roles.execution_role_name"), "{said}");
        assert!(
            said.contains("only container jcc takes the pushed image"),
            "{said}"
        );
    }

    #[test]
    fn a_task_definition_without_containers_is_an_error_not_a_panic() {
        for tds in [
            json!({"family": "x"}),
            json!({"family": "x", "containerDefinitions": []}),
        ] {
            let mut e = export();
            e["task_definition"] = tds;
            let err = Adopted::from_export(&e, &args(true)).unwrap_err();
            assert!(err.0.contains("no containerDefinitions"), "{err:?}");
        }
    }

    #[test]
    fn plaintext_credentials_are_named_and_allowed_by_the_stack_file() {
        let mut e = export();
        e["plaintext_secrets"] =
            json!([{"container": "jcc", "name": "DB_PASSWORD", "variable": "DB_PASSWORD"}]);
        let a = Adopted::from_export(&e, &args(false)).unwrap();
        assert!(
            a.stack
                .contains("#   DB_PASSWORD: DB_PASSWORD of container jcc"),
            "{}",
            a.stack
        );
        let (_dir, stack) = written(&a);
        assert!(stack.allow_plaintext_secrets);
        assert!(a.not_carried.iter().any(|n| n.contains("${DB_PASSWORD}")));
        // Without any, the stack file does not allow them.
        let (_dir, stack) = written(&Adopted::from_export(&export(), &args(false)).unwrap());
        assert!(!stack.allow_plaintext_secrets);
    }

    #[test]
    fn a_file_made_meanwhile_or_a_link_is_never_replaced_or_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taskdef.json");
        // A dangling link: following it would create the file it names.
        let victim = dir.path().join("victim");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = write_new(&path, "{}", false).unwrap_err();
        assert_eq!(err.1, 2, "{err:?}");
        assert!(!victim.exists(), "the link was followed");
        // A file that appeared meanwhile keeps its content.
        let other = dir.path().join("service.json");
        std::fs::write(&other, "theirs").unwrap();
        assert_eq!(write_new(&other, "ours", false).unwrap_err().1, 2);
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "theirs");
        // --force replaces the link itself, not the file it names.
        write_new(&path, "{}", true).unwrap();
        assert!(!victim.exists());
        assert!(!path.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn without_image_from_step_the_image_stays_literal() {
        let a = Adopted::from_export(&export(), &args(false)).unwrap();
        assert_eq!(
            a.task_definition["containerDefinitions"][0]["image"],
            "123456789012.dkr.ecr.us-west-2.amazonaws.com/snaplex:4.35"
        );
        // Nothing to push: the stack has no [image], so the deploy right after changes nothing.
        assert!(!a.stack.lines().any(|l| l == "[image]"), "{}", a.stack);
        let (_dir, stack) = written(&a);
        assert!(!stack.push_image);
        assert_eq!(ecr_repository("nginx:1"), None);
        assert_eq!(
            ecr_repository("1.dkr.ecr.us-west-2.amazonaws.com/a/b@sha256:00").as_deref(),
            Some("a/b")
        );
    }
}
