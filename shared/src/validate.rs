//! Checks of input that several steps share, run before the first AWS call. Each returns
//! `Err(problem)` as a sentence naming the value; callers prefix the flag or field and collect
//! all problems before failing with exit 2.

/// S3 bucket names: 3-63 characters of lower-case letters, digits, dots and hyphens, starting
/// and ending with a letter or digit, not an IP address, no `..`, and none of the reserved
/// prefixes and suffixes.
pub fn bucket_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("'{name}' is not a valid S3 bucket name: {why}"));
    if !(3..=63).contains(&name.len()) {
        return bad("it must be 3 to 63 characters long");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return bad("only lower-case letters, digits, '.' and '-' are allowed");
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge(name.chars().next()) || !edge(name.chars().last()) {
        return bad("it must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return bad("it must not contain '..'");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("it must not look like an IP address");
    }
    if name.starts_with("xn--") || name.starts_with("sthree-") {
        return bad("the prefixes 'xn--' and 'sthree-' are reserved");
    }
    if name.ends_with("-s3alias") || name.ends_with("--ol-s3") || name.ends_with("--x-s3") {
        return bad("the suffixes '-s3alias', '--ol-s3' and '--x-s3' are reserved");
    }
    Ok(())
}

/// An S3 key prefix as the user gives it: no leading '/', no empty or '..' segments.
/// Returns it without a trailing '/'.
pub fn s3_prefix(prefix: &str) -> Result<String, String> {
    let p = prefix.trim_end_matches('/');
    if p.starts_with('/') {
        return Err(format!("prefix '{prefix}' must not start with '/'"));
    }
    if !p.is_empty() && p.split('/').any(|seg| seg.is_empty() || seg == "..") {
        return Err(format!(
            "prefix '{prefix}' has an empty or '..' path segment"
        ));
    }
    if p.contains('*') || p.contains('?') {
        return Err(format!(
            "prefix '{prefix}' must not contain wildcards ('*', '?')"
        ));
    }
    Ok(p.to_string())
}

/// IAM role, instance profile and policy names: 1-64 (roles, profiles) or 1-128 (policies)
/// characters of letters, digits and `+=,.@_-`.
pub fn iam_name(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() || name.len() > max {
        return Err(format!("'{name}' must be 1 to {max} characters long"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        return Err(format!(
            "'{name}' has the character '{c}': only letters, digits and +=,.@_- are allowed"
        ));
    }
    Ok(())
}

/// An IAM path: `/` or `/a/b/`.
pub fn iam_path(path: &str) -> Result<(), String> {
    if !(path.starts_with('/') && path.ends_with('/')) || path.len() > 512 || path.contains("//") {
        return Err(format!(
            "'{path}' is not an IAM path: it must begin and end with '/', like '/ecs/'"
        ));
    }
    Ok(())
}

/// An ARN, optionally of one service and resource type (`iam`, `role/`).
pub fn arn(
    value: &str,
    service: Option<&str>,
    resource_prefix: Option<&str>,
) -> Result<(), String> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let ok_shape = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && !parts[2].is_empty()
        && !parts[5].is_empty();
    if !ok_shape {
        return Err(format!(
            "'{value}' is not an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)"
        ));
    }
    if let Some(s) = service
        && parts[2] != s
    {
        return Err(format!("'{value}' is not an {s} ARN"));
    }
    if let Some(p) = resource_prefix
        && !parts[5].starts_with(p)
    {
        return Err(format!(
            "'{value}' is not an ARN of a {}",
            p.trim_end_matches('/')
        ));
    }
    let account = parts[4];
    if service != Some("s3")
        && !(account.is_empty()
            || account == "aws"
            || (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())))
    {
        return Err(format!(
            "'{value}' has '{account}' where a 12-digit account id belongs"
        ));
    }
    Ok(())
}

/// A role ARN: `arn:aws:iam::123456789012:role/NAME`.
pub fn role_arn(value: &str) -> Result<(), String> {
    arn(value, Some("iam"), Some("role/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for good in ["my-bucket", "a.b.c", "abc", "config-123"] {
            assert_eq!(bucket_name(good), Ok(()), "{good}");
        }
        for bad in [
            "ab",
            "My_Bucket",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
        ] {
            assert!(bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(s3_prefix("app/config/"), Ok("app/config".into()));
        assert_eq!(s3_prefix(""), Ok("".into()));
        assert!(s3_prefix("/abs").is_err());
        assert!(s3_prefix("a//b").is_err());
        assert!(s3_prefix("a/../b").is_err());
        assert!(s3_prefix("a/*").is_err());
    }

    #[test]
    fn iam_names() {
        assert_eq!(iam_name("ecsInstanceRole", 64), Ok(()));
        assert!(iam_name("", 64).is_err());
        assert!(iam_name("has space", 64).is_err());
        assert!(iam_name(&"a".repeat(65), 64).is_err());
    }

    #[test]
    fn arns() {
        assert_eq!(role_arn("arn:aws:iam::123456789012:role/app-task"), Ok(()));
        assert_eq!(role_arn("arn:aws:iam::123456789012:role/path/x"), Ok(()));
        assert!(role_arn("arn:aws:iam::123456789012:user/x").is_err());
        assert!(role_arn("arn:aws:iam::12345:role/x").is_err());
        assert!(role_arn("app-task").is_err());
        assert_eq!(
            arn(
                "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                Some("iam"),
                Some("policy/")
            ),
            Ok(())
        );
    }
}
