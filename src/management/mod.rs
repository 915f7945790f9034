//! The management HTTP API, as RabbitMQ 3.10's management plugin serves it: the same paths,
//! JSON shapes, status codes and HTTP basic auth by user tags, so `rabbitmqadmin`, deploy
//! scripts and health checks work against warren unchanged.
//!
//! One file per group of endpoints: [`overview`] (overview, extensions), [`nodes`], [`vhosts`],
//! [`users`] (and whoami), [`permissions`] (and topic permissions), [`queues`], [`exchanges`],
//! [`bindings`], [`messages`] (publish and get), [`definitions`] (export and import),
//! [`connections`] (and channels, consumers), [`health`] (health checks). [`auth`] turns the `Authorization` header into a user with tags; [`error`] is
//! RabbitMQ's error body; [`json`] reads request bodies as RabbitMQ does.
//!
//! Handlers call the broker's operations (`broker::tenancy` for users, vhosts and
//! permissions) and never hold a broker lock across an `.await`; operations that commit to
//! the store run on the blocking pool.

mod auth;
mod bindings;
mod connections;
mod definitions;
mod error;
mod exchanges;
mod health;
mod json;
mod messages;
mod nodes;
mod overview;
mod permissions;
mod queues;
mod users;
mod vhosts;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::Config;
use crate::alarms::Alarm;
use crate::broker::Broker;

/// What every handler reads: the broker and how the node runs.
pub struct Api {
    pub broker: Arc<Broker>,
    pub config: Arc<Config>,
    pub alarm: watch::Receiver<Option<Alarm>>,
    /// The bound AMQP listeners, plain and TLS (for the listener health checks and overview).
    pub amqp: Vec<SocketAddr>,
    pub amqps: Vec<SocketAddr>,
    /// The management listener itself.
    pub http: SocketAddr,
    pub started: Instant,
}

type State = axum::extract::State<Arc<Api>>;

/// The node name RabbitMQ would show for this broker (`rabbit@<host>`).
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("rabbit@{host}")
}

/// Binds the management listener and serves it on `background` until `shutdown`.
pub async fn start(
    api: impl FnOnce(SocketAddr) -> Api,
    listen: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    background: &TaskTracker,
) -> io::Result<SocketAddr> {
    let socket = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen for the management API on {listen}: {e}"),
        )
    })?;
    let local = socket.local_addr()?;
    let api = Arc::new(api(local));
    let app = router().with_state(api);
    tracing::info!("management API listening on http://{local}");
    background.spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(socket, app).with_graceful_shutdown(stop).await {
            tracing::error!("management API stopped: {e}");
        }
    });
    Ok(local)
}

fn router() -> Router<Arc<Api>> {
    Router::new()
        .merge(overview::routes())
        .merge(vhosts::routes())
        .merge(users::routes())
        .merge(permissions::routes())
        .merge(queues::routes())
        .merge(exchanges::routes())
        .merge(bindings::routes())
        .merge(connections::routes())
        .merge(nodes::routes())
        .merge(messages::routes())
        .merge(definitions::routes())
        .merge(health::routes())
        .fallback(error::not_found)
}
