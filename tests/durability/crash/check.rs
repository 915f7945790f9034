//! The end-of-test checks of the crash test, over everything the clients of every life saw and
//! the final drain.

use std::collections::{HashMap, HashSet};

use super::clients::{Log, Seen};

/// The end-of-test checks over everything the clients saw and the final drain; returns the
/// violations and a summary line.
pub(super) fn check(l: &mut Log, drained: Vec<Seen>, final_life: usize) -> (Vec<String>, String) {
    let mut violations: Vec<String> = Vec::new();

    // 1. Confirmed and never acked: present.
    let depth = drained.len();
    let present: HashSet<&str> = drained.iter().map(|s| s.id.as_str()).collect();
    let mut lost: Vec<&String> = l
        .confirmed
        .iter()
        .filter(|id| !l.acked.contains(*id) && !present.contains(id.as_str()))
        .collect();
    lost.sort();
    if !lost.is_empty() {
        violations.push(format!(
            "{} confirmed (and never acked) messages lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        ));
    }

    // 2. Nothing unknown; no transient message from an earlier life.
    let all: Vec<Seen> = l.deliveries.drain(..).chain(drained).collect();
    for s in &all {
        if l.sent.contains(&s.id) {
            continue;
        }
        match l.sent_transient.get(&s.id) {
            Some(&sent_life) if sent_life == s.life => {}
            Some(&sent_life) => violations.push(format!(
                "transient message {} published to life {sent_life} delivered by life {}",
                s.id, s.life
            )),
            None => violations.push(format!(
                "life {}: delivered {:?}, which was never published",
                s.life, s.id
            )),
        }
    }

    // 3. Seen before: only again with redelivered, and never twice in one life.
    let mut seen_in: HashMap<&str, usize> = HashMap::new();
    for s in &all {
        if let Some(&prev) = seen_in.get(s.id.as_str()) {
            if prev == s.life {
                violations.push(format!(
                    "life {}: {} delivered twice by the same broker (nothing was requeued)",
                    s.life, s.id
                ));
            } else if !s.redelivered {
                violations.push(format!(
                    "life {}: {} delivered before (life {prev}) but redelivered = false",
                    s.life, s.id
                ));
            }
        }
        seen_in.insert(&s.id, s.life);
    }

    // 4. What is left is in publish order: older lives first; per publisher, increasing n.
    let final_ids: Vec<&str> = all
        .iter()
        .filter(|s| s.life == final_life)
        .map(|s| s.id.as_str())
        .collect();
    let mut last_life = 0usize;
    let mut last_n: HashMap<&str, u64> = HashMap::new();
    for id in &final_ids {
        let Some((tag, n)) = id.rsplit_once('-') else {
            continue;
        };
        let Ok(n) = n.trim_start_matches('t').parse::<u64>() else {
            continue;
        };
        let life: usize = tag
            .trim_start_matches('l')
            .split('p')
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        if life < last_life {
            violations.push(format!(
                "order: {id} (life {life}) comes after a message published in life {last_life}"
            ));
        }
        last_life = last_life.max(life);
        if let Some(&prev) = last_n.get(tag)
            && n <= prev
        {
            violations.push(format!("order: {id} comes after {tag}-{prev}"));
        }
        last_n.insert(tag, n);
    }

    let acked_back = final_ids.iter().filter(|id| l.acked.contains(**id)).count();
    let summary = format!(
        "final: {depth} messages left and consumed, {} sent in all, {} confirmed, {} acked ({} \
         of those came back), {} nacks",
        l.sent.len() + l.sent_transient.len(),
        l.confirmed.len(),
        l.acked.len(),
        acked_back,
        l.nacked,
    );
    (violations, summary)
}
