//! A segment file kept ready for the log's next switch: a segment every record of which LMDB
//! has applied (recycled), or a file filled with zeros in the background. Its blocks are
//! written already, so a direct write into it is one data write with no extent to convert —
//! 9-16% more synchronous confirms than a freshly allocated file (STORE.md).
//!
//! A recycled segment still holds its old records. Replay tells them apart by sequence number:
//! they are all older than the records written over them, which start at offset 0.
//!
//! The spare is `next.spare` in the log's directory; a name replay does not read. This file owns
//! that one file and the thread that fills it; mod.rs renames it into place.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

pub const SPARE_NAME: &str = "next.spare";
const FILLING_NAME: &str = "next.spare.tmp";

enum State {
    None,
    Filling(JoinHandle<io::Result<()>>),
    Ready,
}

pub struct Spare {
    dir: PathBuf,
    size: u64,
    state: State,
}

/// Whether a file name in the log's directory is the spare's (replay skips those quietly).
pub fn is_spare_name(name: &str) -> bool {
    name == SPARE_NAME || name == FILLING_NAME
}

impl Spare {
    /// No spare yet; one left by an earlier process is removed (its old records belong to a
    /// numbering that replay has finished with).
    pub fn new(dir: &Path, size: u64) -> Spare {
        for name in [SPARE_NAME, FILLING_NAME] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        Spare {
            dir: dir.to_path_buf(),
            size,
            state: State::None,
        }
    }

    /// Starts filling one with zeros in the background, unless one is there or coming.
    pub fn prepare(&mut self) {
        if !matches!(self.state, State::None) {
            return;
        }
        let (dir, size) = (self.dir.clone(), self.size);
        match std::thread::Builder::new()
            .name("warren-wal-spare".into())
            .spawn(move || fill(&dir, size))
        {
            Ok(handle) => self.state = State::Filling(handle),
            Err(e) => tracing::warn!("cannot start filling a spare log segment: {e}"),
        }
    }

    /// The spare's path if one is ready (it is the caller's to rename now), without waiting.
    pub fn take(&mut self) -> Option<PathBuf> {
        if let State::Filling(handle) = &self.state {
            if !handle.is_finished() {
                return None;
            }
            let State::Filling(handle) = std::mem::replace(&mut self.state, State::None) else {
                return None;
            };
            match handle.join() {
                Ok(Ok(())) => self.state = State::Ready,
                Ok(Err(e)) => tracing::warn!("cannot fill a spare log segment: {e}"),
                Err(_) => tracing::warn!("the thread filling a spare log segment panicked"),
            }
        }
        match std::mem::replace(&mut self.state, State::None) {
            State::Ready => Some(self.dir.join(SPARE_NAME)),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Keeps `segment` (nothing needs its records any more) as the spare if there is none and
    /// none is coming; `false` when the caller should delete it instead.
    pub fn recycle(&mut self, segment: &Path) -> bool {
        if !matches!(self.state, State::None) {
            return false;
        }
        match std::fs::rename(segment, self.dir.join(SPARE_NAME)) {
            Ok(()) => {
                self.state = State::Ready;
                true
            }
            Err(e) => {
                tracing::debug!("cannot keep {} as the spare: {e}", segment.display());
                false
            }
        }
    }
}

/// Writes `size` zero bytes to a new file, syncs it, and names it the spare.
fn fill(dir: &Path, size: u64) -> io::Result<()> {
    let filling = dir.join(FILLING_NAME);
    let file = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&filling)?;
    write_zeros(&file, size)?;
    std::fs::rename(&filling, dir.join(SPARE_NAME))
}

/// Writes `size` zero bytes to `file` from its start and syncs it (data, size and extents).
pub fn write_zeros(file: &File, size: u64) -> io::Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = zeros.len().min((size - at) as usize);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_all()
}
