//! Pure logic of image-push: endpoints, registry ids, sources, default tags, the ECR token and
//! the URIs the step prints. Nothing here talks to AWS or the engine, so it is unit-tested.
//! (Repository names and tags are the contract's: `ecskit_contract::validate`.)

use crate::docker::tag_of;

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

/// The tags to push when none is given: the source's own tag, else `latest`.
pub fn default_tags(source: &str) -> Vec<String> {
    let looks_like_id = source.starts_with("sha256:")
        || (source.len() >= 12 && source.chars().all(|c| c.is_ascii_hexdigit()));
    match tag_of(source) {
        Some(t) if !looks_like_id => vec![t.to_string()],
        _ => vec!["latest".to_string()],
    }
}

pub use crate::docker::{decode_token, registry_host};

/// Where the push goes, with the ECR credentials: the `--registry-endpoint` the user named, or
/// else the proxy endpoint ECR's answer named, only when that is one of ECR's own hosts
/// ([`crate::ecr`]): an answer naming any other host gets no credentials.
pub fn push_host(registry_endpoint: Option<&str>, ecr_host: &str) -> Result<String, String> {
    match registry_endpoint {
        Some(endpoint) => Ok(endpoint.to_string()),
        None if crate::ecr::parse_host(ecr_host).is_some() => Ok(ecr_host.to_string()),
        None if ecr_host.is_empty() => Err("the answer held no proxy endpoint".to_string()),
        None => Err(format!(
            "the answer names the registry '{ecr_host}', which is not an ECR host (ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]): the credentials are not sent there"
        )),
    }
}

/// The `IMAGE_URI` the step prints: by digest (`REPO@sha256:...`), which pins the image. In a
/// dry run before the first push the digest is not known yet, and the URI by tag
/// (`REPO:TAG`) is what the next step's dry run can plan with; a real run never prints an
/// empty or tag-only `IMAGE_URI` unless the engine reported no digest.
pub fn image_uri(repository: &str, digest: &str, tag_uri: &str, dry_run: bool) -> String {
    match (digest.is_empty(), dry_run) {
        (false, _) => format!("{repository}@{digest}"),
        (true, true) => tag_uri.to_string(),
        (true, false) => String::new(),
    }
}

/// The local image's digest in `repository` (`HOST/REPO`), from its `RepoDigests`.
pub fn repo_digest(repo_digests: &[String], repository: &str) -> Option<String> {
    repo_digests.iter().find_map(|d| {
        let (repo, digest) = d.split_once('@')?;
        (repo == repository).then(|| digest.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

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
    fn the_push_goes_to_the_named_endpoint_or_an_ecr_host_only() {
        let ecr = "123456789012.dkr.ecr.us-west-2.amazonaws.com";
        assert_eq!(push_host(None, ecr).as_deref(), Ok(ecr));
        assert_eq!(
            push_host(Some("127.0.0.1:5000"), ecr).as_deref(),
            Ok("127.0.0.1:5000")
        );
        let err = push_host(
            None,
            "123456789012.dkr.ecr.us-west-2.amazonaws.com.example.net",
        )
        .unwrap_err();
        assert!(err.contains("not an ECR host"), "{err}");
        assert!(push_host(None, "").is_err());
    }

    #[test]
    fn hosts_lose_the_scheme() {
        assert_eq!(
            registry_host("https://123456789012.dkr.ecr.us-west-2.amazonaws.com"),
            "123456789012.dkr.ecr.us-west-2.amazonaws.com"
        );
    }

    #[test]
    fn image_uri_is_by_digest_or_by_tag_in_a_dry_run() {
        let repo = "127.0.0.1:5000/team/app";
        let tag_uri = "127.0.0.1:5000/team/app:v1";
        assert_eq!(
            image_uri(repo, "sha256:ab", tag_uri, false),
            "127.0.0.1:5000/team/app@sha256:ab"
        );
        assert_eq!(
            image_uri(repo, "sha256:ab", tag_uri, true),
            "127.0.0.1:5000/team/app@sha256:ab"
        );
        assert_eq!(image_uri(repo, "", tag_uri, true), tag_uri);
        assert_eq!(image_uri(repo, "", tag_uri, false), "");
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
}
