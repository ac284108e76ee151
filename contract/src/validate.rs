//! Checks of names and values that several steps (and the xtask's stack file) share, run before
//! the first AWS call. Each returns `Err(problem)` as a sentence naming the value; callers prefix
//! the flag or field and collect all problems before failing with exit 2.

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

/// An ECR repository name: 2-256 characters, lower-case path components of letters and digits
/// separated by single `.`, `_` or `-`, joined by `/` (ECR's own pattern).
pub fn repository_name(name: &str) -> Result<(), String> {
    if !(2..=256).contains(&name.len()) {
        return Err(format!(
            "'{name}' is not a valid ECR repository name: it must be 2 to 256 characters long"
        ));
    }
    let component_ok = |c: &str| {
        let mut prev_sep = true;
        for ch in c.chars() {
            let sep = matches!(ch, '.' | '_' | '-');
            if sep {
                if prev_sep {
                    return false;
                }
            } else if !(ch.is_ascii_lowercase() || ch.is_ascii_digit()) {
                return false;
            }
            prev_sep = sep;
        }
        !c.is_empty() && !prev_sep
    };
    if !name.split('/').all(component_ok) {
        return Err(format!(
            "'{name}' is not a valid ECR repository name: use lower-case letters and digits, \
             separated by single '.', '_' or '-', in path components joined by '/' (like 'team/app')"
        ));
    }
    Ok(())
}

/// A Docker tag: 1-128 characters of letters, digits, `_`, `.` and `-`, not starting with `.`
/// or `-`.
pub fn image_tag(tag: &str) -> Result<(), String> {
    let valid = (1..=128).contains(&tag.len())
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !tag.starts_with(['.', '-']);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "'{tag}' is not a valid image tag: 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ))
    }
}

/// ECS cluster, service, task family and container names: 1 to `max` (255) letters, digits,
/// `-` and `_`.
pub fn ecs_name(name: &str, max: usize) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' must be 1 to {max} letters, digits, '-' and '_'"
        ))
    }
}

/// capacity-create's one name of its capacity provider, Auto Scaling group and launch template:
/// what all three accept (3 to 128 letters, digits, '-', '_'), and no prefix ECS keeps for its
/// own providers (`aws`, `ecs`, `fargate`, in any case).
pub fn capacity_provider_name(name: &str) -> Result<(), String> {
    ecs_name(name, 128)?;
    if name.len() < 3 {
        return Err(format!(
            "'{name}' must be at least 3 characters (a launch template's least)"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if ["aws", "ecs", "fargate"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Err(format!(
            "'{name}' starts with aws, ecs or fargate, which ECS keeps for its own capacity providers"
        ));
    }
    Ok(())
}

/// The longest capacity provider name `--managed` takes when it makes its infrastructure role:
/// the role is `NAME-infrastructure`, and an IAM role name has at most 64 characters.
pub const MANAGED_NAME_MAX: usize = 64 - "-infrastructure".len();

/// An EC2 instance type as written: a family and a size joined by one '.' (`t3.small`,
/// `c6gn.xlarge`, `u-6tb1.metal`), lower-case letters, digits and '-'.
pub fn instance_type(t: &str) -> Result<(), String> {
    let ok = t.split_once('.').is_some_and(|(family, size)| {
        !family.is_empty()
            && !size.is_empty()
            && family.starts_with(|c: char| c.is_ascii_lowercase())
            && (family.chars().chain(size.chars()))
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    if ok {
        Ok(())
    } else {
        Err(format!("'{t}' is not an instance type (like t3.small)"))
    }
}

/// A subnet id: `subnet-` and 8 or 17 hex digits, nothing around it.
pub fn subnet_id(s: &str) -> Result<(), String> {
    resource_id(s, "subnet-", "a subnet id (subnet- and 8 or 17 hex digits)")
}

/// A security group id: `sg-` and 8 or 17 hex digits.
pub fn security_group_id(s: &str) -> Result<(), String> {
    resource_id(s, "sg-", "a security group id (sg- and 8 or 17 hex digits)")
}

/// An AWS account id: exactly 12 digits (`--allow-ami-owner`).
pub fn account_id(s: &str) -> Result<(), String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("'{s}' is not an AWS account id (12 digits)"))
    }
}

/// An AMI id: `ami-` and 8 or 17 hex digits.
pub fn ami_id(s: &str) -> Result<(), String> {
    resource_id(s, "ami-", "an AMI id (ami- and 8 or 17 hex digits)")
}

fn resource_id(s: &str, prefix: &str, what: &str) -> Result<(), String> {
    if s.trim() != s {
        return Err(format!("'{s}' has a space at its start or end"));
    }
    let ok = s.strip_prefix(prefix).is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!("'{s}' is not {what}"))
    }
}

/// capacity-create's sizes and percentages, as one step's flags or a stack's `[capacity]` give
/// them. `key` names each value in the caller's words (`--min-size` or `capacity.min_size`);
/// each problem is returned as `KEY VALUE: why`.
pub struct CapacitySizes {
    pub min: i64,
    pub max: i64,
    pub desired: Option<i64>,
    pub target_capacity: i64,
    pub root_volume_gib: i64,
}

