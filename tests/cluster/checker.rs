//! A Jepsen-style checker for a queue under failures: publishers with confirms and manual-ack
//! consumers run against a shared, updatable list of node URIs (trying them in turn, reconnecting
//! when their connection dies), every publish and delivery is recorded in a [`History`], and at
//! the end a drain reads the queue until it is empty and quiet. The [`Report`] then says whether
//! every message id confirmed to a publisher was delivered, and delivered again only marked
//! redelivered.
//!
//! A publish whose connection died before its confirm came has an unknown fate: it may or may
//! not have been enqueued, so it is never counted as lost (nor is a nacked or returned one).
//! Everything is bounded in time: clients stop at [`Load::max_publish`] / [`Load::max_total`]
//! whatever happens, and each network call has its own timeout.

mod clients;
mod load;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

pub use load::{Checker, Load, declare_queue};

/// The AMQP URIs of the nodes clients may use; the test updates it (a restarted node listens on
/// another port) and clients read it again on every connection attempt.
pub type Uris = Arc<Mutex<Vec<String>>>;

pub fn uris(list: Vec<String>) -> Uris {
    Arc::new(Mutex::new(list))
}

/// What became of one publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Sent (or about to be), no confirm seen: the connection died first, or the publisher
    /// stopped waiting. May or may not be in the queue.
    Unknown,
    /// basic.ack: the broker took responsibility for it.
    Confirmed,
    /// basic.nack.
    Nacked,
    /// basic.return (published mandatory, no queue to route to), then confirmed.
    Returned,
}

/// One delivery a consumer (or the drain) saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub id: String,
    pub redelivered: bool,
}

/// Everything the clients did, in the order they recorded it.
#[derive(Default)]
pub struct History {
    /// Every id a publisher tried to publish (recorded before basic.publish is called).
    pub published: HashMap<String, Fate>,
    /// Every delivery, in the order consumers recorded them (each before acking it).
    pub deliveries: Vec<Seen>,
    confirmed: usize,
    last_delivery: Option<Instant>,
    publisher_sessions: usize,
    consumer_sessions: usize,
    failed_connects: usize,
}

impl History {
    pub fn attempt(&mut self, id: &str) {
        self.published.insert(id.to_string(), Fate::Unknown);
    }

    pub fn settle(&mut self, id: &str, fate: Fate) {
        if let Some(f) = self.published.get_mut(id) {
            if fate == Fate::Confirmed && *f != Fate::Confirmed {
                self.confirmed += 1;
            }
            *f = fate;
        }
    }

    pub fn deliver(&mut self, id: &str, redelivered: bool) {
        self.deliveries.push(Seen {
            id: id.to_string(),
            redelivered,
        });
        self.last_delivery = Some(Instant::now());
    }

