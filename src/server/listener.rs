//! Accept loop: one task per listening socket, one spawned connection task per client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::connection;
use crate::Config;
use crate::alarms::Alarm;
use crate::broker::Broker;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

pub async fn accept_loop(
    alarm: watch::Receiver<Option<Alarm>>,
    listener: TcpListener,
    broker: Arc<Broker>,
    config: Arc<Config>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(connection::serve(id, socket, peer, broker.clone(), config.clone(), shutdown.clone(), alarm.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}
