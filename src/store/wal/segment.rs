//! One open log segment and how a record reaches its disk blocks.
//!
//! Where the file system allows it, records go through a second descriptor opened with
//! `O_DIRECT | O_DSYNC`: one write that is durable when it returns, without the page cache or a
//! separate `fdatasync` (STORE.md has the measurements). Direct writes are whole, aligned 4 KB
//! blocks, so the last, partial block is kept in memory and written again, unchanged in front of
//! the next record; the bytes after a record up to the block's end are zeros. Where `O_DIRECT`
//! is refused (tmpfs), records are written through the page cache and synced with `fdatasync`.
//!
//! This file owns one segment's descriptors and buffers; choosing, naming and deleting segments
//! is mod.rs's.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The unit of a direct write (and the alignment of its buffer and offset).
pub const BLOCK: u64 = 4096;
/// A staging buffer that grew past this (a huge record) is not kept for the next write.
const KEEP_STAGING: usize = 4 << 20;

pub struct Segment {
    pub path: PathBuf,
    /// The sequence of its first record.
    pub first_seq: u64,
    /// Bytes of records written so far (the next record goes here).
    pub written: u64,
    pub capacity: u64,
    file: File,
    direct: Option<File>,
    /// The bytes of the last, partial block (direct writes only).
    tail: Vec<u8>,
    /// Where records are encoded and written from (an aligned window of it, for direct writes).
    staging: Vec<u8>,
}

impl Segment {
    /// Wraps `file` (open for reading and writing, `capacity` bytes long) and opens the direct
    /// descriptor when the file system takes it (`direct` asks for it).
    pub fn new(path: PathBuf, file: File, first_seq: u64, capacity: u64, direct: bool) -> Segment {
        let direct = if direct { open_direct(&path) } else { None };
        Segment {
            path,
            first_seq,
            written: 0,
            capacity,
            file,
            direct,
            tail: Vec::new(),
            staging: Vec::new(),
        }
    }

    /// Whether writes are durable when they return (direct) or need [`Segment::sync`].
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Whether a record of `len` bytes still fits.
    pub fn fits(&self, len: u64) -> bool {
        self.written + len <= self.capacity
    }

    /// Writes a record of `len` bytes, which `encode` appends to the buffer it is given, after
    /// the records written so far. Direct: durable on return. The record is encoded straight
    /// into the (aligned) buffer that is written: its bodies are copied once.
    pub fn append(&mut self, len: usize, encode: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        self.staging.clear();
        let Some(direct) = &self.direct else {
            encode(&mut self.staging);
            self.file.write_all_at(&self.staging, self.written)?;
            self.written += self.staging.len() as u64;
            self.release_large_staging();
            return Ok(());
        };
        let block_start = self.written - self.written % BLOCK;
        let head = self.tail.len();
        let end = head + len;
        let padded = end.div_ceil(BLOCK as usize) * BLOCK as usize;
        // Room for the padded blocks wherever the aligned start falls: no reallocation below,
        // so the start stays aligned.
        self.staging.reserve(padded + BLOCK as usize);
        let offset = self.staging.as_ptr().align_offset(BLOCK as usize);
        self.staging.resize(offset, 0);
        self.staging.extend_from_slice(&self.tail);
        let start = self.staging.as_ptr();
        encode(&mut self.staging);
        if self.staging.as_ptr() != start || self.staging.len() != offset + end {
            return Err(io::Error::other(
                "write-ahead record longer than announced (not written)",
            ));
        }
        self.staging.resize(offset + padded, 0);
        direct.write_all_at(&self.staging[offset..], block_start)?;
        self.written += len as u64;
        let keep = (self.written % BLOCK) as usize;
        self.tail.clear();
        self.tail
            .extend_from_slice(&self.staging[offset + end - keep..offset + end]);
        self.release_large_staging();
        Ok(())
    }

    fn release_large_staging(&mut self) {
        if self.staging.capacity() > KEEP_STAGING {
            self.staging = Vec::new();
        }
    }

    /// Makes buffered writes durable (`fdatasync`); direct ones already are.
    pub fn sync(&self) -> io::Result<()> {
        if self.direct.is_some() {
            return Ok(());
        }
        fdatasync(&self.file)
    }
}

fn open_direct(path: &Path) -> Option<File> {
    match File::options()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(path)
    {
        // The descriptor must really be synchronous: a confirm relies on each write being on
        // disk when it returns.
        Ok(file) if status_flags(&file) & libc::O_DSYNC == libc::O_DSYNC => Some(file),
        Ok(_) => {
            tracing::warn!(
                "{}: O_DSYNC did not stick; writing through the page cache",
                path.display()
            );
            None
        }
        Err(e) => {
            tracing::debug!(
                "{}: no direct I/O ({e}); writing through the page cache",
                path.display()
            );
            None
        }
    }
}

fn status_flags(file: &File) -> libc::c_int {
    // SAFETY: the descriptor belongs to `file`, which is open for the duration of the call.
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) }
}

pub fn fdatasync(file: &File) -> io::Result<()> {
    // SAFETY: the descriptor belongs to `file`, which is open for the duration of the call.
    if unsafe { libc::fdatasync(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