impl CapacitySizes {
    pub fn problems(&self, key: impl Fn(&str) -> String) -> Vec<String> {
        let mut p = Vec::new();
        let (min_k, max_k) = (key("min_size"), key("max_size"));
        if self.min < 0 {
            p.push(format!("{min_k} {}: must be 0 or more", self.min));
        }
        if self.max < 1 {
            p.push(format!("{max_k} {}: must be 1 or more", self.max));
        }
        if self.min > self.max {
            p.push(format!(
                "{min_k} {} is more than {max_k} {}: need {min_k} <= {max_k}",
                self.min, self.max
            ));
        }
        if let Some(d) = self.desired
            && !(self.min..=self.max).contains(&d)
        {
            p.push(format!(
                "{} {d}: must lie between {min_k} {} and {max_k} {}",
                key("desired_capacity"),
                self.min,
                self.max
            ));
        }
        if !(1..=100).contains(&self.target_capacity) {
            p.push(format!(
                "{} {}: must be 1 to 100 (percent)",
                key("target_capacity"),
                self.target_capacity
            ));
        }
        if !(30..=16_384).contains(&self.root_volume_gib) {
            p.push(format!(
                "{} {}: must be 30 (the AMI's snapshot) to 16384 GiB",
                key("root_volume_size"),
                self.root_volume_gib
            ));
        }
        p
    }
}

/// With `--managed` and no infrastructure role given, the name also names the role the step
/// makes (`NAME-infrastructure`), so it must leave room for the suffix.
pub fn managed_capacity_name(name: &str, makes_role: bool) -> Result<(), String> {
    if makes_role && name.len() > MANAGED_NAME_MAX {
        return Err(format!(
            "'{name}' is {} characters: with managed capacity it also names the infrastructure role {name}-infrastructure, and a role name has at most 64 (so at most {MANAGED_NAME_MAX}; or give the infrastructure role's ARN)",
            name.len()
        ));
    }
    Ok(())
}

/// A region name such as `us-west-2` or `ap-southeast-1`.
pub fn region(name: &str) -> Result<(), String> {
    let parts: Vec<&str> = name.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!("'{name}' is not a region name such as us-west-2"))
    }
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
    fn ecs_names_and_regions() {
        assert_eq!(ecs_name("web_1-a", 255), Ok(()));
        assert!(ecs_name("", 255).is_err());
        assert!(ecs_name("a.b", 255).is_err());
        assert!(ecs_name(&"a".repeat(65), 64).is_err());
        assert_eq!(region("us-west-2"), Ok(()));
        assert_eq!(region("ap-southeast-1"), Ok(()));
        assert!(region("us-west").is_err());
        assert!(region("US-west-2").is_err());
    }

    #[test]
    fn image_tags_and_repositories() {
        assert_eq!(image_tag("v1.2_3"), Ok(()));
        assert!(image_tag(".x").is_err());
        assert!(image_tag("a/b").is_err());
        assert_eq!(repository_name("team/app"), Ok(()));
        assert!(repository_name("Team/App").is_err());
        assert!(repository_name("a__b").is_err());
    }

    // Moved from image-push's reference module with the functions.
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
            assert_eq!(image_tag(good), Ok(()), "{good}");
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", "has space"] {
            assert!(image_tag(bad).is_err(), "{bad}");
        }
        assert!(image_tag(&"a".repeat(129)).is_err());
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

    #[test]
    fn capacity_values() {
        for good in ["t3.small", "c6gn.xlarge", "u-6tb1.metal"] {
            assert_eq!(instance_type(good), Ok(()), "{good}");
        }
        for bad in ["t3", ".small", "T3.small", "t3. small", "3t.small"] {
            assert!(instance_type(bad).is_err(), "{bad}");
        }
        assert_eq!(subnet_id("subnet-0123456789abcdef0"), Ok(()));
        assert!(subnet_id("subnet-1").is_err());
        assert!(security_group_id(" sg-12345678").is_err());
        assert_eq!(ami_id("ami-12345678"), Ok(()));
        let sizes = |min, max, desired| CapacitySizes {
            min,
            max,
            desired,
            target_capacity: 100,
            root_volume_gib: 30,
        };
        let key = |k: &str| format!("capacity.{k}");
        assert!(sizes(0, 2, Some(1)).problems(key).is_empty());
        assert_eq!(
            sizes(-1, 0, Some(3)).problems(key),
            [
                "capacity.min_size -1: must be 0 or more",
                "capacity.max_size 0: must be 1 or more",
                "capacity.desired_capacity 3: must lie between capacity.min_size -1 and capacity.max_size 0",
            ]
        );
        assert!(managed_capacity_name(&"n".repeat(49), true).is_ok());
        assert!(managed_capacity_name(&"n".repeat(50), true).is_err());
        assert!(managed_capacity_name(&"n".repeat(50), false).is_ok());
    }

    #[test]
    fn an_account_id_is_twelve_digits() {
        assert!(super::account_id("111122223333").is_ok());
        for bad in [
            "amazon",
            "11112222333",
            "1111222233334",
            "11112222333x",
            " 111122223333",
        ] {
            assert!(super::account_id(bad).is_err(), "{bad}");
        }
    }
}
