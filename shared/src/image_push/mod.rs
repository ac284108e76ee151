//! image-push: tag a local image and push it to an ECR repository through the Docker Engine.
//!
//! The step creates the repository when it is missing (scan on push, tag mutability,
//! encryption, tagged `managed-by=ecskit`), asks ECR for an authorization token, decodes it
//! into registry credentials held in a [`Secret`](crate::secret::Secret), and hands them to the
//! engine for this push only. Before pushing it asks the registry (through the engine) which
//! digest each requested tag holds: when every tag already holds the local image's digest,
//! nothing is pushed and the step reports `changed: false`.

pub mod engine;
pub mod reference;

use std::io::Read;

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Tag,
};

use crate::aws::{AwsArgs, Ctx};
use crate::cli::{Common, StepArgs};
use crate::error::{AwsContext, Error, Result};
use crate::progress::Progress;
use crate::secret::Secret;
use crate::{Report, validate};
use engine::{Credentials, Engine};

use crate::aws::MANAGED_BY;

#[derive(clap::Parser, Debug)]
#[command(
    name = "image-push",
    version,
    about = "Tag a local image and push it to an ECR repository (created if missing) through the Docker Engine.",
    after_help = "Examples:\n  image-push app:1.4 --repository team/app --tag 1.4 --tag latest\n  image-push app:1.4 --repository team/app --scan-on-push --immutable-tags --output env\n  image-push nginx:1.27 --pull --repository web/nginx\n  image-push --repository team/app --delete --force\n\nReads: ECSKIT_REPOSITORY, ECSKIT_IMAGE_TAGS, ECSKIT_REGISTRY_ID, ECSKIT_REGISTRY_ENDPOINT, ECSKIT_KMS_KEY, DOCKER_HOST\nPrints: ECSKIT_IMAGE_URI (by digest), ECSKIT_IMAGE_TAG_URI, ECSKIT_IMAGE_DIGEST, ECSKIT_REPOSITORY_URI, ECSKIT_CHANGED\n\nExit codes: 0 pushed or already there; 1 AWS, engine or registry failure (refused credentials, unreachable engine); 2 bad input (no such local image, invalid repository name or tag), nothing changed."
)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: AwsArgs,

    /// The local image to push: NAME:TAG or an image id.
    #[arg(required_unless_present = "delete")]
    pub source: Option<String>,

    /// The ECR repository name (created when missing), like `team/app`.
    #[arg(long, env = "ECSKIT_REPOSITORY")]
    pub repository: String,

    /// A tag to push; repeat for several. Default: SOURCE's tag, else `latest`.
    #[arg(long = "tag", env = "ECSKIT_IMAGE_TAGS", value_delimiter = ',')]
    pub tags: Vec<String>,

    /// The registry's account id, when it is not the caller's.
    #[arg(long, env = "ECSKIT_REGISTRY_ID")]
    pub registry_id: Option<String>,

    /// Push to this HOST:PORT instead of the token's proxy endpoint (local registries, mirrors).
    #[arg(long, env = "ECSKIT_REGISTRY_ENDPOINT")]
    pub registry_endpoint: Option<String>,

    /// New repository: scan images on push.
    #[arg(long)]
    pub scan_on_push: bool,

    /// New repository: tags cannot be overwritten.
    #[arg(long)]
    pub immutable_tags: bool,

    /// New repository: encrypt with this KMS key (id, alias or ARN). Default: AES256.
    #[arg(long, env = "ECSKIT_KMS_KEY")]
    pub kms_key: Option<String>,

    /// Pull SOURCE from its own registry first.
    #[arg(long)]
    pub pull: bool,

    /// User name for --pull.
    #[arg(long)]
    pub pull_username: Option<String>,

    /// Read the password for --pull from stdin.
    #[arg(long)]
    pub pull_password_stdin: bool,

    /// Delete the repository (only when tagged managed-by=ecskit).
    #[arg(long, conflicts_with_all = ["source", "pull", "tags"])]
    pub delete: bool,

    /// With --delete: delete the repository even when it still holds images.
    #[arg(long)]
    pub force: bool,
}

impl StepArgs for Args {
    fn common(&self) -> &Common {
        &self.common
    }
}

/// The input, checked. Every problem is collected before anything is called.
struct Plan {
    source: String,
    tags: Vec<String>,
    pull_credentials: Option<(String, Secret)>,
}

