//! Field values nested as deep as a frame allows: decoded without overflowing the stack.

use super::*;

// ---------------------------------------------------------------------------------------------
// Deeply nested field values
// ---------------------------------------------------------------------------------------------

/// A field value nested `depth` levels deep: arrays (`A`, 5 bytes a level) or tables
/// (`F` + empty key, 6 bytes a level), innermost empty.
fn nested_value(depth: usize, tables: bool) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::new();
    for level in 0..depth {
        let mut outer = vec![if tables { b'F' } else { b'A' }];
        let inner_len = if level == 0 {
            0
        } else {
            v.len() + usize::from(tables)
        };
        outer.extend_from_slice(&(inner_len as u32).to_be_bytes());
        if level > 0 {
            if tables {
                outer.push(0); // empty key
            }
            outer.extend_from_slice(&v);
        }
        v = outer;
    }
    v
}

/// A queue.declare whose arguments are `{"": <nested>}` (in_header = false), or a content
/// header whose `headers` property is (in_header = true).
fn nested_frame(depth: usize, tables: bool, in_header: bool) -> BytesMut {
    let mut table = vec![0u8]; // key ""
    table.extend_from_slice(&nested_value(depth, tables));
    let (kind, mut payload) = if in_header {
        // class 60, weight 0, body size 0, flags: headers only (bit 13).
        (2u8, vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x00])
    } else {
        // queue.declare: reserved u16, queue "", flags 0.
        (1u8, vec![0, 50, 0, 10, 0, 0, 0, 0])
    };
    payload.extend_from_slice(&(table.len() as u32).to_be_bytes());
    payload.extend_from_slice(&table);
    let mut b = BytesMut::new();
    b.extend_from_slice(&[kind, 0, 1]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&payload);
    b.extend_from_slice(&[FRAME_END]);
    b
}

/// Runs `decode_frame` on a thread with a tokio worker's default 2 MiB stack.
fn decode_on_small_stack(mut buf: BytesMut, frame_max: u32) -> Result<bool, u16> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            decode_frame(&mut buf, frame_max)
                .map(|f| f.is_some())
                .map_err(|e| e.code)
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn shallow_nesting_decodes() {
    for in_header in [false, true] {
        for tables in [false, true] {
            assert_eq!(
                decode_on_small_stack(nested_frame(64, tables, in_header), 131_072),
                Ok(true)
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..config() })]

    /// A frame within frame_max whose field table nests deeply must decode or fail with 502,
    /// not overflow the stack. amq-protocol's field-value parser recurses once per level with no
    /// depth limit, so ~316 levels of arrays (a 1.6 KB frame) abort a 2 MiB-stack thread in a
    /// debug build and ~1600 levels (8 KB) in release: one frame from any client kills the
    /// broker. `depth::MAX_DEPTH` now refuses such frames with 502 before that parser runs.
    #[test]
    fn deep_nesting_does_not_overflow_the_stack(
        depth in 1usize..=26_000,
        tables in any::<bool>(),
        in_header in any::<bool>(),
    ) {
        let frame = nested_frame(depth, tables, in_header);
        prop_assume!(frame.len() <= 131_072);
        let r = decode_on_small_stack(frame, 131_072);
        prop_assert!(matches!(r, Ok(true) | Err(502)), "{:?}", r);
    }
}

#[test]
fn heartbeat_on_nonzero_channel_is_505() {
    // RabbitMQ 3.10 answers this with 505 UNEXPECTED_FRAME.
    let mut buf = BytesMut::from(&[FRAME_HEARTBEAT, 0, 1, 0, 0, 0, 0, FRAME_END][..]);
    assert_eq!(decode_frame(&mut buf, 4096).unwrap_err().code, 505);
}
