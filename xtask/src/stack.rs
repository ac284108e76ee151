//! The stack file (`ecskit.toml`): everything `cargo xtask deploy` needs to run the chain, for
//! one service or several.
//!
//! Over 600 lines because the file's sections, their merge over `[services.NAME]` and their
//! checks are one document read in one pass, and about half of it is the tests that pin each
//! check's message; a new section goes into a module of its own (`stack/before.rs`,
//! `stack/capacity.rs`).
//!
//! The file is read in full and checked before any step runs: an unknown key is reported with
//! its path (`service.netwrk`, `services.web.image.sorce`), a value of the wrong type with its
//! line, and every other problem (a missing file, a bad name, an empty list, two services
//! claiming one name) is collected so that one run shows them all. Paths in the file are
//! relative to the file's own directory.
//!
//! ## Several services
//!
//! A file with `[services.NAME]` tables describes one service per table. The top-level
//! `[image]`, `[roles]`, `[config]`, `[task_definition]` and `[service]` are what the services
//! share; a key under `[services.NAME.SECTION]` overrides the same key of the shared section
//! (tables merge key by key, lists and values are replaced). What the services share is done
//! once: two services whose roles (or image, or config) come out the same use one role-create
//! (or image-push, or config-upload) run. Without `[services]` the file is the one service it
//! always was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ecskit_contract::validate;
use serde::Deserialize;

mod before;
mod capacity;
mod rollout;

pub use before::Before;
use before::check_before;
pub use capacity::{Capacity, args as capacity_args};
pub use rollout::Rollout;

/// The whole stack file, as written. Every section but `[app]` may be left out of the file's
/// top level when each service has its own.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct StackFile {
    pub app: App,
    pub instance_profile: Option<InstanceProfile>,
    /// EC2 capacity for the services' cluster (capacity-create), after the instance profile.
    pub capacity: Option<Capacity>,
    pub image: Option<Image>,
    pub roles: Option<Roles>,
    pub config: Option<Config>,
    pub task_definition: Option<TaskDefinition>,
    pub service: Option<Service>,
    pub before: Option<Before>,
    /// The services, in the file's order.
    #[serde(default)]
    pub services: Option<indexmap::IndexMap<String, Sections>>,
}

/// What one service says about itself (a `[services.NAME]` table), or, merged with the
/// top-level sections, all of it.
#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Sections {
    pub image: Option<Image>,
    pub roles: Option<Roles>,
    pub config: Option<Config>,
    pub task_definition: Option<TaskDefinition>,
    pub service: Option<Service>,
    pub before: Option<Before>,
}

