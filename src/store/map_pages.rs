//! Keeping LMDB's memory map out of the broker's resident set.
//!
//! LMDB reads through a shared, read-only file mapping; every page it touches (B-tree walks while
//! writing, bodies read back while delivering, the index walk at recovery) stays mapped into this
//! process and counts in its RSS until the kernel needs the memory. For a backlog larger than RAM
//! that makes RSS track the database size. Dropping our page-table entries with
//! `madvise(MADV_DONTNEED)` every so many bytes keeps RSS bounded; the pages stay in the page
//! cache, and a later read simply faults them back in.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Release after this many bytes have gone through the map.
const RELEASE_EVERY: u64 = 64 << 20;

pub struct MapPages {
    /// LMDB's data file, to find its mapping again after the map is resized.
    pub data_file: PathBuf,
    /// Start and length of the data file's mapping, found in /proc/self/maps.
    range: Option<(usize, usize)>,
    touched: AtomicU64,
}

impl MapPages {
    /// Finds the mapping of `data_file` (LMDB's data.mdb) in this process. A resize moves the
    /// mapping: find it again then (see lmdb.rs), or `release` would advise the wrong range.
    pub fn find(data_file: &Path) -> Self {
        let range = std::fs::read_to_string("/proc/self/maps")
            .ok()
            .and_then(|maps| {
                let wanted = data_file.to_str()?;
                maps.lines().find(|l| l.ends_with(wanted)).and_then(|line| {
                    let (start, end) = line.split_whitespace().next()?.split_once('-')?;
                    let start = usize::from_str_radix(start, 16).ok()?;
                    let end = usize::from_str_radix(end, 16).ok()?;
                    Some((start, end - start))
                })
            });
        if range.is_none() {
            tracing::warn!(
                "cannot find the LMDB mapping of {}; its pages will count in RSS",
                data_file.display()
            );
        }
        MapPages {
            data_file: data_file.to_path_buf(),
            range,
            touched: AtomicU64::new(0),
        }
    }

    /// Records `bytes` read or written through the map; releases the pages every 64 MB.
    pub fn touched(&self, bytes: u64) {
        let before = self.touched.fetch_add(bytes, Ordering::Relaxed);
        if before / RELEASE_EVERY != (before + bytes) / RELEASE_EVERY {
            self.release();
        }
    }

    /// Releases the pages if this process's file-backed resident memory is over
    /// [`RELEASE_EVERY`] (from `/proc/self/statm`): the byte count `touched` is given leaves
    /// out what LMDB's own B-tree walks touch, which deleting many records makes large.
    pub fn release_if_resident(&self) {
        let shared_pages = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(2)?.parse::<u64>().ok());
        if shared_pages.is_some_and(|pages| pages * 4096 > RELEASE_EVERY) {
            self.release();
        }
    }

    pub fn release(&self) {
        if let Some((start, len)) = self.range {
            // SAFETY: the range is LMDB's own read-only shared file mapping; MADV_DONTNEED only
            // drops this process's page-table entries, and later reads fault the same file pages
            // back in from the page cache.
            unsafe {
                libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
            }
        }
    }
}
