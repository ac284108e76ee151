//! Which registry hosts get the caller's ECR credentials: the one matcher that image-push,
//! verify and the local run share.
//!
//! The ECR token is twelve hours of push and pull as the caller, so it goes only to a host that
//! is ECR's, matched whole: `ACCOUNT.dkr.ecr.REGION.amazonaws.com`,
//! `ACCOUNT.dkr.ecr.REGION.amazonaws.com.cn` and `ACCOUNT.dkr.ecr-fips.REGION.amazonaws.com`
//! (a 12-digit account, a region label of AWS's shape), or to exactly the registry the user
//! named in `ECSKIT_REGISTRY_ENDPOINT` (the local stack's registry). Everything else, however
//! much it looks like ECR (`….amazonaws.com.example.net`, an extra label, `user@`, `:443`, a
//! trailing dot, an empty label), is not ECR and gets no credentials.
//!
//! Upper case is refused rather than folded: DNS would send `…DKR.ECR…` to the same place,
//! but the engine keys credentials by the host as written, and ECR never prints its hosts that
//! way; refusing the non-canonical form means the token never leaves for a host spelled in a
//! way no ECR answer produced.

/// An ECR registry host, parsed: where the repository ARN of an image on it lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcrHost {
    pub account: String,
    pub region: String,
    /// `dkr.ecr-fips`: the FIPS endpoint.
    pub fips: bool,
}

impl EcrHost {
    /// The host's partition: `aws-cn` for China's regions (the `.com.cn` hosts), `aws-us-gov`
    /// for GovCloud, else `aws`.
    pub fn partition(&self) -> &'static str {
        crate::iam::policy::partition(&self.region)
    }

    /// `arn:PARTITION:ecr:REGION:ACCOUNT:repository/REPO`: the repository an image names,
    /// in the image's own account and region (not the caller's).
    pub fn repository_arn(&self, repository: &str) -> String {
        format!(
            "arn:{}:ecr:{}:{}:repository/{repository}",
            self.partition(),
            self.region,
            self.account
        )
    }
}

/// A registry the caller's ECR credentials may go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registry {
    /// One of ECR's own hosts.
    Ecr(EcrHost),
    /// Exactly the `ECSKIT_REGISTRY_ENDPOINT` the user set (the local stack's registry).
    Endpoint(String),
}

/// `host` as an ECR host, or `None` when it is not exactly one of ECR's forms.
pub fn parse_host(host: &str) -> Option<EcrHost> {
    let (rest, china) = match host.strip_suffix(".amazonaws.com.cn") {
        Some(rest) => (rest, true),
        None => (host.strip_suffix(".amazonaws.com")?, false),
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let [account, "dkr", service, region] = labels[..] else {
        return None;
    };
    let fips = match service {
        "ecr" => false,
        // ECR has no FIPS endpoint in China.
        "ecr-fips" if !china => true,
        _ => return None,
    };
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if !account_ok || !region_label(region) || china != region.starts_with("cn-") {
        return None;
    }
    Some(EcrHost {
        account: account.to_string(),
        region: region.to_string(),
        fips,
    })
}

/// A region label of AWS's shape: `us-west-2`, `cn-north-1`, `us-gov-east-1`,
/// `ap-southeast-5`: two lower-case letters, one or two lower-case words, a number.
fn region_label(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let word = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase());
    matches!(parts.len(), 3 | 4)
        && parts[0].len() == 2
        && word(parts[0])
        && parts[1..parts.len() - 1].iter().all(|w| word(w))
        && parts
            .last()
            .is_some_and(|n| (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The registry `host` is, when the caller's ECR credentials may go there: one of ECR's hosts,
/// or exactly the `ECSKIT_REGISTRY_ENDPOINT` the user set.
pub fn registry(host: &str) -> Option<Registry> {
    let endpoint = std::env::var("ECSKIT_REGISTRY_ENDPOINT").ok();
    if endpoint
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e == host)
    {
        return Some(Registry::Endpoint(host.to_string()));
    }
    parse_host(host).map(Registry::Ecr)
}

/// Whether the caller's ECR credentials may go to `host` (see [`registry`]).
pub fn is_ecr(host: &str) -> bool {
    registry(host).is_some()
}

/// Whether `host` looks like ECR without being one of its forms: worth a word to the user,
/// who may have meant ECR (no credentials go there either way).
pub fn looks_like_ecr(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    parse_host(host).is_none() && (h.contains(".dkr.ecr") || h.contains("amazonaws.com"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "123456789012.dkr.ecr.us-west-2.amazonaws.com";

    #[test]
    fn ecrs_own_forms_are_parsed() {
        let h = parse_host(REAL).unwrap();
        assert_eq!(
            (h.account.as_str(), h.region.as_str(), h.fips),
            ("123456789012", "us-west-2", false)
        );
        assert_eq!(
            h.repository_arn("team/web"),
            "arn:aws:ecr:us-west-2:123456789012:repository/team/web"
        );
        let cn = parse_host("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn").unwrap();
        assert_eq!(
            cn.repository_arn("web"),
            "arn:aws-cn:ecr:cn-north-1:210987654321:repository/web"
        );
        let fips = parse_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").unwrap();
        assert!(fips.fips);
        assert_eq!(fips.partition(), "aws-us-gov");
        assert!(parse_host("123456789012.dkr.ecr.ap-southeast-5.amazonaws.com").is_some());
    }

    #[test]
    fn lookalikes_are_not_ecr() {
        for host in [
            "123456789012.dkr.ecr.us-west-2.amazonaws.com.example.net",
            "123456789012.dkr.ecr.us-west-2.amazonaws.com.",
            "123456789012.dkr.ecr.us-west-2.amazonaws.com:443",
            "user@123456789012.dkr.ecr.us-west-2.amazonaws.com",
            "123456789012.dkr.ecr.us-west-2.amazonaws.com@evil.example",
            "evil.123456789012.dkr.ecr.us-west-2.amazonaws.com",
            "123456789012.dkr.ecr.us-west-2.evil.amazonaws.com",
            "123456789012.dkr.ecr..amazonaws.com",
            "123456789012..dkr.ecr.us-west-2.amazonaws.com",
            "123456789012.DKR.ECR.US-WEST-2.AMAZONAWS.COM",
            "123456789012.dkr.ecr.us-west-2.AMAZONAWS.com",
            "1234567890123.dkr.ecr.us-west-2.amazonaws.com",
            "12345678901a.dkr.ecr.us-west-2.amazonaws.com",
            "123456789012.dkr.ecr.example.amazonaws.com",
            "123456789012.dkr.ecr.us-west-2.amazonaws.com.cn",
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com",
            "123456789012.dkr.ecr-fips.cn-north-1.amazonaws.com.cn",
            "123456789012.dkr.s3.us-west-2.amazonaws.com",
            "amazonaws.com",
            "",
        ] {
            assert_eq!(parse_host(host), None, "{host}");
            assert!(!is_ecr(host), "{host}");
        }
        assert!(looks_like_ecr(
            "123456789012.dkr.ecr.us-west-2.amazonaws.com.example.net"
        ));
        assert!(!looks_like_ecr(REAL));
        assert!(!looks_like_ecr("ghcr.io"));
    }
}
