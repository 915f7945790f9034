//! One broker per data directory: an OS file lock on `DIR/warren.lock`, taken before LMDB is
//! opened and held until the store shuts down (the process exits right after).
//!
//! Two processes writing one LMDB environment would each believe it owns the message ids, the
//! queue indexes and the map size; LMDB itself would only serialise their transactions. The
//! lock is advisory (`flock`), so it goes away with the process however it ends — a `kill -9`
//! leaves no stale lock behind. The file holds the owner's pid, for people only.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::StoreError;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "warren.lock";

/// The held lock; dropping it releases it.
pub struct DirLock {
    file: File,
}

impl DirLock {
    /// Takes the lock on `dir`, or says which directory is in use and by whom.
    pub fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                StoreError(format!("cannot open the lock file {}: {e}", path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                let owner = owner.trim();
                let by = if owner.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {owner})")
                };
                return Err(StoreError(format!(
                    "data directory {} is in use by another warren process{by}: \
                     its lock file {} is locked",
                    dir.display(),
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError(format!(
                    "cannot lock {} (data directory {}): {e}",
                    path.display(),
                    dir.display()
                )));
            }
        }
        // The pid is a courtesy for whoever meets the message above; failing to write it
        // changes nothing about the lock.
        let pid = std::process::id().to_string();
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()));
        if let Err(e) = written {
            tracing::warn!("cannot write the pid into {}: {e}", path.display());
        }
        Ok(DirLock { file })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the order explicit.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("warren-dirlock-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = scratch_dir("second");
        let first = DirLock::acquire(&dir).unwrap();
        let refused = DirLock::acquire(&dir).err().unwrap().0;
        assert!(refused.contains(&dir.display().to_string()), "{refused}");
        assert!(refused.contains(LOCK_FILE), "{refused}");
        assert!(
            refused.contains(&format!("pid {}", std::process::id())),
            "{refused}"
        );
        drop(first);
        let again = DirLock::acquire(&dir).unwrap();
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
