//! The ECR repository of image-push: describe it, create it (converging when a lost answer
//! made the SDK send the create twice), and delete it (`--delete`, only when ecskit made it).

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
    Repository, Tag,
};

use super::Args;
use crate::Report;
use crate::aws::{Ctx, MANAGED_BY, is_managed};
use crate::error::{AwsContext, Error, Result, sdk_is};

/// The repository as ECR describes it, or `None` when it does not exist.
pub async fn describe(ctx: &Ctx, args: &Args) -> Result<Option<Repository>> {
    let answer = ctx
        .ecr()
        .describe_repositories()
        .repository_names(&args.repository)
        .set_registry_id(args.registry_id.clone())
        .send()
        .await;
    match answer {
        Ok(out) => Ok(out.repositories.unwrap_or_default().into_iter().next()),
        Err(e) if sdk_is(&e, &["RepositoryNotFoundException"]) => Ok(None),
        Err(e) => Err(e).context(format!("describing repository {}", args.repository)),
    }
}

/// What the create would do, in the user's words (logged, reported, the error's context).
pub fn create_action(args: &Args) -> String {
    let encryption = match &args.kms_key {
        Some(key) => format!("KMS key {key}"),
        None => "AES256".to_string(),
    };
    format!(
        "create repository {} (scan on push: {}, tags: {}, encryption: {encryption})",
        args.repository,
        if args.scan_on_push { "on" } else { "off" },
        if args.immutable_tags {
            "immutable"
        } else {
            "mutable"
        },
    )
}

/// Creates the repository through the gate; `None` in a dry run.
///
/// When the answer to a create is lost (a 5xx after ECR applied it), the SDK sends it again
/// and ECR answers RepositoryAlreadyExistsException. The repository is there, as asked: the
/// step describes it and goes on, rather than failing a run that did what it meant to do.
pub async fn create(ctx: &Ctx, args: &Args) -> Result<Option<Repository>> {
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
    let request = ctx
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
        .send();
    match ctx.mutate(create_action(args), request).await {
        Ok(None) => Ok(None),
        Ok(Some(out)) => out
            .repository
            .map(Some)
            .ok_or_else(|| Error::aws("creating repository", "the answer held no repository")),
        Err(e) if e.is_aws(&["RepositoryAlreadyExistsException"]) => {
            tracing::info!(
                "repository {} already exists (an earlier attempt's answer was lost): going on with it",
                args.repository
            );
            describe(ctx, args).await?.map(Some).ok_or_else(|| {
                Error::aws(
                    format!("creating repository {}", args.repository),
                    "ECR says it exists but does not describe it",
                )
            })
        }
        Err(e) => Err(e),
    }
}

/// `--delete`: the repository goes only when it is tagged managed-by=ecskit, and with its
/// images only under `--force`. Local images and other repositories are never touched.
pub async fn delete(ctx: &Ctx, args: &Args) -> Result<Report> {
    let Some(repo) = describe(ctx, args).await? else {
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
    if !is_managed(tags.tags().iter().map(|t| (t.key(), t.value()))) {
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
        .hint("pass --force to delete it with every image in it"));
    }
    let action = if count > 0 {
        format!(
            "delete repository {} with its {count} image(s)",
            args.repository
        )
    } else {
        format!("delete repository {}", args.repository)
    };
    ctx.mutate(
        action,
        ctx.ecr()
            .delete_repository()
            .repository_name(&args.repository)
            .set_registry_id(args.registry_id.clone())
            .force(args.force)
            .send(),
    )
    .await?;
    Ok(ctx.report().output(
        ecskit_contract::outputs::REPOSITORY_URI,
        repo.repository_uri.unwrap_or_default(),
    ))
}
