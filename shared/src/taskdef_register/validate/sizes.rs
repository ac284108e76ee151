//! Task sizes: CPU units and memory as ECS writes them (`"1 vCPU"`, `"2 GB"`), and the
//! Fargate combinations of the two.

/// Task CPU units from `"256"`, `"1024"`, `".25 vCPU"` or `"1 vCPU"`.
pub fn cpu_units(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Some(v) = t.strip_suffix("vCPU").or_else(|| t.strip_suffix("vcpu")) {
        let f: f64 = v.trim().parse().ok()?;
        return (f > 0.0).then(|| (f * 1024.0).round() as u64);
    }
    t.parse().ok()
}

/// Task memory in MiB from `"512"`, `"2048"`, `"2 GB"` or `"2GB"`.
pub fn memory_mib(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Some(v) = t.strip_suffix("GB").or_else(|| t.strip_suffix("gb")) {
        let f: f64 = v.trim().parse().ok()?;
        return (f > 0.0).then(|| (f * 1024.0).round() as u64);
    }
    t.parse().ok()
}

/// The Fargate task sizes: for each CPU value, the allowed memory in MiB.
pub fn fargate_memory_for(cpu: u64) -> Option<Vec<u64>> {
    let range = |lo: u64, hi: u64, step: u64| (lo..=hi).step_by(step as usize).collect();
    Some(match cpu {
        256 => vec![512, 1024, 2048],
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122880, 8192),
        _ => return None,
    })
}

pub(super) fn gb(mib: u64) -> String {
    if mib.is_multiple_of(1024) {
        format!("{} GB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_fargate_sizes() {
        assert_eq!(fargate_memory_for(256), Some(vec![512, 1024, 2048]));
        assert!(fargate_memory_for(1024).unwrap().contains(&8192));
        assert!(!fargate_memory_for(256).unwrap().contains(&4096));
        assert_eq!(cpu_units(".25 vCPU"), Some(256));
        assert_eq!(memory_mib("2 GB"), Some(2048));
        assert_eq!(gb(2048), "2 GB");
        assert_eq!(gb(1536), "1536 MiB");
    }
}
