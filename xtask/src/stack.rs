//! The stack file (`ecskit.toml`): everything `cargo xtask deploy` needs to run the chain.
//!
//! The file is read in full and checked before any step runs: an unknown key is reported with
//! its path (`service.netwrk`), a value of the wrong type with its line, and every other
//! problem (a missing file, a bad name, an empty list) is collected so that one run shows them
//! all. Paths in the file are relative to the file's own directory.

use std::path::{Path, PathBuf};

use ecskit_contract::validate;
use serde::Deserialize;

/// The whole stack file, as written.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct StackFile {
    pub app: App,
    pub image: Image,
    pub roles: Roles,
    pub instance_profile: Option<InstanceProfile>,
    pub config: Option<Config>,
    pub task_definition: TaskDefinition,
    pub service: Service,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct App {
    /// Names the roles (`APP-task`, `APP-execution`) and is the default of the other names.
    pub name: String,
    /// The AWS region of every step (`AWS_REGION` of the processes).
    pub region: String,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct Image {
    /// The local image (`name:tag` or an id).
    pub source: String,
    /// The ECR repository (default: the app name).
    pub repository: Option<String>,
    /// The tags to push (default: `latest`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Pull the source from its own registry first.
    #[serde(default)]
    pub pull: bool,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct Roles {
    /// The bucket the task role may read, and where the config files go.
    pub bucket: String,
    /// The prefix inside the bucket (default: the app name).
    pub prefix: Option<String>,
    /// `read` (default) or `read-write`.
    pub access: Option<String>,
    pub task_role_name: Option<String>,
    pub execution_role_name: Option<String>,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct InstanceProfile {
    pub role_name: Option<String>,
    pub profile_name: Option<String>,
    /// Give the instance role read access to the config prefix too.
    #[serde(default)]
    pub s3_read: bool,
    #[serde(default)]
    pub cloudwatch_logs: bool,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct Config {
    /// Files or directories uploaded to `s3://roles.bucket/roles.prefix/`.
    pub files: Vec<PathBuf>,
    /// Remove objects under the prefix that have no local file.
    #[serde(default)]
    pub delete_stale: bool,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct TaskDefinition {
    pub file: PathBuf,
    /// Overrides the file's `family`.
    pub family: Option<String>,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct Service {
    /// The cluster (default: the app name).
    pub cluster: Option<String>,
    /// The service (default: the app name).
    pub name: Option<String>,
    /// The desired count (default 1).
    pub count: Option<u32>,
    /// `FARGATE` (default) or `EC2`.
    pub launch_type: Option<String>,
    /// Wait until the deployment is stable (default true).
    pub wait: Option<bool>,
    /// The longest wait, in seconds.
    pub timeout: Option<u64>,
    pub network: Option<Network>,
    /// A service definition in CreateService's JSON form (`service-run --service-file`).
    pub file: Option<PathBuf>,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Network {
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    pub assign_public_ip: Option<bool>,
}

/// A checked stack: defaults filled in, paths made absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub path: PathBuf,
    pub app: String,
    pub region: String,
    pub image_source: String,
    pub image_pull: bool,
    pub repository: String,
    pub tags: Vec<String>,
    pub bucket: String,
    pub prefix: String,
    pub access: String,
    pub task_role_name: Option<String>,
    pub execution_role_name: Option<String>,
    pub instance_profile: Option<InstanceProfile>,
    pub config_files: Vec<PathBuf>,
    pub config_delete_stale: bool,
    pub taskdef_file: PathBuf,
    pub family: String,
    pub cluster: String,
    pub service: String,
    pub count: u32,
    pub launch_type: String,
    pub wait: bool,
    pub timeout: Option<u64>,
    pub network: Network,
    pub service_file: Option<PathBuf>,
}

/// Reads and checks a stack file. Every problem is in the error, one per line.
pub fn load(path: &Path) -> Result<Stack, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![format!(
            "{}: {e} (give the stack file with --stack FILE)",
            path.display()
        )]
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    parse(&text, base)
        .map(|mut s| {
            s.path = path.to_path_buf();
            s
        })
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect()
        })
}

/// Parses stack file text; relative paths are taken from `base`.
pub fn parse(text: &str, base: &Path) -> Result<Stack, Vec<String>> {
    let mut unknown = Vec::new();
    let de = toml::Deserializer::new(text);
    let file: Result<StackFile, _> = serde_ignored::deserialize(de, |path| {
        // serde_ignored writes `?` for an `Option` level: not part of the key's path.
        let p = path.to_string().replace(".?", "");
        unknown.push(p.trim_start_matches("?.").to_string());
    });
    let mut problems: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown key `{p}` (check its spelling; see docs/orchestrator.md)"))
        .collect();
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            problems.push(e.to_string().trim_end().replace('\n', "\n    "));
            return Err(problems);
        }
    };
    let stack = check(file, base, &mut problems);
    if problems.is_empty() {
        Ok(stack)
    } else {
        Err(problems)
    }
}

fn check(f: StackFile, base: &Path, problems: &mut Vec<String>) -> Stack {
    let abs = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let app = f.app.name.clone();
    if let Err(e) = validate::ecs_name(&app, 64) {
        problems.push(format!(
            "app.name: {e} (it names roles, the repository and the service)"
        ));
    }
    if let Err(e) = validate::region(&f.app.region) {
        problems.push(format!("app.region: {e}"));
    }
    if f.image.source.trim().is_empty() {
        problems.push("image.source: give the local image, e.g. \"myapp:latest\"".into());
    }
    let repository = f.image.repository.clone().unwrap_or_else(|| app.clone());
    let tags = if f.image.tags.is_empty() {
        vec!["latest".to_string()]
    } else {
        f.image.tags.clone()
    };
    for (i, t) in tags.iter().enumerate() {
        if let Err(e) = validate::image_tag(t) {
            problems.push(format!("image.tags[{i}]: {e}"));
        }
    }
    if let Err(e) = validate::bucket_name(&f.roles.bucket) {
        problems.push(format!("roles.bucket: {e}"));
    }
    let prefix = f
        .roles
        .prefix
        .clone()
        .unwrap_or_else(|| app.clone())
        .trim_matches('/')
        .to_string();
    let access = f.roles.access.clone().unwrap_or_else(|| "read".into());
    if access != "read" && access != "read-write" {
        problems.push(format!(
            "roles.access: '{access}' must be \"read\" or \"read-write\""
        ));
    }
    let (config_files, config_delete_stale) = match &f.config {
        Some(c) => {
            if c.files.is_empty() {
                problems.push(
                    "config.files: list at least one file or directory, or leave [config] out"
                        .into(),
                );
            }
            let files: Vec<PathBuf> = c.files.iter().map(|p| abs(p)).collect();
            for (i, p) in files.iter().enumerate() {
                if !p.exists() {
                    problems.push(format!("config.files[{i}]: {} does not exist", p.display()));
                }
            }
            (files, c.delete_stale)
        }
        None => (Vec::new(), false),
    };
    let taskdef_file = abs(&f.task_definition.file);
    let family = match &f.task_definition.family {
        Some(fam) => fam.clone(),
        None => match read_family(&taskdef_file) {
            Ok(fam) => fam,
            Err(e) => {
                problems.push(format!("task_definition.file: {e}"));
                String::new()
            }
        },
    };
    let launch_type = f
        .service
        .launch_type
        .clone()
        .unwrap_or_else(|| "FARGATE".into());
    if launch_type != "FARGATE" && launch_type != "EC2" {
        problems.push(format!(
            "service.launch_type: '{launch_type}' must be \"FARGATE\" or \"EC2\""
        ));
    }
    let cluster = f.service.cluster.clone().unwrap_or_else(|| app.clone());
    let service = f.service.name.clone().unwrap_or_else(|| app.clone());
    for (field, v) in [("service.cluster", &cluster), ("service.name", &service)] {
        if let Err(e) = validate::ecs_name(v, 255) {
            problems.push(format!("{field}: {e}"));
        }
    }
    let service_file = f.service.file.as_deref().map(abs);
    if let Some(p) = &service_file
        && !p.exists()
    {
        problems.push(format!("service.file: {} does not exist", p.display()));
    }
    if launch_type == "EC2" && f.instance_profile.is_none() {
        // Not an error: the instances may come with their own profile.
        eprintln!(
            "note: service.launch_type is EC2 and there is no [instance_profile]: the container instances need one"
        );
    }
    Stack {
        path: PathBuf::new(),
        app,
        region: f.app.region,
        image_source: f.image.source,
        image_pull: f.image.pull,
        repository,
        tags,
        bucket: f.roles.bucket,
        prefix,
        access,
        task_role_name: f.roles.task_role_name,
        execution_role_name: f.roles.execution_role_name,
        instance_profile: f.instance_profile,
        config_files,
        config_delete_stale,
        taskdef_file,
        family,
        cluster,
        service,
        count: f.service.count.unwrap_or(1),
        launch_type,
        wait: f.service.wait.unwrap_or(true),
        timeout: f.service.timeout,
        network: f.service.network.unwrap_or_default(),
        service_file,
    }
}

/// The `family` of a task definition file, in either of the forms taskdef-register takes
/// (the register input, or describe's output with or without the `taskDefinition` wrapper).
/// destroy needs it to deregister the revisions without the other steps' outputs.
pub fn read_family(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not JSON ({e}); taskdef-register explains the details",
            path.display()
        )
    })?;
    let doc = doc.get("taskDefinition").unwrap_or(&doc);
    match doc.get("family").and_then(|f| f.as_str()) {
        Some(f) if !f.is_empty() && !f.contains("${") => Ok(f.to_string()),
        Some(_) => Err(format!(
            "{}: `family` uses a ${{...}} substitution: set task_definition.family in the stack file",
            path.display()
        )),
        None => Err(format!(
            "{}: no `family`: add one to the file or set task_definition.family",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let d = std::env::temp_dir().join(format!("ecskit-stack-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(d.join("config")).unwrap();
        std::fs::write(d.join("config/global.properties"), "a=b\n").unwrap();
        std::fs::write(
            d.join("taskdef.json"),
            r#"{"family": "web", "containerDefinitions": []}"#,
        )
        .unwrap();
        d
    }

    const GOOD: &str = r#"
[app]
name = "web"
region = "us-west-2"

[image]
source = "web:1"
tags = ["1", "latest"]

[roles]
bucket = "web-config"
prefix = "/web/config/"

[config]
files = ["config"]

[task_definition]
file = "taskdef.json"

[service]
count = 2
[service.network]
subnets = ["subnet-1", "subnet-2"]
"#;

    #[test]
    fn defaults_are_filled_in_and_paths_made_absolute() {
        let d = dir();
        let s = parse(GOOD, &d).unwrap();
        assert_eq!(s.repository, "web");
        assert_eq!(s.tags, vec!["1", "latest"]);
        assert_eq!(s.prefix, "web/config");
        assert_eq!(s.access, "read");
        assert_eq!(s.cluster, "web");
        assert_eq!(s.service, "web");
        assert_eq!(s.count, 2);
        assert_eq!(s.launch_type, "FARGATE");
        assert!(s.wait);
        assert_eq!(s.family, "web");
        assert_eq!(s.config_files, vec![d.join("config")]);
        assert_eq!(s.taskdef_file, d.join("taskdef.json"));
        assert_eq!(s.network.subnets, vec!["subnet-1", "subnet-2"]);
        assert!(s.instance_profile.is_none());
    }

    #[test]
    fn unknown_keys_are_reported_with_their_path_all_at_once() {
        let d = dir();
        let text = GOOD
            .replace("count = 2", "count = 2\ncuont = 3")
            .replace("subnets = [", "subnts = [\"x\"]\nsubnets = [")
            .replace("[app]", "colour = \"red\"\n[app]");
        let problems = parse(&text, &d).unwrap_err();
        let joined = problems.join("\n");
        assert!(joined.contains("unknown key `service.cuont`"), "{joined}");
        assert!(
            joined.contains("unknown key `service.network.subnts`"),
            "{joined}"
        );
        assert!(joined.contains("unknown key `colour`"), "{joined}");
        assert_eq!(problems.len(), 3, "{joined}");
    }

    #[test]
    fn wrong_types_name_the_line() {
        let d = dir();
        let problems = parse(&GOOD.replace("count = 2", "count = \"two\""), &d).unwrap_err();
        let joined = problems.join("\n");
        assert!(joined.contains("line 21"), "{joined}");
        assert!(joined.contains("count"), "{joined}");
    }

    #[test]
    fn every_value_problem_is_collected() {
        let d = dir();
        let text = GOOD
            .replace("\"web-config\"", "\"Web_Config\"")
            .replace("us-west-2", "mars")
            .replace(
                "files = [\"config\"]",
                "files = [\"config\", \"missing.properties\"]",
            )
            .replace("count = 2", "count = 2\nlaunch_type = \"LAMBDA\"")
            .replace("prefix = \"/web/config/\"", "access = \"admin\"");
        let problems = parse(&text, &d).unwrap_err();
        let joined = problems.join("\n");
        for needle in [
            "roles.bucket",
            "app.region",
            "config.files[1]",
            "service.launch_type",
            "roles.access",
        ] {
            assert!(joined.contains(needle), "{needle} missing in:\n{joined}");
        }
        assert_eq!(problems.len(), 5, "{joined}");
    }

    #[test]
    fn missing_sections_are_named() {
        let d = dir();
        let text = GOOD.replace("[task_definition]\nfile = \"taskdef.json\"\n", "");
        let joined = parse(&text, &d).unwrap_err().join("\n");
        assert!(joined.contains("task_definition"), "{joined}");
    }

    #[test]
    fn family_comes_from_either_taskdef_form() {
        let d = dir();
        let p = d.join("described.json");
        std::fs::write(
            &p,
            r#"{"taskDefinition": {"family": "described", "revision": 3}, "tags": []}"#,
        )
        .unwrap();
        assert_eq!(read_family(&p).unwrap(), "described");
        std::fs::write(&p, r#"{"family": "${FAMILY}"}"#).unwrap();
        assert!(
            read_family(&p)
                .unwrap_err()
                .contains("task_definition.family")
        );
    }

    #[test]
    fn the_example_stack_file_is_valid() {
        let path = crate::util::workspace_root().join("examples/ecskit.toml");
        let s = load(&path).unwrap_or_else(|p| panic!("{}", p.join("\n")));
        assert_eq!(s.launch_type, "FARGATE");
        assert!(!s.config_files.is_empty());
    }
}
