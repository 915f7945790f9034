//! What a vhost is besides its topology: description, tags and RabbitMQ's vhost limits
//! (`max-connections`, `max-queues`; none set means unlimited, 0 means none allowed).

/// RabbitMQ's vhost limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VhostLimits {
    pub max_connections: Option<u64>,
    pub max_queues: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VhostSettings {
    pub description: String,
    pub tags: Vec<String>,
    pub limits: VhostLimits,
}
