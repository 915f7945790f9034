//! Peers that stall: sockets that never send a byte, peers that stop in the middle of a frame,
//! and peers that never read what the broker writes to them. None of them may hold up a queue,
//! another connection, or the listener; the broker's memory stays bounded.

use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, basic};
use futures_lite::StreamExt;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Abuse, assert_served_during_abuse, assert_served_within_5s};
use crate::common::*;

/// Reads until EOF (or error), giving up after `wait`; true if the broker closed the socket.
async fn closed_by_broker(socket: &mut TcpStream, wait: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(wait, async {
        loop {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_silent_sockets_time_out_and_the_listener_keeps_accepting() {
    let mut broker = TestBroker::spawn_with_config("handshake_timeout = 2\n");
    let mut silent = Vec::new();
    for _ in 0..1000 {
        silent.push(
            TcpStream::connect(broker.addr())
                .await
                .expect("connect a silent socket"),
        );
    }
    assert_served_during_abuse(&mut broker, 1).await;
    // The handshake timeout closes every one of them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for (i, socket) in silent.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            closed_by_broker(socket, left).await,
            "silent socket {i} still open 10 s after a 2 s handshake timeout"
        );
    }
    // And the listener still accepts: another thousand, then a real client.
    let mut again = Vec::new();
    for _ in 0..1000 {
        again.push(
            TcpStream::connect(broker.addr())
                .await
                .expect("connect again"),
        );
    }
    assert_served_within_5s(&broker).await;
    broker.assert_alive().await;
}

/// A frame header promising `size` bytes, followed by only a few of them.
fn half_frame(frame_type: u8, channel: u16, size: u32) -> Vec<u8> {
    let mut v = vec![frame_type];
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&size.to_be_bytes());
    v.extend_from_slice(&[0u8; 16]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_peers_stopping_mid_frame_hold_up_nobody() {
    let mut broker = TestBroker::spawn_with_config("handshake_timeout = 3\n");
    let mut stuck = Vec::new();
    // Before login: in the protocol header, and in the middle of start-ok.
    for i in 0..300 {
        let mut socket = TcpStream::connect(broker.addr()).await.expect("connect");
        if i % 2 == 0 {
            socket.write_all(b"AMQP\x00").await.expect("partial header");
        } else {
            socket
                .write_all(b"AMQP\x00\x00\x09\x01")
                .await
                .expect("protocol header");
            socket
                .write_all(&half_frame(1, 0, 100_000))
                .await
                .expect("half a start-ok");
        }
        stuck.push(socket);
    }
    // After login: half a method frame, half a content header, half a body.
    for i in 0..200u32 {
        let mut raw = broker.raw_open().await;
        raw.open_channel(1).await;
        let frame = match i % 3 {
            0 => half_frame(1, 1, 100_000),
            1 => {
                let mut v = publish_method_frame(1, "", "nowhere");
                v.extend(half_frame(2, 1, 50_000));
                v
            }
            _ => half_frame(3, 1, 100_000),
        };
        raw.send_bytes(&frame).await;
        stuck.push(raw.into_stream());
    }
    assert_served_during_abuse(&mut broker, 3).await;
    // The pre-login half of them is closed by the handshake timeout.
    for (i, socket) in stuck.iter_mut().take(300).enumerate() {
        assert!(
            closed_by_broker(socket, Duration::from_secs(10)).await,
            "pre-login peer {i} stuck mid-frame was never closed"
        );
    }
    assert_served_within_5s(&broker).await;
    broker.assert_alive().await;
}

/// A no-ack consumer that never reads its socket shares a queue with a well-behaved consumer:
/// the well-behaved one keeps receiving, and other queues are not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_never_reads_does_not_block_its_queue() {
    let mut broker = TestBroker::start();
    let queue_name = unique("stuck-reader");
    let (_conn, ch) = broker.channel().await;
    declare_queue(&ch, &queue_name).await;

    // The stuck consumer: consumes with no-ack and never reads again.
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let (_, reply) = raw
        .rpc(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
                queue: queue_name.as_str().into(),
                consumer_tag: "stuck".into(),
                no_ack: true,
                ..Default::default()
            })),
        )
        .await;
    assert!(matches!(
        reply,
        AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))
    ));
    let _stuck = raw.into_stream();

    // Fill the stuck consumer's socket buffers and the broker's outbox for it.
    let body = vec![b'x'; 64 * 1024];
    for _ in 0..400 {
        publish(&ch, "", &queue_name, &body).await;
    }
    sync(&ch).await;

    // A well-behaved consumer on the same queue gets the messages the stuck one cannot take.
    let (_conn2, ch2) = broker.channel().await;
    let mut consumer = ch2
        .basic_consume(
            queue_name.as_str().into(),
            "well-behaved".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    for _ in 0..50 {
        publish(&ch, "", &queue_name, b"for anyone").await;
    }
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        let mut n = 0;
        while n < 10 {
            consumer
                .next()
                .await
                .expect("delivery stream ended")
                .expect("delivery");
            n += 1;
        }
    })
    .await;
    assert!(
        got.is_ok(),
        "the well-behaved consumer was starved by the stuck one"
    );
    assert_served_during_abuse(&mut broker, 2).await;
}

/// A client pipelines basic.get + basic.reject(requeue) of a 64 KB message without ever
/// reading: unbounded, that is an endless stream of 64 KB answers. The broker stops reading it
/// (memory stays bounded), serves everybody else, and closes it once its writes have made no
/// progress for the write timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_that_never_reads_is_bounded_and_cut_off() {
    let mut broker = TestBroker::spawn_with_config("write_timeout = 3\n");
    let queue_name = unique("never-read");
    let (_conn, ch) = broker.channel().await;
    declare_queue(&ch, &queue_name).await;
    publish(&ch, "", &queue_name, &vec![b'y'; 64 * 1024]).await;
    sync(&ch).await;
    let rss_before = broker.rss_kb().unwrap_or(0);

    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let get = method_frame(1, basic_get_method(&queue_name, false));
    let mut socket = raw.into_stream();
    let mut abuse = Abuse::new();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    abuse.spawn(move |going_on| async move {
        // 200,000 rounds would be 12 GB of answers.
        let mut tag = 0u64;
        while going_on.yes() && tag < 200_000 {
            let mut burst = Vec::with_capacity(100 * 40);
            for _ in 0..100 {
                tag += 1;
                burst.extend_from_slice(&get);
                burst.extend(method_frame(
                    1,
                    AMQPClass::Basic(basic::AMQPMethod::Reject(basic::Reject {
                        delivery_tag: tag,
                        requeue: true,
                    })),
                ));
            }
            match tokio::time::timeout(Duration::from_secs(1), socket.write_all(&burst)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                // The broker stopped reading us; the burst may be partly written, so stop.
                Err(_) => break,
            }
        }
        let _ = done_tx.send(socket);
    });
    assert_served_during_abuse(&mut broker, 3).await;
    let rss = broker.rss_kb().unwrap_or(0);
    assert!(
        rss < rss_before + 200 * 1024,
        "broker memory grew from {rss_before} kB to {rss} kB for a peer that reads nothing"
    );
    abuse.stop().await;
    // The write timeout (3 s) ends the stuck connection: once it has passed, its socket holds
    // what the broker managed to write, then EOF.
    tokio::time::sleep(Duration::from_secs(4)).await;
    if let Ok(mut socket) = done_rx.await {
        assert!(
            closed_by_broker(&mut socket, Duration::from_secs(20)).await,
            "the non-reading peer was never cut off"
        );
    }
    broker.assert_alive().await;
}
