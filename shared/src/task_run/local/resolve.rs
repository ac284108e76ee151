//! `environmentFiles` and `secrets`, resolved as the ECS agent resolves them: S3 env files read
//! line by line (`KEY=VALUE`, `#` comments), SSM parameters decrypted, Secrets Manager secrets
//! whole or by their `:json-key:version-stage:version-id` form. The values go into the
//! container's environment and nowhere else: they are held as [`Secret`]s and never printed.

use crate::aws::Ctx;
use crate::error::{AwsContext, Error, Result};
use crate::secret::Secret;
use crate::verify::resources::{SecretRef, s3_object, secret_ref};

/// The variables of one env file's text, in order (ECS: one `KEY=VALUE` per line, lines that
/// start with `#` and empty lines skipped, no quoting).
pub fn env_file_lines(text: &str) -> Vec<(String, Secret)> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k.trim().to_string(), Secret::new(v)))
        .collect()
}

/// The variables of every env file, in the order given (a later file's value wins, as
/// ECS's does).
pub async fn env_files(ctx: &Ctx, files: &[String]) -> Result<Vec<(String, Secret)>> {
    let mut out = Vec::new();
    for arn in files {
        let Some((bucket, key)) = s3_object(arn) else {
            return Err(Error::input(format!(
                "environmentFiles: '{arn}' is not an S3 object ARN (arn:aws:s3:::BUCKET/KEY)"
            )));
        };
        let obj = ctx
            .s3()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .context(format!("reading the environment file {arn}"))?;
        let bytes = obj
            .body
            .collect()
            .await
            .map_err(|e| Error::aws(format!("reading the environment file {arn}"), e.to_string()))?
            .into_bytes();
        out.extend(env_file_lines(&String::from_utf8_lossy(&bytes)));
    }
    Ok(out)
}

/// One secret's value; `at` names it in an error (`container app, secret API_KEY`).
pub async fn secret(ctx: &Ctx, at: &str, value_from: &str) -> Result<Secret> {
    match secret_ref(value_from) {
        SecretRef::Parameter(name) => {
            let out = ctx
                .ssm()
                .get_parameter()
                .name(&name)
                .with_decryption(true)
                .send()
                .await
                .context(format!("reading the SSM parameter {name}"))?;
            let value = out.parameter.and_then(|p| p.value).ok_or_else(|| {
                Error::aws(format!("reading the SSM parameter {name}"), "no value")
            })?;
            Ok(Secret::new(value))
        }
        SecretRef::Secret { arn, json_key } => {
            let parts: Vec<&str> = value_from.split(':').collect();
            let stage = parts.get(8).filter(|s| !s.is_empty()).copied();
            let version = parts.get(9).filter(|s| !s.is_empty()).copied();
            let out = ctx
                .secrets_manager()
                .get_secret_value()
                .secret_id(&arn)
                .set_version_stage(stage.map(str::to_string))
                .set_version_id(version.map(str::to_string))
                .send()
                .await
                .context(format!("reading the secret {arn}"))?;
            // ECS passes only secrets stored as text (SecretString) to containers; one stored
            // as SecretBinary is not supported there, so it is refused here too rather than
            // becoming an empty variable.
            let text = match (out.secret_string, out.secret_binary) {
                (Some(text), _) => text,
                (None, Some(_)) => {
                    return Err(Error::input(format!(
                        "{at}: the secret {arn} is stored as SecretBinary, which ECS does not pass to containers (only SecretString)"
                    ))
                    .hint("store the value as text (aws secretsmanager put-secret-value --secret-string, base64 if it is binary), or read it in the application with GetSecretValue"));
                }
                (None, None) => {
                    return Err(Error::aws(
                        format!("reading the secret {arn} ({at})"),
                        "the answer holds no value",
                    ));
                }
            };
            let Some(key) = json_key else {
                return Ok(Secret::new(text));
            };
            let doc: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
                Error::input(format!(
                    "{at}: {value_from} names the JSON key '{key}', and the secret is not a JSON object"
                ))
            })?;
            match doc.get(&key) {
                Some(serde_json::Value::String(s)) => Ok(Secret::new(s.clone())),
                Some(other) => Ok(Secret::new(other.to_string())),
                None => Err(Error::input(format!(
                    "{at}: the secret {arn} has no JSON key '{key}'"
                ))),
            }
        }
    }
}

/// The context secrets and env files are read with: the execution role's, as ECS's agent
/// reads them, when the caller may assume it; the caller's own otherwise. Says which.
pub async fn execution_ctx(
    ctx: &Ctx,
    execution_role: Option<&str>,
    session: &str,
) -> (Ctx, String) {
    let Some(role) = execution_role else {
        return (
            ctx.clone(),
            "the caller's credentials (the task definition names no execution role)".into(),
        );
    };
    match ctx.assume_role(role, session).await {
        Ok(assumed) => (assumed, format!("the execution role {role}")),
        Err(e) => (
            ctx.clone(),
            format!(
                "the caller's credentials (the execution role {role} could not be assumed: {e})"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_are_read_as_the_agent_reads_them() {
        let text = "# comment\nA=1\n\nB=two=2\r\n  # indented comment\nnot a pair\nC=\n";
        let got: Vec<(String, String)> = env_file_lines(text)
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("A".to_string(), "1".to_string()),
                ("B".into(), "two=2".into()),
                ("C".into(), "".into())
            ]
        );
    }
}
