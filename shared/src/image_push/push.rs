//! The push of image-push: the local image, the registry credentials from ECR's token, what
//! each tag already holds, the repository, then the tag + push of each tag that needs it.

use super::{Args, Plan, reference, repository};
use crate::Report;
use crate::aws::Ctx;
use crate::docker::{Credentials, Engine};
use crate::error::{Error, Result};
use ecskit_contract::outputs;

pub async fn push(ctx: &Ctx, engine: &Engine, args: &Args, plan: Plan) -> Result<Report> {
    // The local image first: a missing image is bad input, and nothing has been called yet.
    if args.pull {
        if ctx.dry_run {
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
            ctx.progress.println(format!("pulling {}", plan.source));
            engine.pull(&plan.source, creds.as_ref()).await?;
        }
    }
    let Some(local) = engine.local_image(&plan.source).await? else {
        if ctx.dry_run && args.pull {
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

    let existing = repository::describe(ctx, args).await?;
    let (push_host, ecr_host, credentials) = registry_credentials(ctx, args).await?;
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
    let mut created = false;
    let (ecr_uri, arn) = match existing {
        Some(repo) => {
            tracing::debug!("repository {} exists: left as it is", args.repository);
            (repo.repository_uri, repo.repository_arn)
        }
        None => {
            created = true;
            match repository::create(ctx, args).await? {
                Some(repo) => (repo.repository_uri, repo.repository_arn),
                None => (Some(format!("{ecr_host}/{}", args.repository)), None),
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
                .push(&repository, tag, &credentials, layers, &ctx.progress)
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

    let changed = ctx.report().changed && (created || changed_tags);
    let digest = digest.unwrap_or_default();
    let first_tag = plan.tags.first().cloned().unwrap_or_default();
    let tag_uri = format!("{repository}:{first_tag}");
    let image_uri = reference::image_uri(&repository, &digest, &tag_uri, ctx.dry_run);
    let mut report = ctx
        .report()
        .changed(changed)
        .output(outputs::IMAGE_URI, image_uri)
        .output(outputs::IMAGE_TAG_URI, tag_uri)
        .output(outputs::IMAGE_DIGEST, digest.clone())
        .output(outputs::REPOSITORY_URI, repository)
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
        report = report.note(
            "dry run: the digest is known after the push, so IMAGE_URI names the image by tag",
        );
    }
    Ok(report)
}

/// The host to push to, the host ECR named, and the registry credentials decoded from ECR's
/// authorization token (kept in a `Secret`; the token itself is dropped at once).
async fn registry_credentials(ctx: &Ctx, args: &Args) -> Result<(String, String, Credentials)> {
    let login = crate::docker::ecr_login(ctx, args.registry_id.clone().map(|id| vec![id])).await?;
    let (ecr_host, username, password) = (login.host, login.username, login.password);
    let push_host =
        reference::push_host(args.registry_endpoint.as_deref(), &ecr_host).map_err(|e| {
            Error::aws("getting an ECR authorization token", e)
                .hint("pass --registry-endpoint HOST:PORT to push to another registry")
        })?;
    if push_host != ecr_host {
        tracing::info!("pushing to {push_host} instead of {ecr_host} (--registry-endpoint)");
    }
    let credentials = Credentials {
        username,
        password,
        server: push_host.clone(),
    };
    Ok((push_host, ecr_host, credentials))
}

/// The registry host of a reference (`docker.io` when it names none), for pull credentials.
pub(super) fn pull_registry(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "https://index.docker.io/v1/".to_string(),
    }
}