fn check(args: &Args, password: impl FnOnce() -> std::io::Result<String>) -> Result<Plan> {
    let mut problems = Vec::new();
    if let Err(p) = reference::repository_name(&args.repository) {
        problems.push(format!("--repository: {p}"));
    }
    let source = args.source.clone().unwrap_or_default();
    if !args.delete
        && let Err(p) = reference::source(&source)
    {
        problems.push(format!("SOURCE: {p}"));
    }
    let tags = if args.tags.is_empty() {
        reference::default_tags(&source)
    } else {
        let mut tags = args.tags.clone();
        tags.dedup();
        tags
    };
    if !args.delete {
        for t in &tags {
            if let Err(p) = reference::tag(t) {
                problems.push(format!("--tag: {p}"));
            }
        }
    }
    if let Some(id) = &args.registry_id
        && let Err(p) = reference::registry_id(id)
    {
        problems.push(format!("--registry-id: {p}"));
    }
    if let Some(e) = &args.registry_endpoint
        && let Err(p) = reference::endpoint(e)
    {
        problems.push(format!("--registry-endpoint: {p}"));
    }
    if let Some(k) = &args.kms_key {
        let ok = !k.trim().is_empty()
            && (!k.starts_with("arn:") || validate::arn(k, Some("kms"), None).is_ok());
        if !ok {
            problems.push(format!(
                "--kms-key: '{k}' is not a KMS key id, alias or key ARN"
            ));
        }
    }
    // Checked here rather than with clap's `requires`, which counts a flag's implicit `false`
    // as present.
    if args.force && !args.delete {
        problems.push("--force: it only goes with --delete".to_string());
    }
    if (args.pull_username.is_some() || args.pull_password_stdin) && !args.pull {
        problems
            .push("--pull-username/--pull-password-stdin: they only go with --pull".to_string());
    }
    if args.pull_username.is_some() != args.pull_password_stdin {
        problems
            .push("--pull-username and --pull-password-stdin: give both, or neither".to_string());
    }
    let mut pull_credentials = None;
    if let Some(user) = args
        .pull_username
        .as_ref()
        .filter(|_| args.pull_password_stdin)
    {
        match password() {
            Ok(p) => {
                let p = p.trim_end_matches(['\r', '\n']).to_string();
                if p.is_empty() {
                    problems.push("--pull-password-stdin: stdin held no password".to_string());
                }
                pull_credentials = Some((user.clone(), Secret::new(p)));
            }
            Err(e) => problems.push(format!("--pull-password-stdin: cannot read stdin: {e}")),
        }
    }
    if !problems.is_empty() {
        let hint = if problems.iter().any(|p| p.starts_with("--repository")) {
            "repository names look like 'team/app'; tags like '1.4.2' or 'latest'"
        } else {
            "see image-push --help for the accepted values"
        };
        return Err(Error::inputs(problems).hint(hint));
    }
    Ok(Plan {
        source,
        tags,
        pull_credentials,
    })
}

pub async fn run(args: Args) -> Result<Report> {
    let read_stdin = || {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    };
    run_with_password(args, read_stdin).await
}

/// [`run`] with the `--pull-password-stdin` reader given (tests).
pub async fn run_with_password(
    args: Args,
    password: impl FnOnce() -> std::io::Result<String>,
) -> Result<Report> {
    let plan = check(&args, password)?;
    if args.delete {
        let ctx = Ctx::new(&args.aws, args.common.dry_run).await;
        return delete(&ctx, &args).await;
    }
    let engine = Engine::connect().await?;
    push(&engine, &args, plan).await
}