    /// What the history says: the counts and every violation.
    pub fn report(&self) -> Report {
        let mut report = Report::default();
        for fate in self.published.values() {
            match fate {
                Fate::Unknown => report.unknown += 1,
                Fate::Confirmed => report.confirmed += 1,
                Fate::Nacked => report.nacked += 1,
                Fate::Returned => report.returned += 1,
            }
        }
        report.published = self.published.len();
        // Per id: how many copies, and whether a copy after the first lacked the flag.
        let mut copies: HashMap<&str, (usize, bool)> = HashMap::new();
        for seen in &self.deliveries {
            report.delivered += 1;
            report.redeliveries += usize::from(seen.redelivered);
            let entry = copies.entry(seen.id.as_str()).or_default();
            if entry.0 > 0 && !seen.redelivered {
                entry.1 = true;
            }
            entry.0 += 1;
        }
        report.distinct_delivered = copies.len();
        for (id, (count, bad)) in &copies {
            if *count > 1 {
                report.duplicated += 1;
            }
            if *bad {
                report.duplicates_not_redelivered.push(id.to_string());
            }
            match self.published.get(*id) {
                None => report.unexpected.push(id.to_string()),
                Some(Fate::Unknown) => report.unknown_delivered += 1,
                Some(_) => {}
            }
        }
        report.lost = self
            .published
            .iter()
            .filter(|(id, fate)| **fate == Fate::Confirmed && !copies.contains_key(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        for list in [
            &mut report.lost,
            &mut report.duplicates_not_redelivered,
            &mut report.unexpected,
        ] {
            list.sort_by_key(|id| id_order(id));
        }
        report.publisher_sessions = self.publisher_sessions;
        report.consumer_sessions = self.consumer_sessions;
        report.failed_connects = self.failed_connects;
        report
    }
}

/// Sorts `p{publisher}-{seq}` ids numerically (anything else after them, by text).
fn id_order(id: &str) -> (u64, u64, String) {
    let parsed = id.strip_prefix('p').and_then(|rest| {
        let (p, n) = rest.split_once('-')?;
        Some((p.parse().ok()?, n.parse().ok()?))
    });
    match parsed {
        Some((p, n)) => (p, n, String::new()),
        None => (u64::MAX, u64::MAX, id.to_string()),
    }
}

/// The checker's verdict on a [`History`].
#[derive(Debug, Default)]
pub struct Report {
    /// Ids publishers tried to publish.
    pub published: usize,
    pub confirmed: usize,
    pub nacked: usize,
    pub returned: usize,
    /// Published without a confirm or nack seen (may or may not have been delivered).
    pub unknown: usize,
    /// Of those, how many consumers did get.
    pub unknown_delivered: usize,
    /// Deliveries in all (copies included).
    pub delivered: usize,
    pub distinct_delivered: usize,
    /// Deliveries flagged redelivered.
    pub redeliveries: usize,
    /// Ids delivered more than once.
    pub duplicated: usize,
    /// Confirmed, never delivered.
    pub lost: Vec<String>,
    /// Delivered more than once, a later copy without the redelivered flag.
    pub duplicates_not_redelivered: Vec<String>,
    /// Delivered, never published.
    pub unexpected: Vec<String>,
    /// Messages still in the queue after the drain, if a node could tell.
    pub left_in_queue: Option<u32>,
    /// Connections publishers and consumers opened (more than their number: reconnects).
    pub publisher_sessions: usize,
    pub consumer_sessions: usize,
    pub failed_connects: usize,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicates_not_redelivered.is_empty()
            && self.unexpected.is_empty()
    }

    /// Panics with the report if a confirmed message was lost, a duplicate lacked the
    /// redelivered flag, or something never published was delivered.
    pub fn assert_clean(&self) {
        assert!(self.is_clean(), "the checker found violations:\n{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "published {}: confirmed {}, nacked {}, returned {}, unknown {} ({} of them delivered)",
            self.published,
            self.confirmed,
            self.nacked,
            self.returned,
            self.unknown,
            self.unknown_delivered
        )?;
        writeln!(
            f,
            "delivered {} ({} distinct ids, {} flagged redelivered, {} ids more than once)",
            self.delivered, self.distinct_delivered, self.redeliveries, self.duplicated
        )?;
        let left = self
            .left_in_queue
            .map_or_else(|| "unknown".to_string(), |n| n.to_string());
        writeln!(
            f,
            "sessions: {} publisher, {} consumer, {} failed connection attempts; left in queue: {left}",
            self.publisher_sessions, self.consumer_sessions, self.failed_connects
        )?;
        for (what, ids) in [
            ("lost (confirmed, never delivered)", &self.lost),
            (
                "duplicates not marked redelivered",
                &self.duplicates_not_redelivered,
            ),
            ("unexpected (never published)", &self.unexpected),
        ] {
            write!(f, "{what}: {}", ids.len())?;
            if !ids.is_empty() {
                let shown: Vec<&str> = ids.iter().take(20).map(String::as_str).collect();
                let more = if ids.len() > shown.len() { ", ..." } else { "" };
                write!(f, " [{}{more}]", shown.join(", "))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(published: &[(&str, Fate)], delivered: &[(&str, bool)]) -> History {
        let mut h = History::default();
        for (id, fate) in published {
            h.attempt(id);
            h.settle(id, *fate);
        }
        for (id, redelivered) in delivered {
            h.deliver(id, *redelivered);
        }
        h
    }

    #[test]
    fn the_checker_passes_a_clean_history() {
        let h = history(
            &[
                ("p0-0", Fate::Confirmed),
                ("p0-1", Fate::Confirmed),
                ("p0-2", Fate::Unknown),
                ("p0-3", Fate::Unknown),
                ("p0-4", Fate::Nacked),
            ],
            &[
                ("p0-0", false),
                // Delivered again, flagged: fine.
                ("p0-0", true),
                // Its first delivery may already be flagged (after a restart).
                ("p0-1", true),
                ("p0-1", true),
                // An unknown one may arrive, or (p0-3) not.
                ("p0-2", false),
            ],
        );
        let report = h.report();
        assert!(report.is_clean(), "{report}");
        report.assert_clean();
        assert_eq!((report.confirmed, report.unknown, report.nacked), (2, 2, 1));
        assert_eq!((report.delivered, report.distinct_delivered), (5, 3));
        assert_eq!((report.redeliveries, report.duplicated), (3, 2));
        assert_eq!(report.unknown_delivered, 1);
    }

    #[test]
    fn the_checker_fails_a_lost_message_a_duplicate_and_an_unexpected_one() {
        let h = history(
            &[
                ("p0-0", Fate::Confirmed),
                ("p0-1", Fate::Confirmed),
                ("p1-7", Fate::Confirmed),
            ],
            &[
                ("p0-0", false),
                // Delivered twice, the second copy not flagged.
                ("p1-7", false),
                ("p1-7", false),
                // Never published.
                ("p9-9", false),
            ],
        );
        let report = h.report();
        assert!(!report.is_clean());
        assert_eq!(report.lost, vec!["p0-1".to_string()]);
        assert_eq!(report.duplicates_not_redelivered, vec!["p1-7".to_string()]);
        assert_eq!(report.unexpected, vec!["p9-9".to_string()]);
        let failed = std::panic::catch_unwind(|| report.assert_clean());
        let message = failed.expect_err("assert_clean must fail");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            text.contains("lost (confirmed, never delivered): 1 [p0-1]"),
            "{text}"
        );
        assert!(
            text.contains("duplicates not marked redelivered: 1 [p1-7]"),
            "{text}"
        );
        assert!(
            text.contains("unexpected (never published): 1 [p9-9]"),
            "{text}"
        );
    }

    #[test]
    fn a_flagged_copy_then_an_unflagged_one_is_a_violation() {
        let h = history(
            &[("p0-0", Fate::Confirmed)],
            &[("p0-0", true), ("p0-0", false)],
        );
        assert_eq!(
            h.report().duplicates_not_redelivered,
            vec!["p0-0".to_string()]
        );
    }
}