#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct App {
    /// Names the roles (`APP-task`, `APP-execution`) and is the default of the other names.
    pub name: String,
    /// The AWS region of every step (`AWS_REGION` of the processes).
    pub region: String,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Image {
    /// The local image (`name:tag` or an id).
    pub source: Option<String>,
    /// The ECR repository (default: the app name).
    pub repository: Option<String>,
    /// The tags to push (default: `latest`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Pull the source from its own registry first.
    #[serde(default)]
    pub pull: bool,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Roles {
    /// The bucket the task role may read, and where the config files go.
    pub bucket: Option<String>,
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
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Remove objects under the prefix that have no local file.
    #[serde(default)]
    pub delete_stale: bool,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct TaskDefinition {
    pub file: Option<PathBuf>,
    /// Overrides the file's `family`.
    pub family: Option<String>,
    /// taskdef-register's `--allow-plaintext-secrets`: credential-looking environment values
    /// (filled from `${VAR}`, never written in the file) are registered as they are. `cargo
    /// xtask init` sets it for a live task definition that has them.
    pub allow_plaintext_secrets: Option<bool>,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Service {
    /// The cluster (default: the app name).
    pub cluster: Option<String>,
    /// The service (default: the app name; in `[services.NAME]`, NAME).
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
    /// How ECS rolls a new revision out (service-run's rollout flags).
    pub rollout: Option<Rollout>,
}

#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Network {
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    pub assign_public_ip: Option<bool>,
}

/// A checked stack: one service or several, each with its defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Stacks {
    pub path: PathBuf,
    pub app: String,
    pub region: String,
    /// In the file's order; one for a file without `[services]`.
    pub services: Vec<Stack>,
}

impl Stacks {
    /// Whether the file has `[services]` (the summary then names each service).
    pub fn is_multi(&self) -> bool {
        self.services.iter().any(|s| s.key.is_some())
    }
}

/// One service's part of a checked stack: defaults filled in, paths made absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub path: PathBuf,
    /// The `[services.KEY]` this is; `None` in a single-service file.
    pub key: Option<String>,
    pub app: String,
    pub region: String,
    /// Whether image-push runs: false for a stack without `[image]`, whose task definition
    /// names its images itself (an adopted service's, say); then the fields below are unused.
    pub push_image: bool,
    pub image_source: String,
    pub image_pull: bool,
    pub repository: String,
    pub tags: Vec<String>,
    /// role-create's `--name`: the app's name, or `APP-KEY` for a service with its own
    /// `[services.KEY.roles]`.
    pub role_base: String,
    pub bucket: String,
    pub prefix: String,
    pub access: String,
    pub task_role_name: Option<String>,
    pub execution_role_name: Option<String>,
    pub instance_profile: Option<InstanceProfile>,
    /// instance-profile's `--s3-read BUCKET/PREFIX`: the shared config prefix.
    pub instance_s3_read: Option<String>,
    pub config_files: Vec<PathBuf>,
    pub config_delete_stale: bool,
    pub taskdef_file: PathBuf,
    pub family: String,
    pub allow_plaintext_secrets: bool,
    pub cluster: String,
    pub service: String,
    pub count: u32,
    pub launch_type: String,
    pub wait: bool,
    pub timeout: Option<u64>,
    pub network: Network,
    pub service_file: Option<PathBuf>,
    pub rollout: Rollout,
    /// The one-off task run before the service (a checked `[before]`: its command is there).
    pub before: Option<Before>,
    /// The stack's `[capacity]` (one for every service: they share its cluster).
    pub capacity: Option<Capacity>,
    /// `PROVIDER:1` when the service runs on the stack's capacity: there is a `[capacity]` and
    /// the service does not ask for FARGATE.
    pub capacity_strategy: Option<String>,
}

impl Stack {
    /// How the summary and messages name the service: its key, or the service's name.
    pub fn label(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.service)
    }

    /// The role names role-create makes (or adopts) for this service.
    pub fn role_names(&self) -> (String, String) {
        (
            self.task_role_name
                .clone()
                .unwrap_or_else(|| format!("{}-task", self.role_base)),
            self.execution_role_name
                .clone()
                .unwrap_or_else(|| format!("{}-execution", self.role_base)),
        )
    }
}

