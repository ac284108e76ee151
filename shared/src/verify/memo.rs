//! Verify's answers shared by the processes of one deploy.
//!
//! A stack of twenty services runs taskdef-register twenty times, and each asked the same
//! questions of what the services share (the roles and their permissions, the image, the log
//! group, the network): twenty times the IAM simulator's questions for one pair of roles.
//! The orchestrator makes a private directory for the deploy and names it in
//! [`VAR`](ecskit_contract::env::VERIFY_SHARED); each group of checks is then asked once, and
//! every other process reads the answer. A process run alone has no such directory and asks
//! everything itself.
//!
//! What may be shared, and what not:
//! - the directory must be this user's, a real directory, closed to others: answers planted by
//!   someone else would pass checks that were never made;
//! - an answer is stored only when every check in it is ok or a failure and nothing went
//!   unanswered: a warning is often "could not be read" or "not checked", and a question
//!   nobody answered is never handed to another process as an answer;
//! - the group's key is everything its checks looked at, so two services share an answer only
//!   when they asked exactly the same thing;
//! - two processes asking the same group at once take turns (a lock per group): the second
//!   reads the first one's answer instead of asking again.

use std::future::Future;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Check, Level};
use crate::Error;

pub use ecskit_contract::env::VERIFY_SHARED as VAR;

/// The kinds of check an answer may hold (a stored kind outside them is not an answer).
const KINDS: &[&str] = &[
    "role",
    "image",
    "secret",
    "env file",
    "log group",
    "permission",
    "network",
];

/// Waiting for another process's answer: a group is a few calls, but the simulator's
/// questions are rate-limited. Past this, the process asks itself rather than fail.
const PATIENCE: crate::turns::Patience = crate::turns::Patience {
    notice_after: Duration::from_secs(20),
    give_up_after: Duration::from_secs(300),
};

/// Where this run's answers are kept, if anywhere.
#[derive(Clone, Debug, Default)]
pub struct Memo {
    dir: Option<PathBuf>,
}

impl Memo {
    /// The deploy's directory from [`VAR`]. A directory that is not safe to trust is said
    /// once and not used: the checks are then all made here, which is slower, never wrong.
    pub fn from_env() -> Memo {
        let Some(dir) = std::env::var_os(VAR).filter(|d| !d.is_empty()) else {
            return Memo::default();
        };
        Memo::at(PathBuf::from(dir))
    }

    /// The answers kept in `dir`, when it is safe to trust.
    pub fn at(dir: PathBuf) -> Memo {
        match crate::turns::check_private(&dir) {
            Ok(()) => Memo { dir: Some(dir) },
            Err(e) => {
                tracing::warn!("{VAR}: {e}; every check is made here");
                Memo::default()
            }
        }
    }

    /// The checks of one group: read from the directory when another process asked exactly
    /// this, else asked with `ask` (and kept when the answer may be shared).
    pub async fn checks<F, Fut>(&self, key: Value, ask: F) -> (Vec<Check>, Option<Error>)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = (Vec<Check>, Option<Error>)>,
    {
        let Some(dir) = &self.dir else {
            return ask().await;
        };
        let name = hex::encode(Sha256::digest(key.to_string().as_bytes()));
        let what = format!(
            "checking the same {}",
            key.get("group").and_then(Value::as_str).unwrap_or("thing")
        );
        // Without the turn (gave up waiting, or the lock could not be made) this process
        // asks itself: slower, never a skipped check.
        let turn = crate::turns::take_in(dir, &format!("{name}.lock"), &what, PATIENCE, |line| {
            tracing::info!("{line}")
        })
        .await
        .ok();
        let answer = dir.join(format!("{name}.json"));
        if let Some(checks) = read(&answer, &key) {
            tracing::debug!("verify: {what}: answered by another step of this deploy");
            return (checks, None);
        }
        let (checks, error) = ask().await;
        if turn.is_some() && error.is_none() && checks.iter().all(|c| c.level != Level::Warning) {
            write(&answer, &key, &checks);
        }
        (checks, error)
    }
}

