//! The env codec: how `--output env` writes values and how the next reader (a shell's `eval`,
//! or the xtask running the steps as processes) reads them back. Quoting and unquoting are
//! POSIX shell rules, done by `shlex` in both directions so they cannot disagree.

use crate::outputs::PREFIX;

/// The directory where the steps of one deploy share verify's answers: the orchestrator makes
/// it (private to the user) and removes it when the deploy ends. Not a flag: a step run alone
/// checks everything itself.
pub const VERIFY_SHARED: &str = "ECSKIT_VERIFY_SHARED";

/// One value, quoted for a POSIX shell (`'a b'`; bare when nothing needs quoting).
pub fn quote(value: &str) -> String {
    // try_quote refuses only values holding a NUL byte, which no shell variable can hold:
    // such a value is dropped to the part before the NUL rather than printed unquoted.
    let clean = value.split('\0').next().unwrap_or_default();
    shlex::try_quote(clean)
        .map(|q| q.into_owned())
        .unwrap_or_default()
}

/// One shell word back into its value. Exactly one word is expected.
pub fn unquote(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Ok(String::new());
    }
    match shlex::split(raw) {
        Some(words) if words.len() == 1 => Ok(words.into_iter().next().unwrap_or_default()),
        Some(words) if words.is_empty() => Ok(String::new()),
        Some(_) => Err(format!("unquoted space in {raw}")),
        None => Err(format!("unterminated quote in {raw}")),
    }
}

/// `NAME=value` for `--output env` (NAME without the `ECSKIT_` prefix).
pub fn assignment(name: &str, value: &str) -> String {
    format!("{PREFIX}{name}={}", quote(value))
}

/// Parses `--output env` text (`ECSKIT_NAME=value` lines, a last `export ...` line) into
/// `(ECSKIT_NAME, value)` pairs.
pub fn parse_lines(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // `export A B C`: the binaries' last line, which makes `eval` export what it set.
        if line.starts_with("export ") && !line.contains('=') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, raw)) = line.split_once('=') else {
            return Err(format!("line {}: not NAME=value: {line}", n + 1));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!("line {}: '{name}' is not a variable name", n + 1));
        }
        let value = unquote(raw).map_err(|e| format!("line {}: {e}", n + 1))?;
        out.push((name.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_codec() {
        for v in [
            "",
            "plain",
            "a b",
            "it's",
            "$HOME `x` \"q\"",
            "line1\nline2",
            "arn:aws:ecs:us-west-2:123456789012:task-definition/app:3",
        ] {
            assert_eq!(unquote(&quote(v)).as_deref(), Ok(v), "{v:?}");
        }
    }

    #[test]
    fn env_lines_are_unquoted() {
        let text = "ECSKIT_A='a b'\nECSKIT_B=plain\n# comment\n\nexport ECSKIT_C=\"x\\\"y\"\nexport ECSKIT_A ECSKIT_B ECSKIT_C\n";
        assert_eq!(
            parse_lines(text).unwrap(),
            vec![
                ("ECSKIT_A".to_string(), "a b".to_string()),
                ("ECSKIT_B".to_string(), "plain".to_string()),
                ("ECSKIT_C".to_string(), "x\"y".to_string()),
            ]
        );
        assert!(parse_lines("ECSKIT_A='open").is_err());
        assert!(parse_lines("lower=x").is_err());
        assert!(parse_lines("ECSKIT_A=a b").is_err());
    }
}