/// Reads and checks a stack file. Every problem is in the error, one per line.
pub fn load(path: &Path) -> Result<Stacks, Vec<String>> {
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
            for service in &mut s.services {
                service.path = path.to_path_buf();
            }
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
pub fn parse(text: &str, base: &Path) -> Result<Stacks, Vec<String>> {
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
    let stacks = check_file(file, text, base, &mut problems);
    if problems.is_empty() {
        Ok(stacks)
    } else {
        Err(problems)
    }
}

/// The sections shared by every service (the file's top level).
const SHARED: [&str; 6] = [
    "image",
    "roles",
    "config",
    "task_definition",
    "service",
    "before",
];

fn check_file(f: StackFile, text: &str, base: &Path, problems: &mut Vec<String>) -> Stacks {
    let app = f.app.name.clone();
    if let Err(e) = validate::ecs_name(&app, 64) {
        problems.push(format!(
            "app.name: {e} (it names roles, the repository and the service)"
        ));
    }
    if let Err(e) = validate::region(&f.app.region) {
        problems.push(format!("app.region: {e}"));
    }
    if let Some(c) = &f.capacity {
        capacity::check_capacity(c, &app, problems);
    }
    let services = match &f.services {
        None => {
            let sections = Sections {
                image: f.image.clone(),
                roles: f.roles.clone(),
                config: f.config.clone(),
                task_definition: f.task_definition.clone(),
                service: f.service.clone(),
                before: f.before.clone(),
            };
            vec![check_service(&f, None, sections, base, problems)]
        }
        Some(services) => check_services(&f, services, text, base, problems),
    };
    Stacks {
        path: PathBuf::new(),
        app,
        region: f.app.region,
        services,
    }
}

/// Each `[services.NAME]` merged over the shared sections and checked, then what the services
/// must not share (a name, a family, a tag of one repository, a role with two settings).
fn check_services(
    f: &StackFile,
    services: &indexmap::IndexMap<String, Sections>,
    text: &str,
    base: &Path,
    problems: &mut Vec<String>,
) -> Vec<Stack> {
    if services.is_empty() {
        problems.push("services: name at least one service ([services.NAME]), or leave [services] out for one".into());
        return Vec::new();
    }
    // The file parsed once with its types checked; now as plain tables, to merge.
    let doc: toml::Table = toml::from_str(text).unwrap_or_default();
    let shared: toml::Table = SHARED
        .iter()
        .filter_map(|k| doc.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let own_tables = doc
        .get("services")
        .and_then(|s| s.as_table())
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for key in services.keys() {
        if let Err(e) = validate::ecs_name(key, 64) {
            problems.push(format!("services.{key}: the service's key {e}"));
        }
        if ecskit_contract::Step::from_binary(key).is_some() {
            problems.push(format!(
                "services.{key}: a service may not be named like a step (--only and --from take both): rename it"
            ));
        }
        let own = own_tables
            .get(key)
            .and_then(|t| t.as_table())
            .cloned()
            .unwrap_or_default();
        let mut merged = shared.clone();
        merge(&mut merged, &own);
        let sections: Sections = match toml::Value::Table(merged).try_into() {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("services.{key}: {e}"));
                continue;
            }
        };
        let mut mine = Vec::new();
        let stack = check_service(f, Some((key, &own)), sections, base, &mut mine);
        // A problem of a shared key is the same for every service: said once, unprefixed. One
        // of a key the service gives, or that nobody gives, names the service.
        for p in mine {
            let path = p.split(':').next().unwrap_or("");
            let line = if has_path(&own, path) {
                format!("services.{key}.{p}")
            } else if has_path(&shared, path) {
                p
            } else {
                format!("services.{key}: {p}")
            };
            if !seen.contains(&line) {
                seen.push(line.clone());
                problems.push(line);
            }
        }
        out.push(stack);
    }
    conflicts(&out, problems);
    out
}

