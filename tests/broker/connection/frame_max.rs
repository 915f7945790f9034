//! frame_max on what a client sends: the largest body frame accepted, a larger one refused
//! (even before its payload arrives), and a body split into many tiny frames.

use crate::common::*;

#[tokio::test]
async fn frame_larger_than_frame_max_is_rejected_before_its_payload_arrives() {
    let (mut broker, mut raw) = broker_with_raw_channel().await;
    // Only the 7-byte frame header, announcing a 16 MiB payload: the broker
    // must reject it without waiting for the payload.
    let mut header = vec![1u8];
    header.extend_from_slice(&1u16.to_be_bytes());
    header.extend_from_slice(&(16u32 << 20).to_be_bytes());
    raw.send_bytes(&header).await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 501);
    assert!(text.starts_with("FRAME_ERROR"), "{text}");
    drop(raw);
    broker.assert_alive().await;
}

async fn publish_single_body_frame(raw: &mut RawClient, q: &str, payload_len: usize) {
    let mut bytes = publish_method_frame(1, "", q);
    bytes.extend(content_header_frame(1, payload_len as u64));
    bytes.extend(raw_frame(3, 1, &vec![0xAB; payload_len], 0xCE));
    raw.send_bytes(&bytes).await;
}

#[tokio::test]
async fn body_frames_up_to_frame_max_payload_are_accepted() {
    // frame_max counts the whole frame (7-byte header + payload + end byte),
    // but RabbitMQ 3.10 only rejects payloads larger than frame_max itself.
    let (broker, _conn, ch) = broker_with_channel().await;
    let q = declare_server_named_queue(&ch, Default::default()).await;
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    for len in [131_064usize, 131_072] {
        publish_single_body_frame(&mut raw, &q, len).await;
    }
    wait_message_count(&ch, &q, 2).await;
    for len in [131_064usize, 131_072] {
        let body = get_body(&ch, &q).await.expect("message");
        assert_eq!(body, vec![0xAB; len]);
    }
    delete_queue(&ch, &q).await;
}

#[tokio::test]
async fn body_frame_payload_above_frame_max_is_501_frame_error() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    publish_single_body_frame(&mut raw, "anywhere", 131_073).await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 501);
    assert!(text.starts_with("FRAME_ERROR"), "{text}");
}

#[tokio::test]
async fn body_split_into_many_tiny_frames_is_reassembled() {
    let (broker, _conn, ch) = broker_with_channel().await;
    let q = declare_server_named_queue(&ch, Default::default()).await;
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    raw.frame_max = 8 + 7; // 7-byte body frames
    let body: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
    raw.publish(1, "", &q, false, false, &body).await;
    wait_message_count(&ch, &q, 1).await;
    assert_eq!(get_body(&ch, &q).await.unwrap(), body);
    delete_queue(&ch, &q).await;
}
