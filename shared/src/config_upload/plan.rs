//! What to do with each key: the pure comparison of the local files with what the bucket holds
//! under the prefix. No I/O here, so it is tested without S3.

use std::collections::BTreeMap;

/// What the bucket says about one object that has a local file with the same key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Remote {
    /// The SHA-256 of the whole object, hex, from the object's `sha256` metadata (written by
    /// this step) or, failing that, from a whole-object (not composite) S3 checksum.
    pub sha256_hex: Option<String>,
    /// Whether the object is encrypted the way this run asks for.
    pub encrypted_as_wanted: bool,
}

/// The decisions, each list sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Relative keys to upload (new or changed), with why.
    pub upload: Vec<(String, Reason)>,
    /// Relative keys already there with the same SHA-256 and encryption.
    pub unchanged: Vec<String>,
    /// Relative keys under the prefix with no local file (only with `--delete`).
    pub delete: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    New,
    Changed,
    /// Same content, but not encrypted as asked (an object written by another tool, or before
    /// `--kms-key` was given).
    Encryption,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::Changed => "changed",
            Reason::Encryption => "re-encrypt",
        }
    }
}

/// `local`: relative key -> SHA-256 hex. `remote`: every relative key under the prefix, with
/// details for those that were looked at (`None` for keys that were only listed).
pub fn plan(
    local: &BTreeMap<String, String>,
    remote: &BTreeMap<String, Option<Remote>>,
    delete: bool,
) -> Plan {
    let mut p = Plan::default();
    for (key, sha) in local {
        match remote.get(key) {
            None => p.upload.push((key.clone(), Reason::New)),
            Some(r) => {
                let r = r.clone().unwrap_or_default();
                if r.sha256_hex.as_deref() != Some(sha.as_str()) {
                    p.upload.push((key.clone(), Reason::Changed));
                } else if !r.encrypted_as_wanted {
                    p.upload.push((key.clone(), Reason::Encryption));
                } else {
                    p.unchanged.push(key.clone());
                }
            }
        }
    }
    if delete {
        p.delete = remote
            .keys()
            .filter(|k| !local.contains_key(*k))
            .cloned()
            .collect();
    }
    p
}

/// The full key for a relative key under a prefix (given without a trailing '/').
pub fn full_key(prefix: &str, rel: &str) -> String {
    if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map<V: Clone>(items: &[(&str, V)]) -> BTreeMap<String, V> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn remote(sha: &str, enc: bool) -> Option<Remote> {
        Some(Remote {
            sha256_hex: Some(sha.into()),
            encrypted_as_wanted: enc,
        })
    }

    #[test]
    fn new_changed_unchanged_and_deleted() {
        let local = map(&[
            ("a", "1".to_string()),
            ("b", "2".into()),
            ("c", "3".into()),
            ("e", "5".into()),
        ]);
        let remote = map(&[
            ("a", remote("1", true)),
            ("b", remote("x", true)),
            ("d", None),
            ("e", remote("5", false)),
        ]);
        let p = plan(&local, &remote, true);
        assert_eq!(
            p.upload,
            [
                ("b".to_string(), Reason::Changed),
                ("c".to_string(), Reason::New),
                ("e".to_string(), Reason::Encryption)
            ]
        );
        assert_eq!(p.unchanged, ["a"]);
        assert_eq!(p.delete, ["d"]);
        assert!(plan(&local, &remote, false).delete.is_empty());
    }

    #[test]
    fn an_object_without_a_known_checksum_is_uploaded() {
        let local = map(&[("a", "1".to_string())]);
        let remote = map(&[(
            "a",
            Some(Remote {
                sha256_hex: None,
                encrypted_as_wanted: true,
            }),
        )]);
        assert_eq!(
            plan(&local, &remote, false).upload,
            [("a".to_string(), Reason::Changed)]
        );
    }

    #[test]
    fn keys_under_a_prefix() {
        assert_eq!(full_key("", "a/b"), "a/b");
        assert_eq!(full_key("prod/app", "a/b"), "prod/app/a/b");
    }
}
