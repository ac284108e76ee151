//! Which AWS operations change anything. The call log of each step counts them, tests assert
//! their number (a no-op re-run makes zero), and the xtask counts them in the call-log files of
//! the processes it runs.

/// Read-only operations start with one of these verbs. Everything else (Create, Put, Attach,
/// Tag, Register, Run, Upload ...) counts as mutating, so a new mutating operation is never
/// missed by a count.
const READ_VERBS: &[&str] = &[
    "Get",
    "List",
    "Describe",
    "Head",
    "BatchGet",
    "BatchCheck",
    "Simulate",
    "Lookup",
    "Filter",
];

/// Whether an operation (`CreateRole`, `DescribeServices`) changes anything.
pub fn is_mutating(operation: &str) -> bool {
    !READ_VERBS.iter().any(|verb| operation.starts_with(verb))
}

/// AWS calls counted from a call-log file: one `Service.Operation` per line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub mutating: usize,
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts {
            total: self.total + o.total,
            mutating: self.mutating + o.mutating,
        }
    }
}

/// Counts the calls of a call-log file's text (`ECSKIT_CALL_LOG`).
pub fn count(log: &str) -> Counts {
    let mut c = Counts::default();
    for line in log.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let op = line.rsplit('.').next().unwrap_or(line);
        c.total += 1;
        if is_mutating(op) {
            c.mutating += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_calls_are_not_mutating() {
        for op in [
            "GetRole",
            "ListRoleTags",
            "DescribeServices",
            "HeadObject",
            "BatchGetImage",
            "FilterLogEvents",
        ] {
            assert!(!is_mutating(op), "{op}");
        }
        for op in [
            "CreateRole",
            "PutRolePolicy",
            "TagRole",
            "RegisterTaskDefinition",
            "BatchDeleteImage",
            "UploadPart",
        ] {
            assert!(is_mutating(op), "{op}");
        }
    }

    #[test]
    fn call_logs_are_counted_by_operation_verb() {
        let c = count("IAM.GetRole\nIAM.CreateRole\n\nECS.DescribeServices\nECS.CreateService\n");
        assert_eq!(
            c,
            Counts {
                total: 4,
                mutating: 2
            }
        );
    }
}