/// The repository as ECR describes it, or `None` when it does not exist.
async fn describe_repository(
    ctx: &Ctx,
    args: &Args,
) -> Result<Option<aws_sdk_ecr::types::Repository>> {
    let answer = ctx
        .ecr()
        .describe_repositories()
        .repository_names(&args.repository)
        .set_registry_id(args.registry_id.clone())
        .send()
        .await;
    match answer {
        Ok(out) => Ok(out.repositories.unwrap_or_default().into_iter().next()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_repository_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(crate::error::from_sdk(
            format!("describing repository {}", args.repository),
            e,
        )),
    }
}

async fn push(engine: &Engine, args: &Args, plan: Plan) -> Result<Report> {
    let progress = Progress::new(args.common.quiet);

    // The local image first: a missing image is bad input, and nothing has been called yet.
    if args.pull {
        if args.common.dry_run {
            tracing::info!("would pull {}", plan.source);
        } else {
            let creds = plan
                .pull_credentials
                .as_ref()
                .map(|(user, password)| Credentials {
                    username: user.clone(),
                    password: password.clone(),
                    server: pull_registry(&plan.source),
                });
            progress.println(format!("pulling {}", plan.source));
            engine.pull(&plan.source, creds.as_ref()).await?;
        }
    }
    let Some(local) = engine.local_image(&plan.source).await? else {
        if args.common.dry_run && args.pull {
            return Err(Error::input(format!(
                "no local image '{}' (dry run: it was not pulled)",
                plan.source
            ))
            .hint("run without --dry-run to pull it, or pull it first"));
        }
        return Err(
            Error::input(format!("no such local image '{}'", plan.source)).hint(
                "build or load it first (`docker images` lists what the engine holds), or pass --pull to pull it",
            ),
        );
    };
    let layers = local
        .root_fs
        .as_ref()
        .and_then(|r| r.layers.as_ref())
        .map_or(0, Vec::len);

    let ctx = Ctx::new(&args.aws, args.common.dry_run).await;
    let ecr = ctx.ecr();
    let existing = describe_repository(&ctx, args).await?;

    // Credentials for the registry, decoded from the token and kept in a Secret.
    // `registryIds` is deprecated for permissions, but it still selects the proxy endpoint
    // (and, on emulators, the credentials) of another account's registry.
    #[allow(deprecated)]
    let token = ecr
        .get_authorization_token()
        .set_registry_ids(args.registry_id.clone().map(|id| vec![id]))
        .send()
        .await
        .context("getting an ECR authorization token")?;
    let data = token
        .authorization_data
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::aws(
                "getting an ECR authorization token",
                "the answer held no authorization data",
            )
        })?;
    let (username, password) = reference::decode_token(data.authorization_token().unwrap_or(""))
        .map_err(|e| Error::aws("decoding the ECR authorization token", e))?;
    drop(data.authorization_token);
    let ecr_host = reference::registry_host(data.proxy_endpoint.as_deref().unwrap_or_default());
    let push_host = args
        .registry_endpoint
        .clone()
        .unwrap_or_else(|| ecr_host.clone());
    if push_host.is_empty() {
        return Err(Error::aws(
            "getting an ECR authorization token",
            "the answer held no proxy endpoint",
        )
        .hint("pass --registry-endpoint HOST:PORT"));
    }
    if push_host != ecr_host {
        tracing::info!("pushing to {push_host} instead of {ecr_host} (--registry-endpoint)");
    }
    let credentials = Credentials {
        username,
        password,
        server: push_host.clone(),
    };
    let repository = format!("{push_host}/{}", args.repository);

    // What the registry holds under each tag: this also proves the credentials work before
    // anything is created.
    let mut held = Vec::new();
    for tag in &plan.tags {
        held.push(
            engine
                .registry_digest(&repository, tag, &credentials)
                .await?,
        );
    }
    let local_digest =
        reference::repo_digest(local.repo_digests.as_deref().unwrap_or(&[]), &repository);

    // The repository.
    let (ecr_uri, arn) = match existing {
        Some(repo) => {
            tracing::debug!("repository {} exists: left as it is", args.repository);
            (repo.repository_uri, repo.repository_arn)
        }
        None => {
            let encryption = match &args.kms_key {
                Some(key) => format!("KMS key {key}"),
                None => "AES256".to_string(),
            };
            let action = format!(
                "create repository {} (scan on push: {}, tags: {}, encryption: {encryption})",
                args.repository,
                if args.scan_on_push { "on" } else { "off" },
                if args.immutable_tags {
                    "immutable"
                } else {
                    "mutable"
                },
            );
            if ctx.apply(action) {
                let created = create_repository(&ctx, args).await?;
                (created.repository_uri, created.repository_arn)
            } else {
                (Some(format!("{ecr_host}/{}", args.repository)), None)
            }
        }
    };

    // The push, unless every tag already holds the local image's digest.
    let converged = local_digest.is_some() && held.iter().all(|h| *h == local_digest);
    let mut digest = local_digest.clone();
    let mut changed_tags = !converged;
    let mut pushed_layers = 0;
    let mut existing_layers = 0;
    if converged {
        tracing::info!(
            "{repository} already holds {} under {}: nothing to push",
            local_digest.as_deref().unwrap_or_default(),
            plan.tags.join(", ")
        );
    } else {
        for tag in &plan.tags {
            if !ctx.apply(format!("push {repository}:{tag}")) {
                continue;
            }
            engine.tag(&plan.source, &repository, tag).await?;
            let outcome = engine
                .push(&repository, tag, &credentials, layers, &progress)
                .await?;
            pushed_layers += outcome.layers_pushed;
            existing_layers += outcome.layers_existing;
            let this = match outcome.digest {
                Some(d) => Some(d),
                None => engine
                    .local_image(&format!("{repository}:{tag}"))
                    .await?
                    .and_then(|i| {
                        reference::repo_digest(
                            i.repo_digests.as_deref().unwrap_or(&[]),
                            &repository,
                        )
                    }),
            };
            if digest.is_some() && this.is_some() && digest != this {
                tracing::debug!("the pushed digest differs from the one the engine knew");
            }
            digest = this.or(digest);
        }
        if !ctx.dry_run {
            // A push that found every tag already holding the pushed digest changed nothing.
            changed_tags = !held.iter().all(|h| h.is_some() && *h == digest);
        }
    }

    let changed = ctx.report().changed && (created_repository(&ctx, args) || changed_tags);
    let digest = digest.unwrap_or_default();
    let repository_uri = repository.clone();
    let first_tag = plan.tags.first().cloned().unwrap_or_default();
    let image_uri = if digest.is_empty() {
        String::new()
    } else {
        format!("{repository_uri}@{digest}")
    };
    let mut report = ctx
        .report()
        .changed(changed)
        .output("IMAGE_URI", image_uri)
        .output("IMAGE_TAG_URI", format!("{repository_uri}:{first_tag}"))
        .output("IMAGE_DIGEST", digest.clone())
        .output("REPOSITORY_URI", repository_uri)
        .detail("tags", plan.tags.clone())
        .detail("layers_pushed", pushed_layers)
        .detail("layers_existing", existing_layers);
    if let Some(uri) = ecr_uri {
        report = report.detail("ecr_repository_uri", uri);
    }
    if let Some(arn) = arn {
        report = report.detail("repository_arn", arn);
    }
    if digest.is_empty() && ctx.dry_run {
        report = report.note("the digest is known after the first push (dry run)");
    }
    Ok(report)
}

