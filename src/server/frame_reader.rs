//! The read side of a connection: the socket's read half, one buffer that bytes are read into
//! and frames decoded from, and the frame_max that decoding enforces. Owns reading and fair
//! scheduling between connections; knows nothing of what the frames mean.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use warren_protocol::codec::{
    FRAME_OVERHEAD, Frame, ProtocolHeader, announced_payload, check_protocol_header, decode_frame,
};
use warren_protocol::{AmqpError, PROTOCOL_HEADER};

/// Why reading frames stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the socket or it failed.
    Closed,
    /// The peer broke the protocol: close the connection with this error.
    Protocol(AmqpError),
    /// A handshake failure RabbitMQ answers with no connection.close: it waits
    /// [`SILENT_CLOSE_DELAY`] (so that a client cannot retry bad logins in a tight loop) and
    /// closes the socket. The error is for the log only.
    SilentClose(AmqpError),
}

/// How long RabbitMQ keeps a connection it refuses silently during the handshake (its
/// `?SILENT_CLOSE_DELAY`, 3 s) before it closes the socket.
pub const SILENT_CLOSE_DELAY: std::time::Duration = std::time::Duration::from_secs(3);

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Closed
    }
}

/// The read half of the connection's stream (TCP, or an in-memory pipe in tests and fuzzing).
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;

/// The read half of the socket with its buffer and the negotiated frame_max.
pub struct FrameReader {
    socket: ReadHalf,
    buf: BytesMut,
    pub frame_max: u32,
    /// Bytes read since this task last yielded (see [`FrameReader::fill`]).
    read_since_yield: usize,
    /// Room made for the next reads: [`FIRST_ROOM`] until a read fills what there was, then
    /// [`READ_CHUNK`]; while large frames come, the last one's size (so that the next one,
    /// usually as large, fits whole).
    room: usize,
    /// A large frame was read since the last read that was not part of one.
    large_seen: bool,
    /// Bytes read and reads made, for the management API.
    counts: Arc<ReadCounts>,
}

/// What a reader has read so far (one relaxed add per read call, not per frame).
#[derive(Default)]
pub struct ReadCounts {
    pub bytes: AtomicU64,
    pub reads: AtomicU64,
}

const READ_CHUNK: usize = 64 * 1024;
/// The room a connection starts with. An idle connection (heartbeats, now and then a
/// method) never needs more, and a buffer's pages count in the broker's memory once
/// touched: with 64 kB from the start, 10,000 idle connections cost ~5 kB more each.
const FIRST_ROOM: usize = 1024;
/// Frames at least this big (a large message's body frames) are read on their own, into a
/// buffer that holds them whole: a frame that straddled the end of a buffer would be moved to
/// a bigger one, copying the part of it already read.
const LARGE_FRAME: usize = 16 * 1024;
/// The most room made for one frame ahead of its arrival.
const MAX_ROOM: usize = 1 << 20;
/// While large frames come, a read that starts an empty buffer takes at most this much: the
/// small frames before a body (basic.publish, the content header) and the start of the body
/// frame, which the rest of that frame then joins in the same buffer.
const FIRST_READ: usize = 4096;

impl FrameReader {
    pub fn new(socket: ReadHalf, frame_max: u32, counts: Arc<ReadCounts>) -> Self {
        FrameReader {
            socket,
            buf: BytesMut::with_capacity(FIRST_ROOM),
            frame_max,
            counts,
            read_since_yield: 0,
            room: FIRST_ROOM,
            large_seen: false,
        }
    }

