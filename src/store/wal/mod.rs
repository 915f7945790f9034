//! The write-ahead log: where a batch of store operations becomes durable with one
//! `fdatasync` of a preallocated file, before LMDB has seen it. The writer thread (writer.rs)
//! appends a record per batch, syncs when someone waits for the batch, and the checkpoint
//! thread applies the operations to LMDB later; after a crash, recovery replays the records LMDB
//! had not applied yet (replay.rs). STORE.md in the repository root says why, with the numbers.
//!
//! Files: `wal/<first batch sequence, 20 digits>.wal`, each preallocated with `fallocate`
//! ([`SEGMENT_SIZE`], or more for one larger record) so that a sync writes data blocks and no
//! size change. A record never spans two files. A segment is deleted once a checkpoint has
//! applied every record in it. Before a record goes into a new segment, the previous one is
//! synced, so a durable record never follows a lost one.
//!
//! This file owns the files and the syncs; it knows records only through record.rs and never
//! touches LMDB.

pub mod record;
pub mod replay;

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Op;

/// Preallocated size of a segment file.
pub const SEGMENT_SIZE: u64 = 64 << 20;
/// The encoding buffer is kept between batches up to this capacity.
const KEEP_BUFFER: usize = 4 << 20;

/// The name of the segment whose first record has batch sequence `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

/// The first batch sequence a segment file name stands for.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_suffix(".wal")?.parse().ok()
}

struct Segment {
    file: File,
    path: PathBuf,
    first_seq: u64,
    /// Bytes written so far (the next record goes here).
    written: u64,
    capacity: u64,
}

pub struct Wal {
    dir: PathBuf,
    current: Option<Segment>,
    /// Older segments (first sequence, path), oldest first, until a checkpoint covers them.
    closed: VecDeque<(u64, PathBuf)>,
    next_seq: u64,
    /// Records written since the last sync.
    unsynced: bool,
    buffer: Vec<u8>,
    /// How many times a record was synced to disk (read by tests through the store).
    syncs: Arc<AtomicU64>,
}

impl Wal {
    /// A log in `dir` (created if missing, and holding no segments: replay removed them) whose
    /// first record will have sequence `next_seq`.
    pub fn new(dir: &Path, next_seq: u64, syncs: Arc<AtomicU64>) -> io::Result<Wal> {
        std::fs::create_dir_all(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            current: None,
            closed: VecDeque::new(),
            next_seq,
            unsynced: false,
            buffer: Vec::new(),
            syncs,
        })
    }

    /// The sequence of the last record written (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Writes the data operations of `ops` as the next record, without syncing; returns its
    /// sequence. On error nothing counts as written: the caller starts over in a fresh segment
    /// ([`Wal::discard_all`]) after a checkpoint.
    pub fn write(&mut self, ops: &[Op]) -> io::Result<u64> {
        let seq = self.next_seq;
        self.buffer.clear();
        let len = record::encode(seq, ops, &mut self.buffer) as u64;
        let fits = self
            .current
            .as_ref()
            .is_some_and(|s| s.written + len <= s.capacity);
        if !fits {
            self.open_segment(seq, len)?;
        }
        let Some(segment) = self.current.as_mut() else {
            return Err(io::Error::other("no open write-ahead segment"));
        };
        segment.file.write_all_at(&self.buffer, segment.written)?;
        segment.written += len;
        self.unsynced = true;
        self.next_seq += 1;
        if self.buffer.capacity() > KEEP_BUFFER {
            self.buffer = Vec::new();
        }
        Ok(seq)
    }

    /// Whether records were written since the last sync.
    pub fn has_unsynced(&self) -> bool {
        self.unsynced
    }

    /// Makes every record written so far durable: one `fdatasync` of the current segment
    /// (older segments were synced when they were closed).
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some(segment) = &self.current {
            fdatasync(&segment.file)?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        self.unsynced = false;
        Ok(())
    }

    /// A checkpoint applied every record up to `seq` to LMDB: delete the segments that hold
    /// nothing newer.
    pub fn applied_through(&mut self, seq: u64) {
        while let Some((_, path)) = self.closed.front() {
            // The segment after it starts with its last record + 1.
            let next_first = self
                .closed
                .get(1)
                .map(|(first, _)| *first)
                .or(self.current.as_ref().map(|s| s.first_seq));
            if next_first.is_none_or(|next| next - 1 > seq) {
                break;
            }
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!("cannot remove {}: {e}", path.display());
            }
            self.closed.pop_front();
        }
    }

    /// After a failed write or sync: a checkpoint has applied everything written, so every
    /// segment goes (the directory synced, so none comes back) and the next record starts a
    /// new one.
    pub fn discard_all(&mut self) -> io::Result<()> {
        let current = self.current.take().map(|s| s.path);
        for path in self.closed.drain(..).map(|(_, p)| p).chain(current) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.unsynced = false;
        File::open(&self.dir)?.sync_all()
    }

    /// Closes the current segment (synced, so that no durable record follows a lost one) and
    /// opens a new one for a record of `len` bytes with sequence `seq`.
    fn open_segment(&mut self, seq: u64, len: u64) -> io::Result<()> {
        if let Some(old) = self.current.take() {
            if self.unsynced {
                fdatasync(&old.file)?;
                self.syncs.fetch_add(1, Ordering::Relaxed);
                self.unsynced = false;
            }
            self.closed.push_back((old.first_seq, old.path));
        }
        let path = self.dir.join(segment_name(seq));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let capacity = SEGMENT_SIZE.max(len);
        preallocate(&file, capacity)?;
        // The file's size and extents, then its name in the directory, are durable before any
        // record in it is relied on.
        file.sync_all()?;
        File::open(&self.dir)?.sync_all()?;
        self.current = Some(Segment {
            file,
            path,
            first_seq: seq,
            written: 0,
            capacity,
        });
        Ok(())
    }
}

fn fdatasync(file: &File) -> io::Result<()> {
    // SAFETY: the descriptor belongs to `file`, which is open for the duration of the call.
    if unsafe { libc::fdatasync(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reserves `len` bytes of disk for `file` (its size becomes `len`).
fn preallocate(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(io::Error::other)?;
    // SAFETY: the descriptor belongs to `file`, which is open for the duration of the call.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        // A file system without fallocate: a plain size works, only slower to sync.
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(len as u64),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}