/// Whether the run created the repository (the one change that is not a push).
fn created_repository(ctx: &Ctx, args: &Args) -> bool {
    ctx.actions()
        .iter()
        .any(|a| a.starts_with(&format!("create repository {} ", args.repository)))
}

async fn create_repository(ctx: &Ctx, args: &Args) -> Result<aws_sdk_ecr::types::Repository> {
    let encryption = match &args.kms_key {
        Some(key) => EncryptionConfiguration::builder()
            .encryption_type(EncryptionType::Kms)
            .kms_key(key),
        None => EncryptionConfiguration::builder().encryption_type(EncryptionType::Aes256),
    }
    .build()
    .map_err(|e| Error::aws("building the encryption configuration", e))?;
    let tag = Tag::builder()
        .key(MANAGED_BY.0)
        .value(MANAGED_BY.1)
        .build()
        .map_err(|e| Error::aws("building the repository tag", e))?;
    let out = ctx
        .ecr()
        .create_repository()
        .repository_name(&args.repository)
        .set_registry_id(args.registry_id.clone())
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(args.scan_on_push)
                .build(),
        )
        .image_tag_mutability(if args.immutable_tags {
            ImageTagMutability::Immutable
        } else {
            ImageTagMutability::Mutable
        })
        .encryption_configuration(encryption)
        .tags(tag)
        .send()
        .await
        .context(format!("creating repository {}", args.repository))?;
    out.repository
        .ok_or_else(|| Error::aws("creating repository", "the answer held no repository"))
}

/// The registry host of a reference (`docker.io` when it names none), for pull credentials.
fn pull_registry(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "https://index.docker.io/v1/".to_string(),
    }
}