/// Merges `over` into `into`: tables key by key, everything else replaced.
fn merge(into: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (into.get_mut(k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Whether `table` has the key path `a.b.c` (an index such as `files[1]` names the list).
fn has_path(table: &toml::Table, path: &str) -> bool {
    let mut t = table;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let part = part.split('[').next().unwrap_or(part);
        match t.get(part) {
            None => return false,
            Some(toml::Value::Table(inner)) if i + 1 < parts.len() => t = inner,
            Some(_) => return i + 1 == parts.len(),
        }
    }
    true
}

/// What two services must not share: their service (cluster and name), their task definition
/// family, a tag of one repository pushed from two images, or a role with two settings (each
/// role-create run would undo the other's policy). Roles and images that come out the same
/// are shared, and done once.
fn conflicts(services: &[Stack], problems: &mut Vec<String>) {
    // One [capacity] joins one cluster: its instances' user data names it.
    if let Some(first) = services.first().filter(|s| s.capacity.is_some())
        && let Some(other) = services.iter().find(|s| s.cluster != first.cluster)
    {
        problems.push(format!(
            "capacity: services.{} runs in cluster {} and services.{} in {}: one [capacity] serves one cluster",
            first.label(),
            first.cluster,
            other.label(),
            other.cluster
        ));
    }
    // What is claimed -> the first service claiming it, and with what (None: never shared).
    let mut owners: BTreeMap<String, (&Stack, Option<String>)> = BTreeMap::new();
    for s in services {
        let (task, execution) = s.role_names();
        let settings = format!("{} {} {}", s.bucket, s.prefix, s.access);
        let mut claims: Vec<(String, Option<String>, &str)> = vec![(
            format!("are service {}/{}", s.cluster, s.service),
            None,
            "give one of them service.name",
        )];
        if !s.family.is_empty() {
            claims.push((
                format!("register family {}", s.family),
                None,
                "give one of them task_definition.family",
            ));
        }
        for t in s.tags.iter().filter(|_| s.push_image) {
            claims.push((
                format!("push {}:{t}", s.repository),
                Some(s.image_source.clone()),
                "they push different images there; give one of them image.repository or other image.tags",
            ));
        }
        for role in [task, execution] {
            claims.push((
                format!("make role {role}"),
                Some(settings.clone()),
                "with different [roles] bucket, prefix or access; give one of them roles.task_role_name and roles.execution_role_name",
            ));
        }
        for (what, value, fix) in claims {
            match owners.get(&what) {
                None => {
                    owners.insert(what, (s, value));
                }
                Some((other, theirs)) if value.is_none() || *theirs != value => {
                    problems.push(format!(
                        "services.{} and services.{} both {what}: {fix}",
                        other.label(),
                        s.label()
                    ));
                }
                Some(_) => {}
            }
        }
    }
}

/// One service's sections checked, defaults filled in. `service` is `(KEY, its own table)` for
/// a `[services.KEY]`, whose own image and roles get their own names (`APP-KEY`).
fn check_service(
    f: &StackFile,
    service: Option<(&String, &toml::Table)>,
    s: Sections,
    base: &Path,
    problems: &mut Vec<String>,
) -> Stack {
    let abs = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let app = f.app.name.clone();
    let key = service.map(|(k, _)| k.clone());
    let owns = |section: &str| service.is_some_and(|(_, own)| own.contains_key(section));
    let own_base = match &key {
        Some(k) => format!("{app}-{k}"),
        None => app.clone(),
    };

    // Without [image] nothing is pushed: the task definition names its images as they are.
    let push_image = s.image.is_some();
    let image = s.image.unwrap_or_default();
    let image_source = image.source.clone().unwrap_or_default();
    if push_image && image_source.trim().is_empty() {
        problems.push("image.source: give the local image, e.g. \"myapp:latest\" (or leave [image] out when the task definition names its images)".into());
    }
    let repository = image.repository.clone().unwrap_or_else(|| {
        if owns("image") {
            own_base.clone()
        } else {
            app.clone()
        }
    });
    let tags = if image.tags.is_empty() {
        vec!["latest".to_string()]
    } else {
        image.tags.clone()
    };
    for (i, t) in tags.iter().enumerate() {
        if let Err(e) = validate::image_tag(t) {
            problems.push(format!("image.tags[{i}]: {e}"));
        }
    }

    let role_base = if owns("roles") {
        own_base.clone()
    } else {
        app.clone()
    };
    let roles = s.roles.unwrap_or_default();
    let bucket = roles.bucket.clone().unwrap_or_default();
    if let Err(e) = validate::bucket_name(&bucket) {
        problems.push(format!("roles.bucket: {e}"));
    }
    let prefix = roles
        .prefix
        .clone()
        .unwrap_or_else(|| role_base.clone())
        .trim_matches('/')
        .to_string();
    let access = roles.access.clone().unwrap_or_else(|| "read".into());
    if access != "read" && access != "read-write" {
        problems.push(format!(
            "roles.access: '{access}' must be \"read\" or \"read-write\""
        ));
    }
    let (config_files, config_delete_stale) = match &s.config {
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
    // instance-profile runs once for the cluster's instances: its S3 read is the shared prefix.
    let instance_s3_read = match &f.instance_profile {
        Some(p) if p.s3_read => match (&key, &f.roles) {
            (None, _) => Some(format!("{bucket}/{prefix}")),
            (
                Some(_),
                Some(Roles {
                    bucket: Some(b),
                    prefix,
                    ..
                }),
            ) => Some(format!(
                "{b}/{}",
                prefix
                    .clone()
                    .unwrap_or_else(|| app.clone())
                    .trim_matches('/')
            )),
            (Some(_), _) => {
                problems.push("instance_profile.s3_read: with [services], it reads the shared [roles] bucket and prefix: add a top-level [roles] bucket".into());
                None
            }
        },
        _ => None,
    };

    let td = s.task_definition.unwrap_or_default();
    let taskdef_file = match &td.file {
        Some(p) => abs(p),
        None => {
            problems.push(
                "task_definition.file: give the task definition file ([task_definition] file = \"taskdef.json\")"
                    .into(),
            );
            PathBuf::new()
        }
    };
    if !push_image
        && let Ok(text) = std::fs::read_to_string(&taskdef_file)
        && text.contains("${ECSKIT_IMAGE_URI")
    {
        problems.push(format!(
            "task_definition.file: {} takes ${{ECSKIT_IMAGE_URI}} from image-push, but the stack has no [image] to push: add [image] source = \"LOCAL-IMAGE\", or write the image into the file",
            taskdef_file.display()
        ));
    }
    let family = match &td.family {
        Some(fam) => fam.clone(),
        None if td.file.is_none() => String::new(),
        None => match read_family(&taskdef_file) {
            Ok(fam) => fam,
            Err(e) => {
                problems.push(format!("task_definition.file: {e}"));
                String::new()
            }
        },
    };

    let svc = s.service.unwrap_or_default();
    let launch_type = svc.launch_type.clone().unwrap_or_else(|| "FARGATE".into());
    if launch_type != "FARGATE" && launch_type != "EC2" {
        problems.push(format!(
            "service.launch_type: '{launch_type}' must be \"FARGATE\" or \"EC2\""
        ));
    }
    let cluster = svc.cluster.clone().unwrap_or_else(|| app.clone());
    let name = svc
        .name
        .clone()
        .or_else(|| key.clone())
        .unwrap_or_else(|| app.clone());
    for (field, v) in [("service.cluster", &cluster), ("service.name", &name)] {
        if let Err(e) = validate::ecs_name(v, 255) {
            problems.push(format!("{field}: {e}"));
        }
    }
    let service_file = svc.file.as_deref().map(abs);
    if let Some(p) = &service_file
        && !p.exists()
    {
        problems.push(format!("service.file: {} does not exist", p.display()));
    }
    // The stack's capacity is where its services run, unless one asks for Fargate.
    let capacity_strategy = f
        .capacity
        .as_ref()
        .filter(|_| svc.launch_type.as_deref() != Some("FARGATE"))
        .map(|c| format!("{}:1", c.provider_name(&app)));
    // Not an error: the profile may have been made outside the stack. With [capacity] the
    // instances launch with capacity-create's default profile, ecsInstanceRole-profile, which
    // then must exist (a managed [capacity] is refused without it; an EC2 group cannot launch
    // its instances).
    if f.instance_profile.is_none() {
        if f.capacity.is_some() {
            eprintln!(
                "note: [capacity] and no [instance_profile]: the instances launch with instance profile ecsInstanceRole-profile (capacity-create's default), which must exist; add [instance_profile] to make it"
            );
        } else if launch_type == "EC2" {
            eprintln!(
                "note: service.launch_type is EC2 and there is no [instance_profile]: the cluster's container instances need one of their own"
            );
        }
    }
    if let Some(r) = &svc.rollout {
        r.check(service_file.is_some(), problems);
    }
    if let Some(b) = &s.before {
        check_before(b, problems);
        // The service file's launch type, capacity providers and network are not passed to
        // the before task yet: it would run somewhere else than the service (another VPC, the
        // default security group). Refused rather than placed wrong.
        if service_file.is_some() {
            problems.push(
                "before: a before task with service.file is not supported yet (its network and capacity would not be the file's): run the task with task-run before the deploy, or give the service's settings under [service]"
                    .into(),
            );
        }
    }
    Stack {
        path: PathBuf::new(),
        key,
        app,
        region: f.app.region.clone(),
        push_image,
        image_source,
        image_pull: image.pull,
        repository,
        tags,
        role_base,
        bucket,
        prefix,
        access,
        task_role_name: roles.task_role_name,
        execution_role_name: roles.execution_role_name,
        instance_profile: f.instance_profile.clone(),
        instance_s3_read,
        config_files,
        config_delete_stale,
        taskdef_file,
        family,
        allow_plaintext_secrets: td.allow_plaintext_secrets.unwrap_or(false),
        cluster,
        service: name,
        count: svc.count.unwrap_or(1),
        launch_type,
        wait: svc.wait.unwrap_or(true),
        timeout: svc.timeout,
        network: svc.network.unwrap_or_default(),
        service_file,
        rollout: svc.rollout.unwrap_or_default(),
        before: s.before,
        capacity: f.capacity.clone(),
        capacity_strategy,
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

    pub(super) fn dir() -> PathBuf {
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
        let s = parse(GOOD, &d).unwrap().services.remove(0);
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
    fn without_image_nothing_is_pushed_unless_the_task_definition_wants_a_pushed_image() {
        let d = dir();
        let text = GOOD.replace(
            "[image]\nsource = \"web:1\"\ntags = [\"1\", \"latest\"]\n",
            "",
        );
        let s = parse(&text, &d).unwrap().services.remove(0);
        assert!(!s.push_image);
        assert!(!crate::chain::stack_steps(&s).contains(&crate::chain::Step::ImagePush));
        std::fs::write(
            d.join("taskdef.json"),
            r#"{"family": "web", "containerDefinitions": [{"name": "app", "image": "${ECSKIT_IMAGE_URI}"}]}"#,
        )
        .unwrap();
        let problems = parse(&text, &d).unwrap_err().join("\n");
        assert!(
            problems.contains("task_definition.file: ")
                && problems.contains("has no [image] to push"),
            "{problems}"
        );
        assert!(parse(GOOD, &d).unwrap().services[0].push_image);
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
        let s = &s.services[0];
        assert_eq!(s.launch_type, "FARGATE");
        assert!(!s.config_files.is_empty());
    }

    pub(super) const MANY: &str = r#"
[app]
name = "shop"
region = "us-west-2"

[image]
source = "shop:1"

[roles]
bucket = "shop-config"

[config]
files = ["config"]

[task_definition]
file = "taskdef.json"

[service]
cluster = "shop"
wait = false
[service.network]
subnets = ["subnet-1"]

[services.web]
task_definition = { family = "shop-web" }
service = { count = 3 }

[services.worker]
image = { source = "worker:2", tags = ["2"] }
roles = { bucket = "shop-config", access = "read-write" }
task_definition = { family = "shop-worker" }
[services.worker.service.network]
security_groups = ["sg-1"]
"#;

    #[test]
    fn services_merge_over_the_shared_sections_in_the_files_order() {
        let d = dir();
        let s = parse(MANY, &d).unwrap_or_else(|p| panic!("{}", p.join("\n")));
        assert!(s.is_multi());
        let [web, worker] = &s.services[..] else {
            panic!("two services: {s:?}")
        };
        assert_eq!(web.key.as_deref(), Some("web"));
        assert_eq!(
            (web.service.as_str(), web.cluster.as_str()),
            ("web", "shop")
        );
        assert_eq!((web.count, worker.count), (3, 1));
        assert!(!web.wait && !worker.wait);
        // Shared: the image, roles and config of the top level, named after the app.
        assert_eq!(
            (web.image_source.as_str(), web.repository.as_str()),
            ("shop:1", "shop")
        );
        assert_eq!(
            (web.role_base.as_str(), web.prefix.as_str()),
            ("shop", "shop")
        );
        assert_eq!(web.family, "shop-web");
        // Its own image and roles get its own names; tables merge key by key.
        assert_eq!(
            (worker.image_source.as_str(), worker.repository.as_str()),
            ("worker:2", "shop-worker")
        );
        assert_eq!(worker.tags, ["2"]);
        assert_eq!(worker.role_base, "shop-worker");
        assert_eq!(
            (
                worker.bucket.as_str(),
                worker.prefix.as_str(),
                worker.access.as_str()
            ),
            ("shop-config", "shop-worker", "read-write")
        );
        assert_eq!(worker.network.subnets, ["subnet-1"]);
        assert_eq!(worker.network.security_groups, ["sg-1"]);
    }

    #[test]
    fn a_services_problems_name_it_and_shared_ones_are_said_once() {
        let d = dir();
        let text = MANY
            .replace(
                "source = \"shop:1\"",
                "source = \"shop:1\"\ntags = [\"bad tag\"]",
            )
            .replace(
                "service = { count = 3 }",
                "service = { count = 3, launch_type = \"LAMBDA\" }",
            )
            .replace(
                "[services.worker.service.network]",
                "[services.worker.service.netwrk]",
            );
        let problems = parse(&text, &d).unwrap_err();
        let joined = problems.join("\n");
        assert!(
            joined.contains("unknown key `services.worker.service.netwrk`"),
            "{joined}"
        );
        assert!(
            joined.contains("services.web.service.launch_type: 'LAMBDA'"),
            "{joined}"
        );
        // The shared tag is web's only (worker has its own tags): said once, unprefixed.
        assert_eq!(
            problems
                .iter()
                .filter(|p| p.starts_with("image.tags[0]"))
                .count(),
            1,
            "{joined}"
        );
    }

    #[test]
    fn two_services_may_not_claim_one_name_family_tag_or_role() {
        let d = dir();
        let text = MANY
            .replace("task_definition = { family = \"shop-worker\" }", "task_definition = { family = \"shop-web\" }")
            .replace("[services.worker.service.network]", "[services.worker.service]\nname = \"web\"\n[services.worker.service.network]")
            .replace("image = { source = \"worker:2\", tags = [\"2\"] }", "image = { source = \"worker:2\", repository = \"shop\" }")
            .replace("roles = { bucket = \"shop-config\", access = \"read-write\" }", "roles = { bucket = \"shop-config\", access = \"read-write\", task_role_name = \"shop-task\" }");
        let joined = parse(&text, &d).unwrap_err().join("\n");
        for needle in [
            "services.web and services.worker both are service shop/web",
            "services.web and services.worker both register family shop-web",
            "services.web and services.worker both push shop:latest",
            "services.web and services.worker both make role shop-task",
        ] {
            assert!(joined.contains(needle), "{needle} missing in:\n{joined}");
        }
        // Equal roles and images are shared, not a conflict.
        assert!(parse(MANY, &d).is_ok());
    }

    #[test]
    fn a_service_named_like_a_step_is_refused() {
        let d = dir();
        let text = MANY.replace("[services.web]", "[services.service-run]");
        let joined = parse(&text, &d).unwrap_err().join("\n");
        assert!(
            joined.contains("services.service-run: a service may not be named like a step"),
            "{joined}"
        );
    }
}