/// A stored answer, if there is one for exactly `key` and every check in it is well formed.
fn read(path: &Path, key: &Value) -> Option<Vec<Check>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let stored: Value = serde_json::from_reader(file).ok()?;
    if stored.get("key") != Some(key) {
        return None;
    }
    stored
        .get("checks")?
        .as_array()?
        .iter()
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str);
            let kind = KINDS.iter().find(|k| Some(**k) == s("kind"))?;
            let level = match s("level")? {
                "ok" => Level::Ok,
                "failure" => Level::Failure,
                _ => return None,
            };
            Some(Check::new(level, kind, s("resource")?, s("message")?))
        })
        .collect()
}

/// Keeps an answer: written whole to a new file, then renamed into place, so that a reader
/// sees all of it or nothing. A failure to keep it costs only time.
fn write(path: &Path, key: &Value, checks: &[Check]) {
    let doc = json!({"key": key, "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>()});
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(doc.to_string().as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(
            "verify: could not keep an answer in {}: {e}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn private() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("memo");
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        (tmp, dir)
    }

    fn key(role: &str) -> Value {
        json!({"group": "role", "roles": [role]})
    }

    async fn ask_counted(
        memo: &Memo,
        key: Value,
        asked: &AtomicUsize,
        answer: Vec<Check>,
    ) -> Vec<Check> {
        memo.checks(key, || async {
            asked.fetch_add(1, Ordering::SeqCst);
            (answer, None)
        })
        .await
        .0
    }

    #[tokio::test]
    async fn the_same_group_is_asked_once_and_answered_alike() {
        let (_tmp, dir) = private();
        let asked = AtomicUsize::new(0);
        let answer = vec![
            Check::ok("role", "arn:aws:iam::1:role/a", "exists"),
            Check::failure("role", "arn:aws:iam::1:role/b", "does not exist"),
        ];
        // Two processes of one deploy: two memos on one directory.
        let first = ask_counted(&Memo::at(dir.clone()), key("a"), &asked, answer.clone()).await;
        let second = ask_counted(&Memo::at(dir.clone()), key("a"), &asked, Vec::new()).await;
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert_eq!(first, answer);
        assert_eq!(second, answer, "a failure is shared as a failure");
        // Another key is another question.
        ask_counted(&Memo::at(dir), key("c"), &asked, Vec::new()).await;
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn warnings_and_unanswered_questions_are_never_shared() {
        let (_tmp, dir) = private();
        let memo = Memo::at(dir);
        let asked = AtomicUsize::new(0);
        let warned = vec![Check::warning("role", "r", "could not be read: throttled")];
        for _ in 0..2 {
            ask_counted(&memo, key("w"), &asked, warned.clone()).await;
        }
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        for _ in 0..2 {
            memo.checks(key("e"), || async {
                asked.fetch_add(1, Ordering::SeqCst);
                (
                    vec![Check::ok("permission", "r", "allowed")],
                    Some(Error::aws("asking", "throttled")),
                )
            })
            .await;
        }
        assert_eq!(asked.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_directory_open_to_others_is_not_trusted() {
        let (_tmp, dir) = private();
        let asked = AtomicUsize::new(0);
        let ok = vec![Check::ok("role", "r", "exists")];
        ask_counted(&Memo::at(dir.clone()), key("a"), &asked, ok.clone()).await;
        // Someone could have planted that answer: a directory others may write is not read.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        ask_counted(&Memo::at(dir), key("a"), &asked, ok).await;
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_answer_for_another_key_or_a_warning_on_disk_is_not_read() {
        let (_tmp, dir) = private();
        let memo = Memo::at(dir.clone());
        let name = hex::encode(Sha256::digest(key("a").to_string().as_bytes()));
        let path = dir.join(format!("{name}.json"));
        let ok = vec![Check::ok("role", "r", "exists")];
        write(&path, &key("other"), &ok);
        let asked = AtomicUsize::new(0);
        ask_counted(&memo, key("a"), &asked, ok.clone()).await;
        assert_eq!(asked.load(Ordering::SeqCst), 1, "an answer to another key");
        write(
            &path,
            &key("a"),
            &[Check::warning("role", "r", "could not be read")],
        );
        assert_eq!(read(&path, &key("a")), None, "a stored warning");
    }
}
