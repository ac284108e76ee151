//! The registered revisions of a family: list the ACTIVE ones, read the latest back as JSON,
//! and register a document as it is, converging when an answer is lost.

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::types::{SortOrder, TaskDefinitionField, TaskDefinitionStatus};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use serde_json::Value;

use super::document;
use crate::error::{AwsContext, Error, Result};

/// A registered revision, as describe-task-definition returned it (register form, with tags).
#[derive(Clone, Debug)]
pub struct Revision {
    pub arn: String,
    pub revision: i64,
    pub doc: Value,
}

/// Registers `doc` as it is, in one attempt. The builder gets the family and a one-container
/// minimum so it builds; [`crate::aws::json_body`] then replaces the serialized body with the
/// document before the request is signed.
///
/// The SDK's own retry is off for this one call: a register whose answer was lost has made a
/// revision, and sending it again blindly would make a second, identical one.
/// [`register_converging`] retries instead, after looking at what is registered.
pub async fn register(ecs: &aws_sdk_ecs::Client, doc: &Value) -> Result<RegisterOutput> {
    let family = doc["family"].as_str().unwrap_or_default().to_string();
    send_register(ecs, doc)
        .await?
        .context(format!("registering task definition {family}"))
}

type RegisterOutput =
    aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput;
type RegisterResult = std::result::Result<
    RegisterOutput,
    SdkError<
        aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionError,
        HttpResponse,
    >,
>;

async fn send_register(ecs: &aws_sdk_ecs::Client, doc: &Value) -> Result<RegisterResult> {
    let family = doc["family"].as_str().unwrap_or_default().to_string();
    let first = &doc["containerDefinitions"][0];
    let minimum = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name(first["name"].as_str().unwrap_or_default())
        .image(first["image"].as_str().unwrap_or_default())
        .build();
    Ok(ecs
        .register_task_definition()
        .family(family)
        .container_definitions(minimum)
        .customize()
        .config_override(
            aws_sdk_ecs::config::Builder::default().retry_config(RetryConfig::disabled()),
        )
        .mutate_request(crate::aws::json_body(doc))
        .send()
        .await)
}

/// How many times a register whose outcome is unknown is tried in all.
const REGISTER_ATTEMPTS: u32 = 4;

/// Registers `doc`, and when the outcome of an attempt is unknown (a 5xx, a throttle, a
/// timeout, a lost connection), first reads the latest ACTIVE revision: when it is newer than
/// `before` and means the same as `doc`, the lost attempt made it, and that revision is the
/// answer. Only otherwise is the register sent again. Returns the ARN and the revision.
pub async fn register_converging(
    ecs: &aws_sdk_ecs::Client,
    clock: &crate::aws::Clock,
    doc: &Value,
    before: Option<i64>,
) -> Result<(String, i64)> {
    let family = doc["family"].as_str().unwrap_or_default().to_string();
    let context = format!("registering task definition {family}");
    let mut attempt = 1;
    loop {
        let err = match send_register(ecs, doc).await? {
            Ok(out) => {
                let td = out.task_definition();
                let arn = td
                    .and_then(|t| t.task_definition_arn())
                    .ok_or_else(|| Error::aws(&context, "no ARN in the answer"))?;
                let revision = td.map_or(0, |t| i64::from(t.revision()));
                return Ok((arn.to_string(), revision));
            }
            Err(e) => e,
        };
        if !outcome_unknown(&err) || attempt >= REGISTER_ATTEMPTS {
            return Err(err).context(context);
        }
        tracing::info!(
            "the answer to {context} did not come back ({}): looking at what is registered before trying again",
            crate::error::sdk_code(&err).unwrap_or("no answer")
        );
        clock
            .sleep(std::time::Duration::from_millis(500 << attempt))
            .await;
        if let Some(latest) = latest_active(ecs, &family).await?
            && before.is_none_or(|b| latest.revision > b)
            && super::compare::same(&latest.doc, doc)
        {
            tracing::info!(
                "{family}:{} is the document: the lost attempt registered it",
                latest.revision
            );
            return Ok((latest.arn, latest.revision));
        }
        attempt += 1;
    }
}

/// Whether a failed register may still have been applied, or was refused for a reason that
/// passes (throttling): a 5xx or throttle answer, a timeout, a broken connection.
fn outcome_unknown<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => {
            s.raw().status().as_u16() >= 500
                || crate::error::sdk_is(err, &["ThrottlingException", "ServerException"])
        }
        _ => false,
    }
}

/// Copies the raw body of an answer, so the revision can be compared as JSON: the typed
/// output has no serde, and reading it back field by field would drop what it forgot.
#[derive(Debug, Clone, Default)]
struct RawResponse(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for RawResponse {
    fn name(&self) -> &'static str {
        "ecskit-raw-response"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes.to_vec());
        }
        Ok(())
    }
}

/// The ACTIVE revision ARNs of a family, newest first.
pub async fn active_revisions(
    ecs: &aws_sdk_ecs::Client,
    family: &str,
) -> Result<Vec<(i64, String)>> {
    let mut pages = ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.context(format!("listing the revisions of task definition {family}"))?;
        for arn in page.task_definition_arns() {
            // `familyPrefix` is a prefix on some implementations: keep this family only.
            if let Some((name, rev)) = arn.rsplit('/').next().and_then(|s| s.rsplit_once(':'))
                && name == family
                && let Ok(rev) = rev.parse::<i64>()
            {
                found.push((rev, arn.to_string()));
            }
        }
    }
    found.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(found)
}

/// The latest ACTIVE revision of a family with its tags, in register form.
pub async fn latest_active(ecs: &aws_sdk_ecs::Client, family: &str) -> Result<Option<Revision>> {
    let Some((revision, arn)) = active_revisions(ecs, family).await?.into_iter().next() else {
        return Ok(None);
    };
    let raw = RawResponse::default();
    ecs.describe_task_definition()
        .task_definition(&arn)
        .include(TaskDefinitionField::Tags)
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .context(format!("describing task definition {arn}"))?;
    let bytes = raw
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    let answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::aws(
            format!("describing task definition {arn}"),
            format!("the answer is not JSON: {e}"),
        )
    })?;
    let (doc, _) = document::unwrap_and_strip(answer)
        .map_err(|e| Error::aws(format!("describing task definition {arn}"), e))?;
    Ok(Some(Revision { arn, revision, doc }))
}
