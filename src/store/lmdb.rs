//! The LMDB environment and the one way to use it: every transaction is begun through
//! [`Lmdb::shared`], which holds the shared side of a lock for as long as the transaction may
//! live; growing the memory map ([`Lmdb::grow`]) and closing the store take the exclusive side.
//!
//! heed's `Env::resize` (LMDB's `mdb_env_set_mapsize`) is only sound while no transaction is
//! active in this process, and it moves the map — so the address range that [`MapPages`]
//! releases is looked up again under the same exclusive lock. A transaction that ends with
//! `MapFull` is aborted, the map doubled, and the work redone ([`Lmdb::write`]): a full map
//! is a pause, not an outage.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use heed::{Env, MdbError, RoTxn, RwTxn, WithTls};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use super::StoreError;
use super::map_pages::MapPages;

/// What the exclusive side of the lock protects besides "no transaction is active".
struct MapState {
    pages: MapPages,
    /// The store has shut down: no more transactions.
    closed: bool,
}

pub struct Lmdb {
    env: &'static Env,
    state: RwLock<MapState>,
}

/// Permission to begin transactions; hold it until they are committed or dropped.
pub struct Shared<'a> {
    env: &'static Env,
    state: RwLockReadGuard<'a, MapState>,
}

impl Shared<'_> {
    /// A write transaction; it cannot outlive this guard.
    pub fn write_txn(&self) -> heed::Result<RwTxn<'_>> {
        self.env.write_txn()
    }

    /// A read transaction; it cannot outlive this guard.
    pub fn read_txn(&self) -> heed::Result<RoTxn<'_, WithTls>> {
        self.env.read_txn()
    }

    pub fn map_pages(&self) -> &MapPages {
        &self.state.pages
    }
}

/// Environment directories this process has opened. An environment lives as long as the
/// process (databases borrow it for `'static`), and heed's `open` is only sound once per
/// process per path, so a path is claimed for good.
static OPENED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Claims `path` for this process's one LMDB environment there, or refuses: it was opened
/// before (by an earlier store in this process, even one that has shut down).
pub fn claim_once_per_process(path: &Path) -> Result<(), StoreError> {
    let canonical = path
        .canonicalize()
        .map_err(|e| StoreError(format!("cannot resolve {}: {e}", path.display())))?;
    let mut opened = OPENED.lock();
    if !opened.get_or_insert_with(HashSet::new).insert(canonical) {
        return Err(StoreError(format!(
            "the store in {} was already opened by this process (an LMDB environment is \
             opened once per process)",
            path.display()
        )));
    }
    Ok(())
}

/// Whether an error is LMDB's "map full".
pub fn is_map_full(e: &heed::Error) -> bool {
    matches!(e, heed::Error::Mdb(MdbError::MapFull))
}

impl Lmdb {
    pub fn new(env: &'static Env, pages: MapPages) -> Self {
        Lmdb {
            env,
            state: RwLock::new(MapState {
                pages,
                closed: false,
            }),
        }
    }

    /// The shared side of the lock, or an error once the store is closed.
    pub fn shared(&self) -> Result<Shared<'_>, StoreError> {
        let state = self.state.read();
        if state.closed {
            return Err(StoreError("the store is shut down".into()));
        }
        Ok(Shared {
            env: self.env,
            state,
        })
    }

    /// Runs `work` in a write transaction and commits it; on `MapFull` (from `work` or the
    /// commit) the transaction is aborted, the map grown, and `work` run again from scratch.
    pub fn write<T>(
        &self,
        mut work: impl FnMut(&mut RwTxn) -> heed::Result<T>,
    ) -> Result<T, StoreError> {
        self.write_with_pages(|wtxn, _| work(wtxn))
    }

    /// [`Lmdb::write`], with the map's pages at hand (a long transaction releases them as it
    /// goes: map_pages.rs).
    pub fn write_with_pages<T>(
        &self,
        mut work: impl FnMut(&mut RwTxn, &MapPages) -> heed::Result<T>,
    ) -> Result<T, StoreError> {
        loop {
            let outcome = {
                let shared = self.shared()?;
                let mut wtxn = shared.write_txn()?;
                // On error `wtxn` is dropped (aborted) here, before the guard.
                work(&mut wtxn, shared.map_pages()).and_then(|value| wtxn.commit().map(|()| value))
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(e) if is_map_full(&e) => self.grow()?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Doubles the map. Waits for every transaction in this process to end first.
    pub fn grow(&self) -> Result<(), StoreError> {
        let mut state = self.state.write();
        if state.closed {
            return Err(StoreError("the store is shut down".into()));
        }
        let old = self.env.info().map_size;
        let new = old
            .checked_mul(2)
            .ok_or_else(|| StoreError(format!("the LMDB map cannot grow past {old} bytes")))?;
        // SAFETY: the exclusive lock is held and every transaction of this process is begun
        // under its shared side (`Lmdb::shared`) and ends before that guard is released, so
        // no transaction is active.
        unsafe { self.env.resize(new) }
            .map_err(|e| StoreError(format!("cannot grow the LMDB map to {new} bytes: {e}")))?;
        // The map may have moved: find it again before anyone releases pages through it.
        state.pages = MapPages::find(&state.pages.data_file);
        tracing::info!(
            "LMDB map full at {} MiB: grown to {} MiB",
            old >> 20,
            new >> 20
        );
        Ok(())
    }

    /// The current map size in bytes.
    pub fn map_size(&self) -> usize {
        self.env.info().map_size
    }

    /// No transaction may begin after this; waits for the ones in progress.
    pub fn close(&self) {
        self.state.write().closed = true;
    }
}
