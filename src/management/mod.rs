//! The management HTTP API, as RabbitMQ 3.10's management plugin serves it: the same paths,
//! JSON shapes, status codes and HTTP basic auth by user tags, so `rabbitmqadmin`, deploy
//! scripts and health checks work against warren unchanged.
//!
//! One file per group of endpoints: [`overview`] (overview, extensions), [`nodes`], [`vhosts`],
//! [`users`] (and whoami), [`permissions`] (and topic permissions), [`queues`], [`exchanges`],
//! [`bindings`], [`messages`] (publish and get), [`definitions`] (export and import),
//! [`limits`] (vhost and user limits), [`connections`] (and channels, consumers), [`health`]
//! (health checks, aliveness test), [`policies`] (and operator policies). [`auth`] turns the `Authorization` header into a user with tags; [`error`] is
//! RabbitMQ's error body; [`json`] reads request bodies as RabbitMQ does; [`listing`] applies
//! `columns=`, sorting and pagination to every answer. [`rates`] samples every counter every
//! 5 s for the rates beside them, and [`message_stats`] shows counters and rates as RabbitMQ.
//!
//! Handlers call the broker's operations (`broker::tenancy` for users, vhosts and
//! permissions) and never hold a broker lock across an `.await`; operations that commit to
//! the store run on the blocking pool.

mod auth;
mod bindings;
mod cluster;
mod connections;
mod definitions;
mod error;
mod exchanges;
mod health;
mod json;
mod limits;
mod listing;
mod message_stats;
mod messages;
mod nodes;
mod overview;
mod permissions;
mod policies;
pub mod prometheus;
mod queues;
pub mod rates;
mod ui;
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
    /// The latest rates, kept by the sampler ([`rates::run`]).
    pub rates: rates::Rates,
    /// This node's part of a cluster, when it is one (`/api/cluster-status`).
    pub cluster: Option<Arc<crate::cluster::ClusterNode>>,
}

type State = axum::extract::State<Arc<Api>>;

/// The node name RabbitMQ would show for this broker (`rabbit@<host>`).
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("rabbit@{host}")
}

/// RabbitMQ's answer to a PUT: 201 for a new object, 204 for one that existed.
fn created_or_updated(created: bool) -> axum::http::StatusCode {
    if created {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::NO_CONTENT
    }
}

/// Runs `work` on the blocking pool (store commits, page-ins), off the runtime's workers.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> error::ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| error::ApiError::Internal(format!("the operation failed: {e}")))
}

/// Binds a listener for `what` (named in the error, e.g. "the management API").
pub async fn bind(listen: SocketAddr, what: &str) -> io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen for {what} on {listen}: {e}"),
        )
    })
}

/// Serves `app` on `socket` from `background` until `shutdown` (with the peer's address, which
/// basic auth needs for `loopback_users`).
pub fn serve(
    socket: tokio::net::TcpListener,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
    background: &TaskTracker,
) {
    background.spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(socket, app).with_graceful_shutdown(stop).await {
            tracing::error!("HTTP listener stopped: {e}");
        }
    });
}

/// The management API's routes on `api`.
pub fn app(api: Arc<Api>) -> Router {
    router().with_state(api)
}

fn router() -> Router<Arc<Api>> {
    Router::new()
        .merge(ui::routes())
        .merge(overview::routes())
        .merge(vhosts::routes())
        .merge(users::routes())
        .merge(permissions::routes())
        .merge(policies::routes())
        .merge(queues::routes())
        .merge(exchanges::routes())
        .merge(bindings::routes())
        .merge(connections::routes())
        .merge(nodes::routes())
        .merge(messages::routes())
        .merge(definitions::routes())
        .merge(limits::routes())
        .merge(health::routes())
        .merge(cluster::routes())
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(listing::reshape))
}