async fn delete(ctx: &Ctx, args: &Args) -> Result<Report> {
    let Some(repo) = describe_repository(ctx, args).await? else {
        tracing::info!(
            "repository {} does not exist: nothing to delete",
            args.repository
        );
        return Ok(ctx.report());
    };
    let arn = repo.repository_arn.clone().unwrap_or_default();
    let tags = ctx
        .ecr()
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .context(format!(
            "listing the tags of repository {}",
            args.repository
        ))?;
    let managed = tags
        .tags
        .unwrap_or_default()
        .iter()
        .any(|t| t.key == MANAGED_BY.0 && t.value == MANAGED_BY.1);
    if !managed {
        return Err(Error::input(format!(
            "repository {} is not tagged {}={}: ecskit deletes only what it created",
            args.repository, MANAGED_BY.0, MANAGED_BY.1
        ))
        .hint("delete it with the AWS console or CLI if it really should go"));
    }
    let images = ctx
        .ecr()
        .list_images()
        .repository_name(&args.repository)
        .set_registry_id(args.registry_id.clone())
        .send()
        .await
        .context(format!(
            "listing the images of repository {}",
            args.repository
        ))?;
    let count = images.image_ids.map_or(0, |i| i.len());
    if count > 0 && !args.force {
        return Err(Error::input(format!(
            "repository {} still holds {count} image(s)",
            args.repository
        ))
        .hint("pass --force to delete it with its images"));
    }
    if ctx.apply(format!("delete repository {}", args.repository)) {
        ctx.ecr()
            .delete_repository()
            .repository_name(&args.repository)
            .set_registry_id(args.registry_id.clone())
            .force(args.force)
            .send()
            .await
            .context(format!("deleting repository {}", args.repository))?;
    }
    Ok(ctx
        .report()
        .output("REPOSITORY_URI", repo.repository_uri.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(argv: &[&str]) -> Args {
        let mut full = vec!["image-push"];
        full.extend_from_slice(argv);
        Args::try_parse_from(full).unwrap()
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let args = parse(&[
            "app:1",
            "--repository",
            "Bad_Repo",
            "--tag",
            "x:y",
            "--registry-id",
            "12",
        ]);
        let err = check(&args, || Ok(String::new())).err().unwrap();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("--repository"), "{text}");
        assert!(text.contains("--tag"), "{text}");
        assert!(text.contains("--registry-id"), "{text}");
    }

    #[test]
    fn default_tag_comes_from_the_source() {
        let plan = check(&parse(&["app:1.2", "--repository", "team/app"]), || {
            Ok(String::new())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.tags, vec!["1.2"]);
    }

    #[test]
    fn pull_password_is_read_and_trimmed() {
        let args = parse(&[
            "reg:5000/app:1",
            "--repository",
            "app",
            "--pull",
            "--pull-username",
            "u",
            "--pull-password-stdin",
        ]);
        let plan = check(&args, || Ok("s3cret\n".into())).unwrap_or_else(|e| panic!("{e}"));
        let (user, password) = plan.pull_credentials.unwrap();
        assert_eq!((user.as_str(), password.expose()), ("u", "s3cret"));
        assert_eq!(pull_registry("reg:5000/app:1"), "reg:5000");
        assert_eq!(
            pull_registry("library/nginx"),
            "https://index.docker.io/v1/"
        );
    }

    #[test]
    fn flags_that_need_each_other() {
        let argv = |a: &[&str]| {
            let mut full = vec!["image-push"];
            full.extend_from_slice(a);
            Args::try_parse_from(full)
        };
        assert!(
            argv(&["--repository", "app"]).is_err(),
            "SOURCE is required"
        );
        assert!(argv(&["--repository", "app", "--delete"]).is_ok());
        assert!(argv(&["app:1", "--repository", "app", "--delete"]).is_err());
        let problem = |a: &[&str]| {
            let err = check(&argv(a).unwrap(), || Ok("pw".into())).err().unwrap();
            assert_eq!(err.exit_code(), 2);
            err.to_string()
        };
        assert!(problem(&["app:1", "--repository", "app", "--force"]).contains("--force"));
        assert!(
            problem(&["app:1", "--repository", "app", "--pull-username", "u"])
                .contains("--pull-password-stdin")
        );
        assert!(
            problem(&[
                "app:1",
                "--repository",
                "app",
                "--pull",
                "--pull-password-stdin"
            ])
            .contains("give both")
        );
    }
}
