//! The contract between the ecskit steps, written once.
//!
//! Users chain the binaries (`eval "$(image-push ... --output env)"; taskdef-register ...`), so
//! what one step prints and the next one reads is the product's interface. Both the library
//! (`ecskit`, which implements the steps) and the xtask (which chains them as processes) use
//! this crate, so a name, a quoting rule or an exit code cannot drift between the two. It has no
//! AWS SDK dependency on purpose: `cargo xtask local up` and `cargo xtask ci` are the first
//! things run on a new machine and must build in seconds.

pub mod calls;
pub mod env;
pub mod exit;
pub mod outputs;
pub mod rollout;
pub mod step;
pub mod validate;

pub use step::Step;

use std::time::Duration;

/// `90`, `90s`, `15m`, `1h`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration: use 90s, 15m or 1h"))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("'{s}' is not a duration: use 90s, 15m or 1h")),
    };
    // Checked: a huge value is bad input (exit 2), not an overflow.
    n.checked_mul(per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{s}' is too long a duration: use at most a few days, like 72h"))
}

/// The tag on everything ecskit creates. Each step's `--delete` removes only resources that
/// carry it, so ecskit never deletes what someone else made.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "ecskit");

/// The tag that says which cluster a resource made for one cluster belongs to (capacity-create's
/// launch template, Auto Scaling group and capacity provider): a run for another cluster never
/// changes or deletes it, even when the names collide.
pub const CLUSTER_TAG: &str = "ecskit:cluster";

/// Whether a resource's tags say ecskit made it. Every AWS service spells tags in its own type,
/// so callers pass `(key, value)` pairs: `is_managed(tags.iter().map(|t| (t.key(), t.value())))`.
pub fn is_managed<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    tags.into_iter().any(|(k, v)| (k, v) == MANAGED_BY)
}

#[cfg(test)]
mod tests {
    #[test]
    fn managed_means_the_exact_tag() {
        assert!(super::is_managed([("a", "b"), ("managed-by", "ecskit")]));
        assert!(!super::is_managed([("managed-by", "terraform")]));
        assert!(!super::is_managed([]));
    }
}
