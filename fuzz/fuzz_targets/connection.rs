//! The connection state machine under arbitrary input: the bytes choose a client's whole
//! conversation (see `warren::fuzzing::script`), which drives one real connection task
//! in-process against a fresh broker. A panic anywhere is a finding, and so is memory: a run may
//! not allocate more than a fixed budget plus a small multiple of its input.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;

/// Counts live heap bytes and the peak of each run.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What any run may use beyond its input: the broker, the runtime, the 64 KB read buffer and
/// pipe, an outbox at its 4 MB limit and one answer past it.
const BASE_BUDGET: usize = 32 << 20;
/// Per input byte (a body is reserved at most 16 times what arrived of it; see content.rs).
const PER_INPUT_BYTE: usize = 64;

/// Memory for the dead-letter copies the run's topology asked for, as if all were held at
/// once: each one's encoded properties (allocated with up to twice their length), its
/// `Message` behind an `Arc` with its routing key and exchange name, and a queue entry per
/// delivery (a `VecDeque` slot, up to twice as many as entries, plus unacked bookkeeping).
/// Dead-lettering is the one place a few input bytes may legitimately make many messages
/// (a fanout of queues that overflow or are nacked into each other); the broker bounds each
/// cascade (`CASCADE_BASE` + `CASCADE_PER_MESSAGE` per dead letter that starts it), this
/// pays for what it let through, and anything else must still fit the fixed budget.
fn dead_letter_allowance(made: &warren::broker::queue::dead_letter::DeadLetterTally) -> usize {
    const PER_MESSAGE: usize = 256;
    const PER_DELIVERY: usize = 128;
    made.property_bytes
        .saturating_mul(2)
        .saturating_add(made.messages.saturating_mul(PER_MESSAGE))
        .saturating_add(made.deliveries.saturating_mul(PER_DELIVERY))
}

fuzz_target!(|data: &[u8]| {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let outcome = warren::fuzzing::run(data);
    let used = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    let budget =
        BASE_BUDGET + PER_INPUT_BYTE * data.len() + dead_letter_allowance(&outcome.dead_letters);
    assert!(
        used <= budget,
        "a run of {} input bytes peaked at {used} heap bytes (budget {budget}; dead letters {:?})",
        data.len(),
        outcome.dead_letters
    );
});
