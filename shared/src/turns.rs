//! Turns between ecskit processes on one machine: an exclusive lock on a file in a directory
//! that only this user can write.
//!
//! The shared temp directory is everybody's: a lock file with a predictable name there can be
//! made by another user first (then ours never opens, or waits on theirs forever), or planted
//! as a symlink that makes us create or lock a file of the attacker's choosing. So the lock
//! files live in a private directory, `$XDG_RUNTIME_DIR/ecskit` when the session has one, else
//! `$TMPDIR/ecskit-UID`, which must be a real directory (not a link), owned by us, with no
//! access for group or others; and a lock file is opened without following a link.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Why a private directory cannot be used, naming it and the fix.
fn unsafe_dir(dir: &Path, why: &str) -> Error {
    Error::io(
        format!("the private directory {} {why}", dir.display()),
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, why.to_string()),
    )
    .hint(format!(
        "remove it (it holds only ecskit's lock files) or set TMPDIR to a directory of your own: {}",
        dir.display()
    ))
}

/// The current user's id: the owner of `/proc/self` is the process's effective user (no
/// `getuid`, which would need unsafe code or another crate).
fn my_uid() -> Result<u32> {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| Error::io("reading /proc/self for the user id", e))
}

/// This user's private directory for ecskit's lock files, made (mode 0700) when missing.
pub fn private_dir() -> Result<PathBuf> {
    let uid = my_uid()?;
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(run) => PathBuf::from(run).join("ecskit"),
        None => std::env::temp_dir().join(format!("ecskit-{uid}")),
    };
    ensure_private(&dir, uid)?;
    Ok(dir)
}

/// `dir` exists as a directory of `uid`'s that nobody else may enter; made when missing.
fn ensure_private(dir: &Path, uid: u32) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(format!("creating {}", dir.display()), e)),
    }
    check_private_of(dir, uid)
}

/// `dir` is a real directory of this user's that nobody else may enter (a directory another
/// process made for this one: it is trusted only then).
pub fn check_private(dir: &Path) -> Result<()> {
    check_private_of(dir, my_uid()?)
}

fn check_private_of(dir: &Path, uid: u32) -> Result<()> {
    // symlink_metadata: a link in the dir's place is refused, not followed.
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    if !meta.file_type().is_dir() {
        return Err(unsafe_dir(dir, "is not a directory (a link or a file)"));
    }
    if meta.uid() != uid {
        return Err(unsafe_dir(
            dir,
            &format!("belongs to user {}, not to you ({uid})", meta.uid()),
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(unsafe_dir(
            dir,
            &format!(
                "is open to other users (mode {:o}, wanted 700)",
                meta.permissions().mode() & 0o777
            ),
        ));
    }
    Ok(())
}

/// Opens (creating when missing) a lock file without following a link in its place.
fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io(format!("opening the lock file {}", path.display()), e))
}

/// How long to wait for a turn before saying so, and before giving up.
#[derive(Clone, Copy, Debug)]
pub struct Patience {
    pub notice_after: Duration,
    pub give_up_after: Duration,
}

impl Patience {
    /// Creating a cluster takes a second or two; a turn held for minutes is a stuck process.
    pub const DEFAULT: Patience = Patience {
        notice_after: Duration::from_secs(3),
        give_up_after: Duration::from_secs(120),
    };
}

/// Waits for the exclusive lock of `name` in `dir` and holds it until the file is dropped.
/// `what` says in the user's words what the holder is doing ("creating cluster web"): it is
/// said once after `notice_after`, and the error after `give_up_after` names it and the file.
pub async fn take_in(
    dir: &Path,
    name: &str,
    what: &str,
    patience: Patience,
    notice: impl Fn(&str),
) -> Result<File> {
    let path = dir.join(name);
    let file = open_lock_file(&path)?;
    let start = tokio::time::Instant::now();
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", path.display()), e));
            }
        }
        let waited = start.elapsed();
        if waited >= patience.give_up_after {
            return Err(Error::io(
                format!(
                    "gave up after {}s waiting for another ecskit process {what}",
                    waited.as_secs()
                ),
                std::io::Error::new(std::io::ErrorKind::TimedOut, "lock held"),
            )
            .hint(format!(
                "a process on this machine holds the lock file {}: let it finish or stop it, then run again",
                path.display()
            )));
        }
        if !said && waited >= patience.notice_after {
            notice(&format!(
                "waiting for another ecskit process {what} (lock file {})",
                path.display()
            ));
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`take_in`] this user's private directory.
pub async fn take(name: &str, what: &str, patience: Patience) -> Result<File> {
    take_in(&private_dir()?, name, what, patience, |line| {
        tracing::warn!("{line}")
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Patience = Patience {
        notice_after: Duration::from_millis(20),
        give_up_after: Duration::from_millis(200),
    };

    #[test]
    fn a_directory_open_to_others_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ecskit-x");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure_private(&dir, my_uid().unwrap()).unwrap_err();
        assert!(err.to_string().contains("open to other users"), "{err}");
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let err = ensure_private(tmp.path(), my_uid().unwrap() + 1).unwrap_err();
        assert!(err.to_string().contains("belongs to user"), "{err}");
    }

    #[test]
    fn a_link_in_the_directory_place_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&real)
            .unwrap();
        let link = tmp.path().join("ecskit-x");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = ensure_private(&link, my_uid().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn a_new_directory_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ecskit-new");
        ensure_private(&dir, my_uid().unwrap()).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[tokio::test]
    async fn a_link_in_the_lock_file_place_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("victim");
        std::os::unix::fs::symlink(&target, tmp.path().join("cluster.lock")).unwrap();
        let err = take_in(
            tmp.path(),
            "cluster.lock",
            "creating cluster web",
            QUICK,
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("opening the lock file"), "{err}");
        assert!(
            !target.exists(),
            "the link was followed and its target made"
        );
    }

    #[tokio::test]
    async fn a_held_turn_is_waited_for_then_given_up_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let held = take_in(tmp.path(), "c.lock", "creating cluster web", QUICK, |_| {})
            .await
            .unwrap();
        let said = std::cell::RefCell::new(Vec::new());
        let err = take_in(tmp.path(), "c.lock", "creating cluster web", QUICK, |l| {
            said.borrow_mut().push(l.to_string())
        })
        .await
        .unwrap_err();
        let said = said.into_inner();
        assert_eq!(said.len(), 1, "the wait is said once: {said:?}");
        assert!(said[0].contains("waiting for another ecskit process creating cluster web"));
        let text = format!("{err} {}", err.render());
        assert!(
            text.contains("gave up") && text.contains("creating cluster web"),
            "{text}"
        );
        assert!(
            text.contains("c.lock"),
            "the error names the lock file: {text}"
        );
        drop(held);
        // Once the holder is gone, the turn is ours at once.
        take_in(tmp.path(), "c.lock", "creating cluster web", QUICK, |_| {})
            .await
            .unwrap();
    }
}
