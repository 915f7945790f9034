//! The write-ahead log: where a batch of store operations becomes durable with one synchronous
//! write into an already-allocated file, before LMDB has seen it. The writer thread (writer.rs)
//! appends a record per batch, syncs when someone waits for the batch, and the checkpoint
//! thread applies the operations to LMDB later; after a crash, recovery replays the records LMDB
//! had not applied yet (replay.rs). STORE.md in the repository root says why, with the numbers.
//!
//! Files: `wal/<first batch sequence, 20 digits>.wal`. A record never spans two files. A new
//! segment is, when one is ready, the spare (spare.rs: a covered segment recycled, or a file
//! zero-filled in the background, once per process), renamed into place; otherwise a fresh file
//! preallocated with `fallocate` ([`FIRST_SEGMENT_SIZE`] for the first, [`SEGMENT_SIZE`] after,
//! or more for one larger record). Either way a sync
//! writes data blocks and no size change; records go through `O_DIRECT | O_DSYNC` where the file
//! system allows (segment.rs). Before a record goes into a new segment, the previous one is
//! synced, so a durable record never follows a lost one; the new segment's name is synced in
//! its directory before anything in it is relied on. A segment LMDB has fully covered becomes
//! the spare, or is deleted.
//!
//! This file owns the files and the syncs; it knows records only through record.rs and never
//! touches LMDB.

pub mod record;
pub mod replay;
mod segment;
mod spare;

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Op;
use segment::{BLOCK, Segment};
use spare::Spare;
pub use spare::is_spare_name;

/// Size of a spare segment (zero-filled, or recycled from one of this size).
pub const SEGMENT_SIZE: u64 = 64 << 20;
/// Size of the first segment a process opens: allocated on the spot while the first spare is
/// zero-filled in the background (later segments without a spare ready are full-sized).
pub const FIRST_SEGMENT_SIZE: u64 = 8 << 20;

/// The name of the segment whose first record has batch sequence `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

/// The first batch sequence a segment file name stands for.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_suffix(".wal")?.parse().ok()
}

pub struct Wal {
    dir: PathBuf,
    current: Option<Segment>,
    /// Older segments (first sequence, path), oldest first, until a checkpoint covers them.
    closed: VecDeque<(u64, PathBuf)>,
    next_seq: u64,
    /// Records written since the last sync.
    unsynced: bool,
    /// How many times records were made durable: syncs, and direct writes (which are
    /// synchronous). Read by tests through the store.
    syncs: Arc<AtomicU64>,
    spare: Spare,
    /// Try `O_DIRECT | O_DSYNC` for new segments (tests turn it off to cover the other path).
    direct: bool,
    /// A segment was opened before: fresh ones are full-sized from now on, and spares come
    /// from recycling only (one zero-filled spare per process, for the start).
    opened_before: bool,
}