    /// Reads more bytes; `Closed` at end of stream.
    ///
    /// Every [`READ_CHUNK`] bytes the task yields to the scheduler first: a peer that sends as
    /// fast as it can (a flood of tiny frames costs far more to decode than to send) would
    /// otherwise keep a worker thread for tokio's whole budget of 128 reads, and every other
    /// connection on that thread would wait for it.
    pub async fn fill(&mut self) -> Result<(), ReadError> {
        if self.read_since_yield >= READ_CHUNK {
            self.read_since_yield = 0;
            tokio::task::yield_now().await;
        }
        let read = match self.large_frame_missing() {
            // The rest of a large frame and no further: the frame after it starts a buffer.
            Some(missing) => {
                self.buf.reserve(missing);
                self.socket
                    .read_buf(&mut (&mut self.buf).limit(missing))
                    .await?
            }
            None => {
                if !std::mem::take(&mut self.large_seen) {
                    self.room = self.room.min(READ_CHUNK);
                }
                if self.room > READ_CHUNK && self.buf.is_empty() {
                    self.buf.reserve(self.room + FIRST_READ);
                    self.socket
                        .read_buf(&mut (&mut self.buf).limit(FIRST_READ))
                        .await?
                } else {
                    if self.buf.capacity() - self.buf.len() < self.room / 4 {
                        self.buf.reserve(self.room);
                    }
                    let available = self.buf.capacity() - self.buf.len();
                    let read = self.socket.read_buf(&mut self.buf).await?;
                    if read == available {
                        // The peer sends more than the room took: a busy connection.
                        self.room = self.room.max(READ_CHUNK);
                    }
                    read
                }
            }
        };
        match read {
            0 => Err(ReadError::Closed),
            n => {
                self.read_since_yield += n;
                self.counts.bytes.fetch_add(n as u64, Ordering::Relaxed);
                self.counts.reads.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Bytes still to come of the large frame the buffer starts with, if it does (and notes
    /// that large frames are coming). A size beyond `frame_max` is no frame to make room for:
    /// [`decode_frame`] refuses it, and before the protocol header is accepted the buffer holds
    /// that header, whose bytes 3-6 read as ~1.3 GB.
    fn large_frame_missing(&mut self) -> Option<usize> {
        let size = announced_payload(&self.buf)?;
        if self.frame_max == 0 || size > self.frame_max as usize {
            return None;
        }
        let total = size + FRAME_OVERHEAD;
        if total < LARGE_FRAME || total <= self.buf.len() {
            return None;
        }
        self.room = total.clamp(READ_CHUNK, MAX_ROOM);
        self.large_seen = true;
        Some(total - self.buf.len())
    }

    pub fn decode(&mut self) -> Result<Option<Frame>, ReadError> {
        decode_frame(&mut self.buf, self.frame_max).map_err(ReadError::Protocol)
    }

    /// Drops every byte read and not decoded yet (after a frame that cannot be decoded).
    pub fn discard_buffered(&mut self) {
        self.buf.clear();
    }

    pub async fn next_frame(&mut self) -> Result<Frame, ReadError> {
        loop {
            if let Some(frame) = self.decode()? {
                return Ok(frame);
            }
            self.fill().await?;
        }
    }

    /// Reads and checks the 8-byte protocol header.
    pub async fn protocol_header(&mut self) -> Result<bool, ReadError> {
        loop {
            match check_protocol_header(&self.buf) {
                ProtocolHeader::Accepted => {
                    let _ = self.buf.split_to(PROTOCOL_HEADER.len());
                    return Ok(true);
                }
                ProtocolHeader::Rejected => return Ok(false),
                ProtocolHeader::Incomplete => self.fill().await?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    fn reader(frame_max: u32) -> (FrameReader, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let reader = FrameReader::new(Box::new(ours), frame_max, Arc::default());
        (reader, theirs)
    }

    /// Seven bytes of a protocol header read as a frame header announce ~1.3 GB: the reader
    /// must not make room for that before login.
    #[tokio::test]
    async fn a_partial_protocol_header_makes_no_room_for_a_frame() {
        let (mut reader, mut peer) = reader(4096);
        peer.write_all(&PROTOCOL_HEADER[..7]).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(100), reader.protocol_header());
        assert!(waited.await.is_err(), "the header is not complete");
        assert!(
            reader.buf.capacity() < 64 * 1024,
            "{}",
            reader.buf.capacity()
        );
    }
}
