//! Files written whole or not at all: a temporary file beside the target, created with mode 0600, written
//! and synced, renamed over the target (over the file a symbolic link names, when the target is one), and
//! the directory synced. A reader sees the old file or the new one, never a part. cfgledger's `render --out`,
//! the agent's render and the cache all write through here; the last two skip the directory's sync
//! (`replace`), since they write their file again at start.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file staged beside its target, not yet in place: [`Staged::commit`] renames it over the target;
/// dropping it removes it.
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
    dir: PathBuf,
}

impl Staged {
    /// Where the staged bytes are, for a check command to read before they replace the target.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Renames the staged file over the target and syncs the directory, so that the new file survives a
    /// crash of the machine.
    pub fn commit(self) -> std::io::Result<()> {
        let dir = self.dir.clone();
        self.replace()?;
        std::fs::File::open(&dir)?.sync_all()
    }

    /// Renames the staged file over the target without syncing the directory: a reader sees the old file
    /// or the new one, and after a crash of the machine the old one may be back. For a file its writer
    /// writes again at start (an agent's render, a follower's cache), which saves a sync per change.
    pub fn replace(self) -> std::io::Result<()> {
        let Staged { tmp, target, .. } = self;
        tmp.persist(&target).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Writes `bytes` to a temporary file beside `path` (mode 0600, synced) without replacing `path` yet.
pub fn stage(path: &Path, bytes: &[u8]) -> std::io::Result<Staged> {
    // A symbolic link is followed: the file it names is replaced, the link stays.
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".cfgledger-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok(Staged { tmp, target, dir })
}

/// Writes `bytes` to `path` atomically, with mode 0600, and durably (the directory synced too).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    stage(path, bytes)?.commit()
}

/// Writes `bytes` to `path` atomically, with mode 0600, without syncing the directory ([`Staged::replace`]).
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    stage(path, bytes)?.replace()
}
