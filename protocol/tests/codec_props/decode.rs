//! `decode_frame` and the encoders: arbitrary bytes, method payloads, chunked streams,
//! prefixes, oversized frames, hand-written methods, the protocol header.

use super::*;

// ---------------------------------------------------------------------------------------------
// decode_frame
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes never panic; each call is Ok(None), Ok(Some) (consuming ≥ 8 bytes) or a
    /// connection error with a frame/syntax/command code.
    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop_oneof![
            vec(any::<u8>(), 0..4096),
            // Random bytes behind a plausible header, so payload parsers are reached too.
            (prop_oneof![Just(1u8), Just(2u8), Just(3u8), Just(8u8), any::<u8>()], any::<u16>(), vec(any::<u8>(), 0..4000))
                .prop_map(|(kind, ch, mut payload)| {
                    let mut v = vec![kind];
                    v.extend_from_slice(&ch.to_be_bytes());
                    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                    v.append(&mut payload);
                    v.push(FRAME_END);
                    v
                }),
        ],
        frame_max in prop_oneof![1u32..16, 4096u32..=131_072],
    ) {
        let mut buf = BytesMut::from(&data[..]);
        loop {
            let before = buf.len();
            match decode_frame(&mut buf, frame_max) {
                Ok(None) => {
                    prop_assert_eq!(buf.len(), before);
                    break;
                }
                Ok(Some(_)) => prop_assert!(before - buf.len() >= 8),
                Err(e) => {
                    prop_assert!([501, 502, 503, 505, 540].contains(&e.code), "unexpected code {}", e.code);
                    break;
                }
            }
        }
    }

    /// Random method/argument payloads inside well-formed method frames.
    #[test]
    fn arbitrary_method_payload_is_ok_or_coded_error(
        class in prop_oneof![Just(10u16), Just(20), Just(40), Just(50), Just(60), Just(85), Just(90), any::<u16>()],
        method in prop_oneof![(0u16..13).prop_map(|m| m * 10), (0u16..13).prop_map(|m| m * 10 + 1), any::<u16>()],
        args in vec(any::<u8>(), 0..512),
    ) {
        let mut payload = class.to_be_bytes().to_vec();
        payload.extend_from_slice(&method.to_be_bytes());
        payload.extend_from_slice(&args);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[1, 0, 1]);
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(&payload);
        buf.extend_from_slice(&[FRAME_END]);
        match decode_frame(&mut buf, 131_072) {
            Ok(Some(Frame::Method { .. })) => prop_assert!(buf.is_empty()),
            Ok(other) => prop_assert!(false, "unexpected {:?}", other),
            Err(e) => {
                // 501 for undecodable arguments (as RabbitMQ), 502 for over-deep nesting,
                // 503 for unknown methods, 540 for basic.qos prefetch_size != 0.
                prop_assert!([501, 502, 503, 540].contains(&e.code), "unexpected code {}", e.code);
                prop_assert_eq!((e.class_id, e.method_id), (class, method));
            }
        }
    }

    /// A valid stream decodes back to the values encoded, whether it arrives in one piece or in
    /// arbitrary chunk sizes (truncated input waits instead of failing).
    #[test]
    fn valid_stream_roundtrips_in_any_chunking(
        items in vec(item(), 1..6),
        frame_max in prop_oneof![Just(4096u32), 4096u32..=65_536, Just(131_072)],
        chunk_sizes in vec(prop_oneof![1usize..8, 1usize..64, 1usize..5000], 1..16),
    ) {
        // A header or method frame with big tables may need more than a small frame_max.
        let (_, probe) = encode_items(&items, u32::MAX);
        let needed = frame_lengths(&probe).into_iter().max().unwrap_or(0) as u32;
        let frame_max = frame_max.max(needed);
        let (expected, wire) = encode_items(&items, frame_max);
        prop_assert!(frame_lengths(&wire).iter().all(|&n| n <= frame_max as usize));

        let whole = decode_chunked(&wire, &[wire.len().max(1)], frame_max);
        prop_assert_eq!(&whole, &expected);
        let chunked = decode_chunked(&wire, &chunk_sizes, frame_max);
        prop_assert_eq!(&chunked, &expected);

        // And the decoded frames assemble back to the published messages.
        let mut assemblers: BTreeMap<u16, ContentAssembler<Publish>> = BTreeMap::new();
        let mut got = Vec::new();
        for f in chunked {
            match f {
                Frame::Method { channel, .. } => {
                    let a = assemblers.entry(channel).or_default();
                    prop_assert!(a.check_method_allowed().is_ok());
                }
                Frame::Publish { channel, publish } => {
                    let a = assemblers.entry(channel).or_default();
                    prop_assert!(a.check_method_allowed().is_ok());
                    a.start(publish);
                }
                Frame::Header { channel, class_id, body_size, properties } => {
                    let a = assemblers.get_mut(&channel).unwrap();
                    if let Some(c) = a.header(class_id, body_size, properties).unwrap() {
                        got.push((channel, c));
                    }
                }
                Frame::Body { channel, payload } => {
                    let a = assemblers.get_mut(&channel).unwrap();
                    if let Some(c) = a.body(payload).unwrap() {
                        got.push((channel, c));
                    }
                }
                Frame::Heartbeat { .. } => {}
            }
        }
        let want: Vec<_> = items.iter().filter_map(|i| match i {
            Item::Message { channel, publish, properties, body } => Some((*channel, publish, properties, body)),
            _ => None,
        }).collect();
        prop_assert_eq!(got.len(), want.len());
        for ((ch, c), (wch, wp, wprops, wbody)) in got.iter().zip(want) {
            prop_assert_eq!(*ch, wch);
            prop_assert_eq!(&c.method, &wire_publish(wp));
            prop_assert_eq!(&c.properties.to_basic(), wprops);
            prop_assert_eq!(&c.properties.raw()[..], &encode::properties(wprops)[..]);
            prop_assert_eq!(&c.body[..], &wbody[..]);
        }
        prop_assert!(assemblers.values().all(|a| a.is_idle()));
    }

    /// Every strict prefix of a valid frame waits (Ok(None)) and leaves the buffer untouched;
    /// the full frame decodes.
    #[test]
    fn every_strict_prefix_waits(item in item(), frame_max in 4096u32..=131_072) {
        let (_, probe) = encode_items(std::slice::from_ref(&item), u32::MAX);
        let frame_max = frame_max.max(frame_lengths(&probe).into_iter().max().unwrap() as u32);
        let (expected, wire) = encode_items(std::slice::from_ref(&item), frame_max);
        let mut at = 0;
        for (len, want) in frame_lengths(&wire).into_iter().zip(expected) {
            let frame = &wire[at..at + len];
            for cut in 0..len {
                let mut buf = BytesMut::from(&frame[..cut]);
                prop_assert_eq!(decode_frame(&mut buf, frame_max), Ok(None), "cut at {}/{}", cut, len);
                prop_assert_eq!(&buf[..], &frame[..cut]);
            }
            let mut buf = BytesMut::from(frame);
            prop_assert_eq!(decode_frame(&mut buf, frame_max), Ok(Some(want)));
            prop_assert!(buf.is_empty());
            at += len;
        }
    }

    /// A frame header announcing a payload larger than frame_max is a 501 from the 7 header
    /// bytes alone, whatever frame type and whatever follows. (Like RabbitMQ 3.10, the payload
    /// alone is compared with frame_max; the 8 bytes of framing are not counted.)
    #[test]
    fn oversized_frame_is_501_whatever_follows(
        kind in any::<u8>(),
        channel in any::<u16>(),
        frame_max in prop_oneof![1u32..=4096, 4096u32..=131_072, any::<u32>().prop_filter("0 = no limit", |&m| m != 0)],
        excess in prop_oneof![1u64..=16, any::<u32>().prop_map(u64::from)],
        tail in vec(any::<u8>(), 0..256),
    ) {
        // size > frame_max, size a u32.
        let size = (u64::from(frame_max) + excess).min(u64::from(u32::MAX)) as u32;
        prop_assume!(u64::from(size) > u64::from(frame_max));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[kind]);
        buf.extend_from_slice(&channel.to_be_bytes());
        buf.extend_from_slice(&size.to_be_bytes());
        buf.extend_from_slice(&tail);
        let cap = buf.capacity();
        let err = decode_frame(&mut buf, frame_max).unwrap_err();
        prop_assert_eq!(err.code, 501);
        // Rejected before reserving room for the announced payload.
        prop_assert!(buf.capacity() <= cap.max(4096));
    }

    /// The hand-written server frames decode with amq-protocol's parser to the same values;
    /// over-long strings are truncated to 255 bytes at a char boundary.
    #[test]
    fn hand_written_methods_roundtrip(
        channel in any::<u16>(),
        strs in vec(prop_oneof![short_str(), vec(any::<char>(), 200..400).prop_map(|c| c.into_iter().collect())], 4),
        tag in any::<u64>(),
        flag in any::<bool>(),
        count in any::<u32>(),
        code in any::<u16>(),
    ) {
        let s = |i: usize| ShortString::from(clamp_255(strs[i].clone()));
        let mut wire = BytesMut::new();
        encode::deliver(&mut wire, channel, &strs[0], tag, flag, &strs[1], &strs[2]);
        encode::get_ok(&mut wire, channel, tag, flag, &strs[1], &strs[2], count);
        encode::basic_return(&mut wire, channel, code, &strs[3], &strs[1], &strs[2]);
        encode::basic_ack(&mut wire, channel, tag, flag);
        encode::basic_nack(&mut wire, channel, tag, flag);
        let want = [
            basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: s(0), delivery_tag: tag, redelivered: flag, exchange: s(1), routing_key: s(2),
            }),
            basic::AMQPMethod::GetOk(basic::GetOk {
                delivery_tag: tag, redelivered: flag, exchange: s(1), routing_key: s(2), message_count: count,
            }),
            basic::AMQPMethod::Return(basic::Return { reply_code: code, reply_text: s(3), exchange: s(1), routing_key: s(2) }),
            basic::AMQPMethod::Ack(basic::Ack { delivery_tag: tag, multiple: flag }),
            basic::AMQPMethod::Nack(basic::Nack { delivery_tag: tag, multiple: flag, requeue: false }),
        ];
        for w in want {
            let f = decode_frame(&mut wire, 131_072).unwrap().unwrap();
            prop_assert_eq!(f, Frame::Method { channel, method: AMQPClass::Basic(w) });
        }
        prop_assert!(wire.is_empty());
    }

    /// check_protocol_header never panics and agrees with a simple prefix model.
    #[test]
    fn protocol_header_check_matches_model(data in prop_oneof![
        vec(any::<u8>(), 0..16),
        (0usize..=8, vec(any::<u8>(), 0..8)).prop_map(|(n, mut rest)| {
            let mut v = PROTOCOL_HEADER[..n].to_vec();
            v.append(&mut rest);
            v
        }),
    ]) {
        let n = data.len().min(8);
        let want = if data[..n] != PROTOCOL_HEADER[..n] {
            ProtocolHeader::Rejected
        } else if n < 8 {
            ProtocolHeader::Incomplete
        } else {
            ProtocolHeader::Accepted
        };
        prop_assert_eq!(check_protocol_header(&data), want);
    }
}
