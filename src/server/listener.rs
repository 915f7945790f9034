//! Accept loop: one task per listening socket, one spawned connection task per client. On a
//! TLS listener the connection task first runs the TLS handshake ([`TlsListener::accept`]).
//!
//! With `max_connections` set, the loop stops accepting while that many connections are open,
//! as RabbitMQ's `connection_max` does (its listener stops accepting; clients wait in the
//! kernel's listen backlog until a connection closes). The limit is shared by all listeners.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::task::TaskTracker;

use super::connection::{self, ConnectionEnv, Stream};
use super::tls::TlsListener;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// How many connections may be open at once (`None`: no limit).
pub type ConnectionSlots = Option<Arc<Semaphore>>;

pub fn connection_slots(max_connections: usize) -> ConnectionSlots {
    (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections)))
}

/// Accepts until shutdown; each connection runs on `connections`. With `tls`, connections
/// speak AMQP inside TLS.
pub async fn accept_loop(
    listener: TcpListener,
    slots: ConnectionSlots,
    env: ConnectionEnv,
    connections: TaskTracker,
    tls: Option<Arc<TlsListener>>,
) {
    let mut shutdown = env.shutdown.clone();
    loop {
        let Some(permit) = take_slot(&slots, &mut shutdown).await else {
            break;
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
                    let env = env.clone();
                    let tls = tls.clone();
                    connections.spawn(async move {
                        serve_socket(id, socket, peer, env, tls).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

/// One accepted socket from its first byte to its end: the TLS handshake first on a TLS
/// listener (shutdown does not wait for it), then the AMQP connection.
async fn serve_socket(
    id: u64,
    socket: TcpStream,
    peer: SocketAddr,
    env: ConnectionEnv,
    tls: Option<Arc<TlsListener>>,
) {
    let local = socket.local_addr().ok();
    let Some(tls) = tls else {
        // The socket's descriptor, for confirms written off the runtime (outbox.rs): the same
        // descriptor, not a duplicate, so a connection costs one file descriptor, as in
        // RabbitMQ (a duplicate halved how many connections a descriptor limit allows).
        let direct = Some(socket.as_raw_fd());
        let (read, write) = socket.into_split();
        let stream = Stream {
            read: Box::new(read),
            write,
            peer,
            local,
            direct,
            tls: None,
        };
        return connection::serve(id, stream, env).await;
    };
    let timeout = Duration::from_secs(env.config.handshake_timeout);
    let mut shutdown = env.shutdown.clone();
    let accepted = tokio::select! {
        accepted = tls.accept(socket, peer, timeout) => accepted,
        _ = shutdown.changed() => None,
    };
    if let Some((socket, client)) = accepted {
        let (read, write) = tokio::io::split(socket);
        let stream = Stream {
            read: Box::new(read),
            write,
            peer,
            local,
            direct: None,
            tls: Some(client),
        };
        connection::serve(id, stream, env).await;
    }
}

/// A free connection slot (waiting for one when the limit is reached); `None` on shutdown.
async fn take_slot(
    slots: &ConnectionSlots,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Option<OwnedSemaphorePermit>> {
    let Some(slots) = slots else {
        return Some(None);
    };
    if let Ok(permit) = slots.clone().try_acquire_owned() {
        return Some(Some(permit));
    }
    tracing::warn!(
        "connection limit reached: new connections wait until one closes (max_connections)"
    );
    tokio::select! {
        permit = slots.clone().acquire_owned() => permit.ok().map(Some),
        _ = shutdown.changed() => None,
    }
}
