//! Start-up sweep of records that nothing references: a message record with no queue index
//! entry pointing at it (a persistent message every queue refused — x-overflow reject-publish —
//! or one whose last queue went away before its entry was written), and reference counts that
//! disagree with the index. Left alone, such records would stay in LMDB forever.
//!
//! The index is the truth: recovery hands over every message id it found there (8 bytes a
//! message, sorted here), and one ordered walk of `messages` and `refcounts` side by side finds
//! what to drop or correct, written in one transaction and reported in one log line.

use std::iter::Peekable;

use heed::RoTxn;

use super::lmdb::Lmdb;
use super::schema::u64_value;
use super::{Dbs, StoreError};

/// What the walk found.
#[derive(Default, Debug, PartialEq, Eq)]
struct Plan {
    /// Message records no index entry points at (dropped with their counts).
    orphans: Vec<u64>,
    orphan_bytes: u64,
    /// Reference counts of messages that are not stored.
    stray_counts: Vec<u64>,
    /// Counts that disagree with the index: (message id, references found).
    corrected_counts: Vec<(u64, u64)>,
}

/// Drops what nothing references, given every message id the queue indexes hold (in any
/// order, repeated once per reference).
pub fn sweep(lmdb: &Lmdb, dbs: &Dbs, mut referenced: Vec<u64>) -> Result<(), StoreError> {
    referenced.sort_unstable();
    let plan = {
        let shared = lmdb.shared()?;
        let rtxn = shared.read_txn()?;
        find(&rtxn, dbs, &referenced)?
    };
    drop(referenced);
    if plan == Plan::default() {
        return Ok(());
    }
    lmdb.write(|wtxn| {
        for id in &plan.orphans {
            dbs.messages.delete(wtxn, &id.to_be_bytes())?;
            dbs.refcounts.delete(wtxn, &id.to_be_bytes())?;
        }
        for id in &plan.stray_counts {
            dbs.refcounts.delete(wtxn, &id.to_be_bytes())?;
        }
        for (id, count) in &plan.corrected_counts {
            dbs.refcounts
                .put(wtxn, &id.to_be_bytes(), &count.to_be_bytes())?;
        }
        Ok(())
    })?;
    tracing::info!(
        "recovery dropped {} message records that nothing references ({} bytes), {} stray \
         reference counts, and corrected {} reference counts",
        plan.orphans.len(),
        plan.orphan_bytes,
        plan.stray_counts.len(),
        plan.corrected_counts.len()
    );
    Ok(())
}

fn find(rtxn: &RoTxn, dbs: &Dbs, referenced: &[u64]) -> Result<Plan, StoreError> {
    let mut plan = Plan::default();
    let mut refs = referenced.iter().copied().peekable();
    let mut counts = dbs.refcounts.iter(rtxn)?.peekable();
    for entry in dbs.messages.iter(rtxn)? {
        let (key, value) = entry?;
        let Some(id) = u64_value(key) else {
            continue; // not a key the store writes: leave it
        };
        // Ids referenced but not stored are recovery's business (the queue's read fails).
        while refs.next_if(|r| *r < id).is_some() {}
        let mut found = 0u64;
        while refs.next_if_eq(&id).is_some() {
            found += 1;
        }
        let stored = stored_count(&mut counts, id, &mut plan);
        if found == 0 {
            plan.orphans.push(id);
            plan.orphan_bytes += value.len() as u64;
        } else if stored != Some(found) {
            plan.corrected_counts.push((id, found));
        }
    }
    // Counts past the last message record (and any read error the walk stopped at).
    for entry in counts {
        let (key, _) = entry?;
        plan.stray_counts.extend(u64_value(key));
    }
    Ok(plan)
}

/// Advances the refcount walk to message `id`: counts of smaller ids are strays; returns the
/// count stored for `id` (`None` if absent or unreadable).
fn stored_count<'t>(
    counts: &mut Peekable<impl Iterator<Item = heed::Result<(&'t [u8], &'t [u8])>>>,
    id: u64,
    plan: &mut Plan,
) -> Option<u64> {
    while let Some(Ok((key, value))) = counts.peek() {
        let (key, value): (&[u8], &[u8]) = (key, value);
        match u64_value(key) {
            Some(count_id) if count_id > id => return None,
            Some(count_id) if count_id == id => {
                counts.next();
                return u64_value(value);
            }
            Some(count_id) => plan.stray_counts.push(count_id),
            None => {} // not a key the store writes: leave it
        }
        counts.next();
    }
    None
}
