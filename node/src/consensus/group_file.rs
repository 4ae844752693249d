//! Where a device keeps the identity of its Raft group: `<data-dir>/raft-group.json`,
//! written when the group is founded here (`posmesh init`, `--raft-bootstrap`, a restore)
//! or adopted from the leader on joining, and never changed afterwards (a forced membership
//! keeps it). See [`posmesh_consensus::group`].

use anyhow::Context;
use posmesh_consensus::group::GroupIdentity;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in the data directory.
pub const GROUP_FILE: &str = "raft-group.json";

/// `<data_dir>/raft-group.json`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(GROUP_FILE)
}

/// The group recorded in `data_dir`; `None` when there is none (a fresh device, or one of a
/// version that did not record it).
///
/// # Errors
/// The file cannot be read or is not a group identity.
pub fn load(data_dir: &Path) -> anyhow::Result<Option<GroupIdentity>> {
    let path = path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let group = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a Raft group identity", path.display()))?;
    Ok(Some(group))
}

/// Records `group` in `data_dir`, durably (temporary file, fsync, rename, fsync of the
/// directory) before it returns.
///
/// # Errors
/// I/O errors; the previous file, if any, is then unchanged.
pub fn store(data_dir: &Path, group: &GroupIdentity) -> anyhow::Result<()> {
    let path = path(data_dir);
    let tmp = data_dir.join(format!("{GROUP_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(group).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(data_dir)?.sync_all()
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// A new group founded on `device` now (random id from the OS RNG).
pub fn found(device: &str) -> GroupIdentity {
    let now_ms = i64::try_from(crate::clock::wall_clock_ms()).unwrap_or(i64::MAX);
    GroupIdentity::found(device, now_ms, rand::random())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_group_reads_back_and_garbage_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("reads"), None);
        let group = found("till-1");
        store(dir.path(), &group).expect("stores");
        assert_eq!(load(dir.path()).expect("reads"), Some(group));
        std::fs::write(path(dir.path()), b"{").expect("write");
        let error = load(dir.path()).expect_err("garbage refused").to_string();
        assert!(error.contains("not a Raft group identity"), "{error}");
    }
}
