//! Small file helpers: create-new with a mode, replace atomically, read with context.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{MeshError, Result};

/// Unix mode of private key files: owner read/write only.
pub const KEY_FILE_MODE: u32 = 0o600;

/// Unix mode of public files (certificates, CRLs, counters).
pub const PUBLIC_FILE_MODE: u32 = 0o644;

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> MeshError + 'a {
    move |source| MeshError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `path` with `mode` and writes `bytes`, fsynced; never overwrites.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                MeshError::AlreadyExists {
                    path: path.to_path_buf(),
                }
            } else {
                io("create", path)(source)
            }
        })?;
    // The umask may have narrowed the mode; set it exactly.
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io("chmod", path))?;
    file.write_all(bytes).map_err(io("write", path))?;
    file.sync_all().map_err(io("fsync", path))
}

/// Replaces `path` atomically (write a temporary sibling, fsync, rename).
pub(crate) fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    // A stale temporary from a crash is garbage: remove it first.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove", &tmp)(e)),
    }
    write_new(&tmp, bytes, mode)?;
    fs::rename(&tmp, path).map_err(io("rename", path))
}

/// Reads a whole file.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(io("read", path))
}

/// Reads a whole file, `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
    }
}

/// Reads a private key file, warning when group or others may read it.
pub(crate) fn read_key(path: &Path) -> Result<Vec<u8>> {
    let meta = fs::metadata(path).map_err(io("stat", path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "key file readable by group or others");
    }
    read(path)
}

/// Creates a directory (and parents) if missing.
pub(crate) fn ensure_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(io("create dir", path))
}
