use bytes::Bytes;
use warren_protocol::{Properties, ShortStr};

use super::*;

fn message(body: &str) -> Arc<Message> {
    Arc::new(Message {
        exchange: Arc::from("delayed"),
        routing_key: ShortStr::from_static("rk").unwrap(),
        properties: Properties::from_basic(&Default::default()),
        body: Bytes::copy_from_slice(body.as_bytes()),
        store_id: None,
    })
}

fn key(due_ms: u64, id: u64) -> DueKey {
    DueKey { due_ms, id }
}

fn due(window: &mut Window, now: u64) -> Vec<u64> {
    let mut out = Vec::new();
    window.pop_due(now, usize::MAX, &mut out);
    out.into_iter().map(|(k, _)| k.id).collect()
}

const SMALL: Limits = Limits {
    max_count: 4,
    max_bytes: 1 << 20,
};

#[test]
fn entries_come_out_in_due_order_then_id_order() {
    let mut w = Window::in_memory();
    for (due_ms, id) in [(30, 1), (10, 2), (20, 3), (10, 0)] {
        w.insert(key(due_ms, id), message("x"));
    }
    assert_eq!(w.first_due(), Some(10));
    assert_eq!(due(&mut w, 15), vec![0, 2]);
    assert_eq!(due(&mut w, 100), vec![3, 1]);
    assert_eq!(w.first_due(), None);
}

#[test]
fn an_in_memory_window_keeps_everything_and_never_loads() {
    let mut w = Window::in_memory();
    for id in 0..10_000 {
        w.insert(key(10_000 - id, id), message("x"));
    }
    assert_eq!(w.len(), 10_000);
    assert!(w.complete());
    assert_eq!(w.begin_load(), None);
}

#[test]
fn a_backed_window_drops_its_latest_entries_beyond_its_limits() {
    let mut w = Window::backed(false, SMALL);
    for id in 0..6 {
        w.insert(key(100 + id, id), message("x"));
    }
    assert_eq!(w.len(), 4);
    assert!(!w.complete());
    // Later than the horizon: stays in the store only.
    w.insert(key(500, 9), message("x"));
    assert_eq!(w.len(), 4);
    // Earlier: joins, and pushes the latest out.
    w.insert(key(1, 10), message("x"));
    assert_eq!(due(&mut w, 1000), vec![10, 0, 1, 2]);
}

#[test]
fn the_byte_limit_counts_bodies() {
    let mut w = Window::backed(
        false,
        Limits {
            max_count: 100,
            max_bytes: 10,
        },
    );
    w.insert(key(1, 1), message("12345678"));
    w.insert(key(2, 2), message("12345678"));
    assert_eq!(w.len(), 1);
    // One entry stays whatever its size.
    let mut w = Window::backed(
        false,
        Limits {
            max_count: 100,
            max_bytes: 1,
        },
    );
    w.insert(key(1, 1), message("a large body"));
    assert_eq!(w.len(), 1);
}

#[test]
fn a_restored_window_loads_from_the_start_and_knows_when_it_has_everything() {
    let mut w = Window::backed(true, SMALL);
    assert!(!w.complete());
    let from = w.begin_load().expect("a restored schedule reads the store");
    assert_eq!(from, DueKey::FIRST);
    assert!(w.loading());
    assert_eq!(w.begin_load(), None, "one read at a time");
    w.end_load(
        vec![(key(5, 1), message("a")), (key(6, 2), message("b"))],
        Some(successor(key(6, 2))),
    );
    assert!(!w.complete());
    assert_eq!(w.begin_load(), None, "two entries in memory: not low");
    assert_eq!(due(&mut w, 100), vec![1, 2]);
    // The next read starts right after the last entry read.
    assert_eq!(w.begin_load(), Some(key(6, 3)));
    w.end_load(vec![(key(7, 3), message("c"))], None);
    assert!(w.complete());
    assert_eq!(due(&mut w, 100), vec![3]);
}

#[test]
fn entries_scheduled_during_a_read_are_not_lost() {
    let mut w = Window::backed(true, SMALL);
    w.begin_load().unwrap();
    // Scheduled while the read runs; the read may or may not see them.
    w.insert(key(8, 20), message("seen by the read too"));
    w.insert(key(9, 21), message("not seen by the read"));
    w.insert(key(99, 22), message("beyond what the read covers"));
    w.end_load(
        vec![
            (key(5, 1), message("a")),
            (key(8, 20), message("seen by the read too")),
        ],
        Some(successor(key(8, 20))),
    );
    // The read covered up to (8, 20): (9, 21) and (99, 22) are past the new horizon and
    // wait in the store for the next read.
    assert_eq!(due(&mut w, 100), vec![1, 20]);
    assert_eq!(w.begin_load(), Some(key(8, 21)));
    w.end_load(
        vec![(key(9, 21), message("b")), (key(99, 22), message("c"))],
        None,
    );
    assert_eq!(due(&mut w, 100), vec![21, 22]);
}

#[test]
fn a_read_that_finds_everything_takes_every_arrival() {
    let mut w = Window::backed(true, SMALL);
    w.begin_load().unwrap();
    w.insert(key(50, 7), message("arrived"));
    w.end_load(Vec::new(), None);
    assert!(w.complete());
    assert_eq!(due(&mut w, 100), vec![7]);
}

#[test]
fn a_full_window_does_not_read_ahead() {
    let limits = Limits {
        max_count: 8,
        max_bytes: 1 << 20,
    };
    let mut w = Window::backed(false, limits);
    for id in 0..12 {
        w.insert(key(id, id), message("x"));
    }
    assert_eq!(w.begin_load(), None, "8 entries in memory: not low");
    let mut out = Vec::new();
    w.pop_due(5, usize::MAX, &mut out);
    assert_eq!(w.len(), 2);
    assert_eq!(w.begin_load(), None, "a quarter left: not low yet");
    w.pop_due(6, usize::MAX, &mut out);
    assert_eq!(w.begin_load(), Some(key(8, 8)));
}

#[test]
fn a_failed_read_changes_nothing() {
    let mut w = Window::backed(true, SMALL);
    w.begin_load().unwrap();
    w.insert(key(50, 7), message("in the store"));
    w.abort_load();
    assert_eq!(w.len(), 0);
    assert_eq!(
        w.begin_load(),
        Some(DueKey::FIRST),
        "the next read starts where this one did"
    );
    assert_eq!(successor(key(3, u64::MAX)), key(4, 0));
}

#[test]
fn a_kept_message_does_not_pin_the_buffer_it_was_read_into() {
    // A published body is a slice of its connection's read buffer; what the window keeps must
    // own its bytes, or a few thousand held messages pin megabytes of buffers.
    let read_buffer = Bytes::from(vec![7u8; 64 * 1024]);
    let published = Arc::new(Message {
        exchange: Arc::from("delayed"),
        routing_key: ShortStr::from_static("rk").unwrap(),
        properties: Properties::from_basic(&Default::default()),
        body: read_buffer.slice(100..1124),
        store_id: None,
    });
    let mut w = Window::in_memory();
    w.insert(key(10, 1), published.clone());
    let mut out = Vec::new();
    w.pop_due(10, usize::MAX, &mut out);
    let (_, kept) = out.pop().expect("the message comes out");
    assert_eq!(kept.body, published.body);
    assert_ne!(kept.body.as_ptr(), published.body.as_ptr());
    assert_eq!(kept.properties.raw(), published.properties.raw());
    assert_ne!(
        kept.properties.raw().as_ptr(),
        published.properties.raw().as_ptr()
    );
}
