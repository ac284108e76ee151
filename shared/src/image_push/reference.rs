//! Pure logic of image-push: names, tags, endpoints, the ECR token, and the lines of the
//! engine's push stream. Nothing here talks to AWS or the engine, so it is unit-tested.

use base64::Engine as _;

use crate::secret::Secret;

pub use ecskit_contract::validate::{image_tag as tag, repository_name};

/// `HOST:PORT` (or `HOST`) without a scheme or a path.
pub fn endpoint(value: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "'{value}' is not a registry endpoint: give HOST:PORT without a scheme or path, like 127.0.0.1:5000"
        ))
    };
    if value.is_empty() || value.contains("://") || value.contains('/') || value.contains(' ') {
        return bad();
    }
    if let Some((host, port)) = value.rsplit_once(':')
        && (host.is_empty() || port.parse::<u16>().is_err())
    {
        return bad();
    }
    Ok(())
}

/// A 12-digit AWS account id (`--registry-id`).
pub fn registry_id(value: &str) -> Result<(), String> {
    if value.len() == 12 && value.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "'{value}' is not a registry id: it is the 12-digit account id of the registry"
        ))
    }
}

/// A local image reference: a name with an optional tag or digest, or an image id.
pub fn source(value: &str) -> Result<(), String> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "'{value}' is not an image reference: give NAME:TAG or an image id"
        ));
    }
    Ok(())
}

/// The tag of a reference like `registry:5000/app:1.2`, if it names one (ids and digests don't).
pub fn tag_of(reference: &str) -> Option<&str> {
    if reference.contains('@') {
        return None;
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.split_once(':').map(|(_, t)| t)
}

/// The tags to push when none is given: the source's own tag, else `latest`.
pub fn default_tags(source: &str) -> Vec<String> {
    let looks_like_id = source.starts_with("sha256:")
        || (source.len() >= 12 && source.chars().all(|c| c.is_ascii_hexdigit()));
    match tag_of(source) {
        Some(t) if !looks_like_id => vec![t.to_string()],
        _ => vec!["latest".to_string()],
    }
}

/// `https://123.dkr.ecr.us-west-2.amazonaws.com` -> `123.dkr.ecr.us-west-2.amazonaws.com`.
pub fn registry_host(proxy_endpoint: &str) -> String {
    proxy_endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// The ECR token is base64 of `USER:PASSWORD`. The error never contains the token.
pub fn decode_token(token: &str) -> Result<(String, Secret), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| "the ECR authorization token is not base64".to_string())?;
    let text = String::from_utf8(bytes)
        .map_err(|_| "the ECR authorization token is not text".to_string())?;
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() => {
            Ok((user.to_string(), Secret::new(password.to_string())))
        }
        _ => Err("the ECR authorization token is not of the form USER:PASSWORD".to_string()),
    }
}

/// The digest in the engine's last push line, `TAG: digest: sha256:... size: N`.
pub fn push_digest(status: &str) -> Option<String> {
    let rest = status.split_once(": digest: ")?.1;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

/// The local image's digest in `repository` (`HOST/REPO`), from its `RepoDigests`.
pub fn repo_digest(repo_digests: &[String], repository: &str) -> Option<String> {
    repo_digests.iter().find_map(|d| {
        let (repo, digest) = d.split_once('@')?;
        (repo == repository).then(|| digest.to_string())
    })
}

/// Whether an engine or registry message says the credentials were refused.
pub fn is_auth_refusal(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("unauthorized")
        || m.contains("authentication required")
        || m.contains("access to the resource is denied")
        || m.contains("no basic auth credentials")
        || m.contains("denied:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for good in ["app", "team/app", "a.b-c_d/e2", "my-app/api/v2"] {
            assert_eq!(repository_name(good), Ok(()), "{good}");
        }
        for bad in [
            "a", "App", "app/", "/app", "a//b", "a..b", "-app", "app-", "a b", "a__-b",
        ] {
            assert!(repository_name(bad).is_err(), "{bad}");
        }
        assert!(repository_name(&"a".repeat(257)).is_err());
    }

    #[test]
    fn tags() {
        for good in ["latest", "v1.2.3", "1", "build_42-rc.1", "A"] {
            assert_eq!(tag(good), Ok(()), "{good}");
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", "has space"] {
            assert!(tag(bad).is_err(), "{bad}");
        }
        assert!(tag(&"a".repeat(129)).is_err());
    }

    #[test]
    fn endpoints() {
        for good in ["127.0.0.1:5000", "registry.local:443", "mirror.example.com"] {
            assert_eq!(endpoint(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "http://x:5000",
            "x:5000/path",
            "x:port",
            ":5000",
            "x:99999",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_ids() {
        assert_eq!(registry_id("123456789012"), Ok(()));
        assert!(registry_id("12345").is_err());
        assert!(registry_id("12345678901a").is_err());
    }

    #[test]
    fn default_tag_is_the_sources_or_latest() {
        assert_eq!(default_tags("app:1.2"), vec!["1.2"]);
        assert_eq!(default_tags("localhost:5000/app:dev"), vec!["dev"]);
        assert_eq!(default_tags("localhost:5000/app"), vec!["latest"]);
        assert_eq!(default_tags("app@sha256:abc"), vec!["latest"]);
        assert_eq!(default_tags("sha256:0123456789ab"), vec!["latest"]);
        assert_eq!(default_tags("0123456789ab"), vec!["latest"]);
    }

    #[test]
    fn tokens_decode_into_user_and_secret() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:123456789012-auth-token");
        let (user, password) = decode_token(&token).unwrap();
        assert_eq!(user, "AWS");
        assert_eq!(password.expose(), "123456789012-auth-token");
        assert_eq!(format!("{password:?}"), "Secret(***)");
        let err = decode_token("!!not base64!!").unwrap_err();
        assert!(!err.contains("!!"), "{err}");
        let no_colon = base64::engine::general_purpose::STANDARD.encode("nocolon");
        assert!(decode_token(&no_colon).is_err());
    }

    #[test]
    fn hosts_lose_the_scheme() {
        assert_eq!(
            registry_host("https://123456789012.dkr.ecr.us-west-2.amazonaws.com"),
            "123456789012.dkr.ecr.us-west-2.amazonaws.com"
        );
    }

    #[test]
    fn push_digest_from_the_last_line() {
        assert_eq!(
            push_digest("v1: digest: sha256:abcd size: 528").as_deref(),
            Some("sha256:abcd")
        );
        assert_eq!(push_digest("Pushed"), None);
        assert_eq!(push_digest("Layer already exists"), None);
    }

    #[test]
    fn repo_digest_matches_the_whole_repository() {
        let digests = vec![
            "127.0.0.1:5000/app@sha256:aa".to_string(),
            "127.0.0.1:5000/app-other@sha256:bb".to_string(),
        ];
        assert_eq!(
            repo_digest(&digests, "127.0.0.1:5000/app").as_deref(),
            Some("sha256:aa")
        );
        assert_eq!(repo_digest(&digests, "127.0.0.1:5000/ap"), None);
    }

    #[test]
    fn auth_refusals() {
        assert!(is_auth_refusal("unauthorized: authentication required"));
        assert!(is_auth_refusal(
            "denied: requested access to the resource is denied"
        ));
        assert!(!is_auth_refusal("manifest unknown"));
    }
}
