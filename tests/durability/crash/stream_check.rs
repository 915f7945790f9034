//! The end-of-test checks of the stream crash test: the final read from `first` (offsets 0, 1,
//! 2 … as the read itself checked) against what the publishers sent and had confirmed, and
//! where the reads from a timestamp started.

use std::collections::{HashMap, HashSet};

use super::clients::Log;

/// Checks the final read (offset and body id of every entry, in offset order) and the reads
/// from a timestamp (life, seconds, first offset); returns the violations and a summary line.
pub(super) fn check_stream(
    l: &Log,
    read: &[(u64, String)],
    from_timestamps: &[(usize, u64, u64)],
) -> (Vec<String>, String) {
    let mut violations = Vec::new();

    // 1. Each entry once; nothing that was never published.
    let mut at: HashMap<&str, u64> = HashMap::with_capacity(read.len());
    let mut unknown = Vec::new();
    for (offset, id) in read {
        if let Some(first) = at.insert(id, *offset) {
            violations.push(format!("{id} at offsets {first} and {offset}"));
        }
        if !l.sent.contains(id) && !l.sent_transient.contains_key(id) {
            unknown.push(format!("{id:?} at {offset}"));
        }
    }
    if !unknown.is_empty() {
        violations.push(format!(
            "{} entries that were never published, e.g. {:?}",
            unknown.len(),
            &unknown[..unknown.len().min(10)]
        ));
    }

    // 2. Every confirmed message is there (transient ones too: a stream stores everything).
    let mut lost: Vec<&String> = l
        .confirmed
        .iter()
        .filter(|id| !at.contains_key(id.as_str()))
        .collect();
    lost.sort();
    if !lost.is_empty() {
        violations.push(format!(
            "{} confirmed messages missing from the stream, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        ));
    }

    // 3. Appended in publish order: each publisher's messages in the order it sent them, an
    // older broker life's before a newer one's.
    let mut last_life = 0usize;
    let mut last_n: HashMap<&str, (u64, u64)> = HashMap::new();
    for (offset, id) in read {
        let Some((tag, life, n)) = parse_id(id) else {
            continue;
        };
        if life < last_life {
            violations.push(format!(
                "order: {id} (life {life}) at offset {offset}, after an entry of life {last_life}"
            ));
        }
        last_life = last_life.max(life);
        if let Some(&(prev, prev_offset)) = last_n.get(tag)
            && n <= prev
        {
            violations.push(format!(
                "order: {id} at offset {offset} comes after message {prev} of {tag} (offset \
                 {prev_offset})"
            ));
        }
        last_n.insert(tag, (n, *offset));
    }

    for &(life, seconds, first) in from_timestamps {
        check_timestamp_read(l, read, life, seconds, first, &mut violations);
    }

    let unconfirmed = read.len()
        - l.confirmed
            .iter()
            .filter(|id| at.contains_key(id.as_str()))
            .count();
    let transient: HashSet<&str> = l.sent_transient.keys().map(String::as_str).collect();
    let transient_kept = read
        .iter()
        .filter(|(_, id)| transient.contains(id.as_str()))
        .count();
    let summary = format!(
        "Stream final: {} entries read from first, {} sent in all, {} confirmed, {unconfirmed} \
         unconfirmed ones kept, {transient_kept} transient ones kept, {} nacks",
        read.len(),
        l.sent.len() + l.sent_transient.len(),
        l.confirmed.len(),
        l.nacked,
    );
    (violations, summary)
}

/// `l{life}p{p}-{n}` or `l{life}p{p}-t{n}`: the publisher's tag, the life and n.
fn parse_id(id: &str) -> Option<(&str, usize, u64)> {
    let (tag, n) = id.rsplit_once('-')?;
    let n = n.trim_start_matches('t').parse().ok()?;
    let life = tag.strip_prefix('l')?.split('p').next()?.parse().ok()?;
    Some((tag, life, n))
}

/// A read from timestamp `seconds` that started at offset `first` (its entries were contiguous
/// from there): an entry published at or after the time comes at or after `first` (its append
/// time is no earlier than when basic.publish was called), and one confirmed before the time
/// comes before `first` (it was appended before its confirm came).
fn check_timestamp_read(
    l: &Log,
    read: &[(u64, String)],
    life: usize,
    seconds: u64,
    first: u64,
    violations: &mut Vec<String>,
) {
    let at = seconds * 1000;
    let mut wrong = Vec::new();
    for (offset, id) in read {
        let Some(&(sent, confirmed)) = l.times.get(id) else {
            continue;
        };
        if *offset < first && sent >= at {
            wrong.push(format!(
                "{id} at {offset}, published {} ms after",
                sent - at
            ));
        }
        if let Some(confirmed) = confirmed
            && *offset >= first
            && confirmed < at
        {
            wrong.push(format!(
                "{id} at {offset}, confirmed {} ms before",
                at - confirmed
            ));
        }
    }
    if !wrong.is_empty() {
        violations.push(format!(
            "life {life}: a read from timestamp {seconds} s started at offset {first}, but {} \
             entries are on the wrong side of it, e.g. {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        ));
    }
}
