//! image-push: tag a local image and push it to an ECR repository through the Docker Engine.
//!
//! The step creates the repository when it is missing (scan on push, tag mutability,
//! encryption, tagged `managed-by=ecskit`), asks ECR for an authorization token, decodes it
//! into registry credentials held in a [`Secret`], and hands them to the engine for this push
//! only. Before pushing it asks the registry (through the engine) which digest each requested
//! tag holds: when every tag already holds the local image's digest, nothing is pushed and the
//! step reports `changed: false`.
//!
//! The pieces: this module (flags and the input check), [`push`] (the push itself, through the
//! shared [`crate::docker`] layer), [`repository`] (describe, create, delete the ECR
//! repository) and [`reference`] (pure logic: names, tokens, URIs).

pub mod push;
pub mod reference;
pub mod repository;

use std::io::Read;

use crate::aws::{AwsArgs, Ctx};
use crate::cli::Common;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::step::Step;
use crate::{Report, validate};

#[derive(clap::Parser, Debug)]
#[command(
    name = "image-push",
    version,
    next_help_heading = "image-push",
    about = "Tag a local image and push it to an ECR repository (created if missing) through the Docker Engine.",
    after_help = "Examples:\n  image-push snaplex:4.35 --repository snaplex --tag 4.35 --tag latest\n  image-push snaplogic/snaplex:latest --pull --repository snaplex --scan-on-push --immutable-tags\n  eval \"$(image-push snaplex:4.35 --repository snaplex --output env)\"   # ECSKIT_IMAGE_URI, exported\n  image-push --repository snaplex --delete --force\n\nDelete: --delete removes the ECR repository, only when it is tagged managed-by=ecskit and holds no image. --delete --force also removes every image in it, all tags, whoever pushed them. It never touches local images or any other repository.\n\nDry run: IMAGE_URI is the URI by tag (REGISTRY/REPO:TAG) when the digest is not known before the push.\n\nReads: ECSKIT_REPOSITORY, ECSKIT_IMAGE_TAGS, ECSKIT_REGISTRY_ID, ECSKIT_REGISTRY_ENDPOINT, ECSKIT_KMS_KEY, DOCKER_HOST\nPrints: ECSKIT_IMAGE_URI (by digest), ECSKIT_IMAGE_TAG_URI, ECSKIT_IMAGE_DIGEST, ECSKIT_REPOSITORY_URI, ECSKIT_CHANGED\n\nExit codes: 0 pushed or already there; 1 AWS, engine or registry failure (refused credentials, unreachable engine); 2 bad input (no such local image, invalid repository name or tag), nothing changed."
)]
pub struct Args {
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

    /// The password for --pull when it is not read from stdin: tests set it instead of
    /// feeding stdin. Never a flag, so it never shows in `ps`.
    #[arg(skip)]
    pub pull_password: Option<Secret>,

    /// Delete the repository (only when tagged managed-by=ecskit and empty).
    #[arg(long, conflicts_with_all = ["source", "pull", "tags"])]
    pub delete: bool,

    /// With --delete: also delete every image in the repository (all tags, whoever pushed them).
    #[arg(long)]
    pub force: bool,

    // The shared flags come last, so `--help` shows the step's own flags first.
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub aws: AwsArgs,
}

crate::step_flags!(Args);

/// The image-push step.
pub struct ImagePush;

impl Step for ImagePush {
    const STEP: ecskit_contract::Step = ecskit_contract::Step::ImagePush;
    type Args = Args;
    type Checked = Plan;

    fn check(args: &Args) -> Result<Plan> {
        check(args)
    }

    async fn execute(ctx: &Ctx, args: &Args, plan: Plan) -> Result<Report> {
        if args.delete {
            return repository::delete(ctx, args).await;
        }
        // The engine is connected here, not in check: reaching it is not input checking, and
        // an unreachable engine is exit 1.
        let engine = crate::docker::Engine::connect().await?;
        push::push(ctx, &engine, args, plan).await
    }
}

/// The input, checked. Every problem is collected before anything is called.
pub struct Plan {
    source: String,
    tags: Vec<String>,
    pull_credentials: Option<(String, Secret)>,
}

fn check(args: &Args) -> Result<Plan> {
    let mut problems = Vec::new();
    if let Err(p) = validate::repository_name(&args.repository) {
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
            if let Err(p) = validate::image_tag(t) {
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
        // Reading the password is input gathering, so it happens here, before any call.
        match pull_password(args) {
            Ok(p) => {
                if p.expose().is_empty() {
                    problems.push("--pull-password-stdin: stdin held no password".to_string());
                }
                pull_credentials = Some((user.clone(), p));
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

/// The `--pull-password-stdin` password, without its line ending: the one a test set in
/// [`Args::pull_password`], else stdin.
fn pull_password(args: &Args) -> std::io::Result<Secret> {
    let raw = match &args.pull_password {
        Some(p) => p.expose().to_string(),
        None => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
    };
    Ok(Secret::new(raw.trim_end_matches(['\r', '\n'])))
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
        let err = check(&args).err().unwrap();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("--repository"), "{text}");
        assert!(text.contains("--tag"), "{text}");
        assert!(text.contains("--registry-id"), "{text}");
    }

    #[test]
    fn default_tag_comes_from_the_source() {
        let plan = check(&parse(&["app:1.2", "--repository", "team/app"]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.tags, vec!["1.2"]);
    }

    #[test]
    fn pull_password_is_read_and_trimmed() {
        let mut args = parse(&[
            "reg:5000/app:1",
            "--repository",
            "app",
            "--pull",
            "--pull-username",
            "u",
            "--pull-password-stdin",
        ]);
        args.pull_password = Some(Secret::new("s3cret\n"));
        let plan = check(&args).unwrap_or_else(|e| panic!("{e}"));
        let (user, password) = plan.pull_credentials.unwrap();
        assert_eq!((user.as_str(), password.expose()), ("u", "s3cret"));
        assert_eq!(push::pull_registry("reg:5000/app:1"), "reg:5000");
        assert_eq!(
            push::pull_registry("library/nginx"),
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
            let mut args = argv(a).unwrap();
            args.pull_password = Some(Secret::new("pw"));
            let err = check(&args).err().unwrap();
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
