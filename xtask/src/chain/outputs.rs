//! What the binaries print (`--output env`, read with the contract's env codec), and the outputs
//! kept between runs so that `--only` and `--from` can give the steps they run the outputs of the
//! steps they skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::stack::Stack;
use crate::util::Result;

/// Parses `--output env` lines into `(ECSKIT_NAME, value)` pairs with the contract's env codec,
/// the same one the binaries wrote them with.
pub fn parse_env_lines(text: &str) -> Result<Vec<(String, String)>> {
    ecskit_contract::env::parse_lines(text)
}

/// Where the outputs of the last successful steps are kept, so that `--only` and `--from` can
/// give the steps they run the outputs of the steps they skip.
/// Each service of a `[services]` file has its own (`APP.KEY.outputs.env`): outputs of one
/// service never reach another's steps.
pub fn outputs_file(stack: &Stack) -> PathBuf {
    let name = match &stack.key {
        Some(key) => format!("{}.{key}.outputs.env", stack.app),
        None => format!("{}.outputs.env", stack.app),
    };
    stack
        .path
        .parent()
        .unwrap_or(Path::new("."))
        .join(".ecskit")
        .join(name)
}

pub fn load_outputs(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| parse_env_lines(&t).ok())
        .map(|pairs| pairs.into_iter().collect())
        .unwrap_or_default()
}

pub fn save_outputs(path: &Path, outputs: &BTreeMap<String, String>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let text: String = outputs
        .iter()
        .filter(|(k, _)| k.starts_with("ECSKIT_"))
        .map(|(k, v)| format!("{k}={}\n", ecskit_contract::env::quote(v)))
        .collect();
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::stack;

    #[test]
    fn env_lines_are_unquoted() {
        let text = "ECSKIT_TASK_ROLE_ARN='arn:aws:iam::123456789012:role/web-task'\n\
                    ECSKIT_KEYS='a b,it'\\''s'\n\
                    ECSKIT_PLAIN=value\n\
                    ECSKIT_EMPTY=''\n\
                    export ECSKIT_DQ=\"x \\\"y\\\" \\$z\"\n\
                    \n\
                    ECSKIT_CHANGED=false\n";
        assert_eq!(
            parse_env_lines(text).unwrap(),
            vec![
                (
                    "ECSKIT_TASK_ROLE_ARN".to_string(),
                    "arn:aws:iam::123456789012:role/web-task".to_string()
                ),
                ("ECSKIT_KEYS".into(), "a b,it's".into()),
                ("ECSKIT_PLAIN".into(), "value".into()),
                ("ECSKIT_EMPTY".into(), "".into()),
                ("ECSKIT_DQ".into(), "x \"y\" $z".into()),
                ("ECSKIT_CHANGED".into(), "false".into()),
            ]
        );
        assert!(parse_env_lines("ECSKIT_X='open\n").is_err());
        assert!(parse_env_lines("just some text\n").is_err());
        assert!(parse_env_lines("lower=x\n").is_err());
    }

    #[test]
    fn saved_outputs_round_trip() {
        let s = stack();
        let path = s.path.parent().unwrap().join("saved/web.outputs.env");
        let outputs = BTreeMap::from([
            (
                "ECSKIT_IMAGE_URI".to_string(),
                "r/web@sha256:ab".to_string(),
            ),
            ("ECSKIT_ODD".to_string(), "it's $HOME".to_string()),
        ]);
        save_outputs(&path, &outputs).unwrap();
        assert_eq!(load_outputs(&path), outputs);
    }
}
