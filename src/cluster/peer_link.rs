//! Links between nodes: one TCP connection from each node to each other node it calls, opened
//! on first use and again after a failure. A link carries [`Request`]s out and their
//! [`Response`]s back, paired by id, many in flight at once; the node that connects first
//! proves it knows the cluster's cookie. Frames are a 4-byte big-endian length and a postcard
//! body, at most [`MAX_FRAME`] bytes: a peer that sends more, or garbage, is disconnected.
//!
//! This file moves messages; what they mean is the caller's (network.rs, node.rs).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::messages::{Envelope, Hello, Request, Response};

/// Largest frame accepted (a snapshot chunk or a batch of entries fits well below).
pub const MAX_FRAME: usize = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames waiting for a link's writer.
const OUTGOING_FRAMES: usize = 1024;

#[derive(Debug)]
pub struct LinkError(pub String);

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LinkError {}

async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Vec<u8>> {
    let len = reader.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "peer frame of {len} bytes (limit {MAX_FRAME})"
        )));
    }
    let mut frame = vec![0; len];
    reader.read_exact(&mut frame).await?;
    Ok(frame)
}

fn frame<T: Serialize>(message: &T) -> io::Result<Vec<u8>> {
    let body = postcard::to_stdvec(message).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::other("message larger than a peer frame"));
    }
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn decode<T: DeserializeOwned>(frame: &[u8]) -> io::Result<T> {
    postcard::from_bytes(frame).map_err(io::Error::other)
}

/// Writes queued frames, flushing when the queue runs dry (several frames per syscall).
async fn write_frames<W: AsyncWrite + Unpin>(writer: W, mut frames: mpsc::Receiver<Vec<u8>>) {
    let mut writer = BufWriter::new(writer);
    while let Some(frame) = frames.recv().await {
        if writer.write_all(&frame).await.is_err() {
            return;
        }
        if frames.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
}

/// Callers waiting for a response, by request id; `None` once the link has failed.
type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Response>>>>>;

/// One open connection to a peer.
struct Link {
    frames: mpsc::Sender<Vec<u8>>,
    pending: Pending,
}

impl Link {
    fn is_closed(&self) -> bool {
        self.pending.lock().is_none()
    }
}

/// The calling side: this node's links to every other member.
pub struct Peers {
    me: u64,
    cookie: String,
    addresses: BTreeMap<u64, String>,
    links: HashMap<u64, tokio::sync::Mutex<Option<Arc<Link>>>>,
    next_id: AtomicU64,
}

impl Peers {
    pub fn new(me: u64, cookie: String, addresses: BTreeMap<u64, String>) -> Self {
        let links = addresses
            .keys()
            .filter(|id| **id != me)
            .map(|id| (*id, tokio::sync::Mutex::new(None)))
            .collect();
        Peers {
            me,
            cookie,
            addresses,
            links,
            next_id: AtomicU64::new(1),
        }
    }

    /// This node's id.
    pub fn me(&self) -> u64 {
        self.me
    }

    /// The other members' ids.
    pub fn others(&self) -> Vec<u64> {
        self.links.keys().copied().collect()
    }

    /// The members this node has an open link to now.
    pub fn linked(&self) -> Vec<u64> {
        self.links
            .iter()
            .filter(|(_, slot)| {
                slot.try_lock()
                    .is_ok_and(|link| link.as_ref().is_some_and(|l| !l.is_closed()))
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Sends `request` to `target` and waits up to `timeout` for its response.
    pub async fn call(
        &self,
        target: u64,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, LinkError> {
        let link = self.link(target).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match link.pending.lock().as_mut() {
            Some(pending) => pending.insert(id, tx),
            None => return Err(LinkError(format!("link to node {target} closed"))),
        };
        let frame = frame(&Envelope { id, body: request }).map_err(|e| LinkError(e.to_string()))?;
        let sent = async {
            link.frames
                .send(frame)
                .await
                .map_err(|_| LinkError(format!("link to node {target} closed")))?;
            rx.await
                .map_err(|_| LinkError(format!("link to node {target} closed")))
        };
        let result = tokio::time::timeout(timeout, sent)
            .await
            .map_err(|_| LinkError(format!("node {target} did not answer within {timeout:?}")))?;
        if result.is_err()
            && let Some(pending) = link.pending.lock().as_mut()
        {
            pending.remove(&id);
        }
        result
    }

    async fn link(&self, target: u64) -> Result<Arc<Link>, LinkError> {
        let slot = self
            .links
            .get(&target)
            .ok_or_else(|| LinkError(format!("node {target} is not a member")))?;
        let mut slot = slot.lock().await;
        if let Some(link) = slot.as_ref().filter(|l| !l.is_closed()) {
            return Ok(link.clone());
        }
        let address = &self.addresses[&target];
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| {
                LinkError(format!(
                    "connecting to node {target} at {address} timed out"
                ))
            })?
            .map_err(|e| LinkError(format!("cannot connect to node {target} at {address}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (mut reader, writer) = stream.into_split();
        let (frames, queued) = mpsc::channel(OUTGOING_FRAMES);
        let hello = frame(&Hello {
            cookie: self.cookie.clone(),
            node: self.me,
        })
        .map_err(|e| LinkError(e.to_string()))?;
        let _ = frames.try_send(hello);
        tokio::spawn(write_frames(writer, queued));
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let link = Arc::new(Link {
            frames,
            pending: pending.clone(),
        });
        tokio::spawn(async move {
            let error = loop {
                let response: Envelope<Response> =
                    match read_frame(&mut reader).await.and_then(|f| decode(&f)) {
                        Ok(r) => r,
                        Err(e) => break e,
                    };
                let waiter = pending.lock().as_mut().and_then(|p| p.remove(&response.id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(response.body);
                }
            };
            tracing::debug!("cluster: link to node {target} closed: {error}");
            // Every caller still waiting hears that the link is gone.
            pending.lock().take();
        });
        *slot = Some(link.clone());
        Ok(link)
    }
}

/// The serving side: accepts links from other members and answers each request with
/// `handle`, several at once per link (a slow one does not hold up heartbeats).
pub async fn serve<H, F>(listener: TcpListener, cookie: String, handle: H)
where
    H: Fn(Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("cluster: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (cookie, handle) = (cookie.clone(), handle.clone());
        tokio::spawn(async move {
            if let Err(e) = serve_link(stream, &cookie, handle).await {
                tracing::debug!("cluster: link from {from} closed: {e}");
            }
        });
    }
}

async fn serve_link<H, F>(stream: TcpStream, cookie: &str, handle: H) -> io::Result<()>
where
    H: Fn(Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let (mut reader, writer) = stream.into_split();
    let hello: Hello = tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut reader))
        .await
        .map_err(|_| io::Error::other("no hello in time"))?
        .and_then(|f| decode(&f))?;
    if hello.cookie != cookie {
        tracing::warn!(
            "cluster: node {} presented the wrong cookie; disconnected",
            hello.node
        );
        return Err(io::Error::other("wrong cookie"));
    }
    let (frames, queued) = mpsc::channel(OUTGOING_FRAMES);
    tokio::spawn(write_frames(writer, queued));
    loop {
        let request: Envelope<Request> = decode(&read_frame(&mut reader).await?)?;
        let (frames, handle) = (frames.clone(), handle.clone());
        tokio::spawn(async move {
            let response = handle(request.body).await;
            match frame(&Envelope {
                id: request.id,
                body: response,
            }) {
                Ok(f) => {
                    let _ = frames.send(f).await;
                }
                Err(e) => tracing::warn!("cluster: cannot encode a response: {e}"),
            }
        });
    }
}