impl Wal {
    /// A log in `dir` (created if missing, and holding no segments: replay removed them) whose
    /// first record will have sequence `next_seq`.
    pub fn new(dir: &Path, next_seq: u64, syncs: Arc<AtomicU64>, direct: bool) -> io::Result<Wal> {
        std::fs::create_dir_all(dir)?;
        Ok(Wal {
            spare: Spare::new(dir, SEGMENT_SIZE),
            direct,
            opened_before: false,
            dir: dir.to_path_buf(),
            current: None,
            closed: VecDeque::new(),
            next_seq,
            unsynced: false,
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
    pub fn write<'a>(&mut self, ops: impl IntoIterator<Item = &'a Op> + Clone) -> io::Result<u64> {
        let seq = self.next_seq;
        let len = record::encoded_len(ops.clone());
        if !self.current.as_ref().is_some_and(|s| s.fits(len as u64)) {
            self.open_segment(seq, len as u64)?;
        }
        let Some(segment) = self.current.as_mut() else {
            return Err(io::Error::other("no open write-ahead segment"));
        };
        segment.append(len, |out| {
            record::encode(seq, ops, out);
        })?;
        if segment.is_direct() {
            self.syncs.fetch_add(1, Ordering::Relaxed);
        } else {
            self.unsynced = true;
        }
        self.next_seq += 1;
        Ok(seq)
    }

    /// Whether records were written since the last sync.
    pub fn has_unsynced(&self) -> bool {
        self.unsynced
    }

    /// Makes every record written so far durable: one `fdatasync` of the current segment
    /// (older segments were synced when they were closed).
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some(segment) = &self.current
            && self.unsynced
        {
            segment.sync()?;
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
            if !self.spare.recycle(path)
                && let Err(e) = std::fs::remove_file(path)
            {
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
    /// opens a new one for a record of `len` bytes with sequence `seq`: the spare if one is
    /// ready and large enough, else a fresh file (and a spare is prepared for next time).
    fn open_segment(&mut self, seq: u64, len: u64) -> io::Result<()> {
        if let Some(old) = self.current.take() {
            if self.unsynced {
                old.sync()?;
                self.syncs.fetch_add(1, Ordering::Relaxed);
                self.unsynced = false;
            }
            self.closed.push_back((old.first_seq, old.path));
        }
        let path = self.dir.join(segment_name(seq));
        let (file, capacity) = match self.take_spare(&path, len)? {
            Some(reused) => reused,
            None => {
                let file = File::options()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)?;
                let size = if self.opened_before {
                    SEGMENT_SIZE
                } else {
                    FIRST_SEGMENT_SIZE
                };
                let capacity = size.max(len).div_ceil(BLOCK) * BLOCK;
                if self.direct && !self.opened_before {
                    // No spare yet: the small first segment is written with zeros on the spot
                    // (~15 ms for 8 MB here), so direct writes never convert extents.
                    spare::write_zeros(&file, capacity)?;
                } else {
                    preallocate(&file, capacity)?;
                    // The file's size and extents are durable before any record in it is.
                    file.sync_all()?;
                }
                (file, capacity)
            }
        };
        // So is its name in the directory.
        File::open(&self.dir)?.sync_all()?;
        let segment = Segment::new(path, file, seq, capacity, self.direct);
        // Zero-filled blocks only pay with direct writes (and on tmpfs they would take memory).
        let direct = segment.is_direct();
        self.current = Some(segment);
        if direct && !self.opened_before {
            // Ready by the time the small first segment is full, unless writes come very fast.
            self.spare.prepare();
        }
        self.opened_before = true;
        Ok(())
    }

    /// Renames the spare to `path` if one is ready and holds `len` bytes.
    fn take_spare(&mut self, path: &Path, len: u64) -> io::Result<Option<(File, u64)>> {
        let Some(spare) = self.spare.take() else {
            return Ok(None);
        };
        let capacity = std::fs::metadata(&spare)?.len() / BLOCK * BLOCK;
        if capacity < len {
            std::fs::remove_file(&spare)?;
            return Ok(None);
        }
        std::fs::rename(&spare, path)?;
        let file = File::options().read(true).write(true).open(path)?;
        Ok(Some((file, capacity)))
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::put_for_test;

    fn put(id: u64) -> Op {
        let len = 20_000 + (id % 7) as usize * 1000;
        put_for_test(id, Bytes::from(vec![(id % 251) as u8; len]))
    }

    fn ids(replay: &replay::Replay) -> Vec<u64> {
        replay
            .ops
            .iter()
            .map(|op| match op {
                Op::PutMessage { id, record } => {
                    assert!(record.body.iter().all(|b| *b == (id % 251) as u8));
                    *id
                }
                _ => 0,
            })
            .collect()
    }

    /// Writes 2,400 records of ~23 KB (55 MB: fresh segments, then spares, zero-filled or
    /// recycled once the first half counts as applied), then replays the second half.
    fn writes_then_replays(direct: bool) {
        let dir = std::env::temp_dir().join(format!("warren-wal-{}-{direct}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let syncs = Arc::new(AtomicU64::new(0));
        let mut wal = Wal::new(&dir, 1, syncs.clone(), direct).unwrap();
        for id in 1..=2400 {
            assert_eq!(wal.write(&[put(id)]).unwrap(), id);
            if id % 10 == 0 {
                wal.sync().unwrap();
            }
            if id == 1200 {
                wal.applied_through(1200);
            }
            // Give the spare a moment now and then, so that some segments are spares.
            if id % 400 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(100));
                wal.applied_through(id.min(1200));
            }
        }
        wal.sync().unwrap();
        assert!(syncs.load(Ordering::Relaxed) >= 240);
        let replay = replay::read(&dir, 1200).unwrap();
        assert_eq!(ids(&replay), (1201..=2400).collect::<Vec<_>>());
        assert_eq!(replay.last_seq, 2400);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn records_written_directly_replay_in_order_across_fresh_and_spare_segments() {
        writes_then_replays(true);
    }

    #[test]
    fn records_written_through_the_page_cache_replay_in_order_too() {
        writes_then_replays(false);
    }
}
