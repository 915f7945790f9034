//! `--sink`: a minimal in-process fake broker on 127.0.0.1 that measures the load generator's
//! own ceiling. It accepts the handshake, answers declares / bind / qos / consume /
//! confirm.select / get / close with their -ok, discards publishes after counting them (header
//! and body frames are skipped by their 7-byte frame header alone), and confirms each read
//! batch with one basic.ack multiple=true. It never delivers anything.

use std::net::SocketAddr;

use amq_protocol::protocol::{AMQPClass, basic, channel, confirm, connection, exchange, queue};
use amq_protocol::types::{FieldTable, LongString};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warren_protocol::codec::{self, FRAME_HEADER_SIZE, FRAME_METHOD, FRAME_OVERHEAD, Frame};
use warren_protocol::{PROTOCOL_HEADER, encode};

use crate::Error;

/// Starts the sink; returns the address it listens on. It lives as long as the runtime.
pub async fn start() -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error(format!("sink bind: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error(format!("sink address: {e}")))?;
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Err(e) = serve(sock).await {
                    eprintln!("warren-perf sink: {e}");
                }
            });
        }
    });
    Ok(addr)
}

const FRAME_MAX: u32 = 131_072;

#[derive(Default)]
struct Session {
    confirm: bool,
    /// Publishes seen on the confirming channel (its next delivery tag minus one).
    published: u64,
    acked: u64,
    confirm_channel: u16,
    closing: bool,
}

async fn serve(mut sock: TcpStream) -> Result<(), Error> {
    let _ = sock.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut out = BytesMut::with_capacity(4096);
    while buf.len() < PROTOCOL_HEADER.len() {
        if read(&mut sock, &mut buf).await? == 0 {
            return Ok(());
        }
    }
    if &buf[..8] != PROTOCOL_HEADER {
        let _ = sock.write_all(PROTOCOL_HEADER).await;
        return Ok(());
    }
    buf.advance(8);
    let start = connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: FieldTable::default(),
        mechanisms: LongString::from(b"PLAIN".to_vec()),
        locales: LongString::from(b"en_US".to_vec()),
    };
    encode::method(
        &mut out,
        0,
        &AMQPClass::Connection(connection::AMQPMethod::Start(start)),
    );
    let mut s = Session::default();
    loop {
        while buf.len() >= FRAME_HEADER_SIZE {
            let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
            let total = size + FRAME_OVERHEAD;
            if buf.len() < total {
                buf.reserve(total - buf.len());
                break;
            }
            let is_publish = buf[0] == FRAME_METHOD && size >= 4 && buf[7..11] == [0, 60, 0, 40];
            if buf[0] != FRAME_METHOD || is_publish {
                // Publishes, their content, heartbeats: count and drop.
                if is_publish
                    && s.confirm
                    && u16::from_be_bytes([buf[1], buf[2]]) == s.confirm_channel
                {
                    s.published += 1;
                }
                buf.advance(total);
                continue;
            }
            match codec::decode_frame(&mut buf, FRAME_MAX) {
                Ok(Some(Frame::Method { channel, method })) => {
                    answer(&mut s, &mut out, channel, method)
                }
                Ok(_) => {}
                Err(e) => return Err(Error(format!("bad frame from client: {e}"))),
            }
        }
        if s.published > s.acked {
            encode::basic_ack(&mut out, s.confirm_channel, s.published, true);
            s.acked = s.published;
        }
        if !out.is_empty() {
            sock.write_all(&out)
                .await
                .map_err(|e| Error(format!("sink write: {e}")))?;
            out.clear();
        }
        if s.closing || read(&mut sock, &mut buf).await? == 0 {
            return Ok(());
        }
    }
}

async fn read(sock: &mut TcpStream, buf: &mut BytesMut) -> Result<usize, Error> {
    if buf.capacity() - buf.len() < 16 * 1024 {
        buf.reserve(64 * 1024);
    }
    match sock.read_buf(buf).await {
        Ok(n) => Ok(n),
        // A client that just goes away is the normal end of a run.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(0),
        Err(e) => Err(Error(format!("sink read: {e}"))),
    }
}

fn answer(s: &mut Session, out: &mut BytesMut, ch: u16, method: AMQPClass) {
    use AMQPClass as C;
    let reply = match method {
        C::Connection(connection::AMQPMethod::StartOk(_)) => {
            C::Connection(connection::AMQPMethod::Tune(connection::Tune {
                channel_max: 2047,
                frame_max: FRAME_MAX,
                heartbeat: 0,
            }))
        }
        C::Connection(connection::AMQPMethod::Open(_)) => {
            C::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {}))
        }
        C::Connection(connection::AMQPMethod::Close(_)) => {
            s.closing = true;
            C::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}))
        }
        C::Channel(channel::AMQPMethod::Open(_)) => {
            C::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {}))
        }
        C::Channel(channel::AMQPMethod::Close(_)) => {
            C::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))
        }
        C::Exchange(exchange::AMQPMethod::Declare(d)) if !d.nowait => {
            C::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {}))
        }
        C::Queue(queue::AMQPMethod::Declare(d)) if !d.nowait => {
            C::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                queue: d.queue,
                message_count: 0,
                consumer_count: 0,
            }))
        }
        C::Queue(queue::AMQPMethod::Bind(b)) if !b.nowait => {
            C::Queue(queue::AMQPMethod::BindOk(queue::BindOk {}))
        }
        C::Basic(basic::AMQPMethod::Qos(_)) => C::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})),
        C::Basic(basic::AMQPMethod::Consume(c)) if !c.nowait => {
            let tag = if c.consumer_tag.as_str().is_empty() {
                "sink-ctag".into()
            } else {
                c.consumer_tag
            };
            C::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                consumer_tag: tag,
            }))
        }
        C::Basic(basic::AMQPMethod::Get(_)) => {
            C::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {}))
        }
        C::Confirm(confirm::AMQPMethod::Select(sel)) => {
            s.confirm = true;
            s.confirm_channel = ch;
            if sel.nowait {
                return;
            }
            C::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {}))
        }
        _ => return,
    };
    encode::method(out, ch, &reply);
}
