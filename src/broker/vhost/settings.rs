//! What a vhost is besides its topology: description, tags and RabbitMQ's vhost limits
//! (`max-connections`, `max-queues`; none set means unlimited, 0 means none allowed).
//! The queue limit is enforced here; the connection limit by `broker::connections`.

use warren_protocol::AmqpError;

use super::VHost;

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

impl VHost {
    pub fn settings(&self) -> VhostSettings {
        self.settings.read().clone()
    }

    pub fn limits(&self) -> VhostLimits {
        self.settings.read().limits
    }

    /// Replaces description, tags and limits (the broker persists them first).
    pub fn set_settings(&self, settings: VhostSettings) {
        *self.settings.write() = settings;
    }

    /// A new queue may be declared unless `max-queues` is reached (406, RabbitMQ's text). The
    /// declare checks under the topology lock; a channel checks first too, because RabbitMQ
    /// refuses at the limit before it looks at a dead-letter exchange's permissions.
    pub fn check_queue_limit(&self, name: &str) -> Result<(), AmqpError> {
        match self.limits().max_queues {
            Some(limit) if self.queues.read().len() as u64 >= limit => {
                Err(AmqpError::precondition(format_args!(
                    "cannot declare queue '{name}': queue limit in vhost '{}' ({limit}) is reached",
                    self.name
                )))
            }
            _ => Ok(()),
        }
    }

    /// Marks the vhost deleted and waits for any declare or bind already under way: from its
    /// return, none stores anything in this vhost (see [`VHost::refuse_if_deleted`]).
    pub fn mark_deleted(&self) {
        self.deleted
            .store(true, std::sync::atomic::Ordering::Release);
        drop(self.topology.lock());
    }

    /// Declares and binds on a deleted vhost (from a connection not closed yet) close that
    /// connection as the deletion does: 320 with RabbitMQ's text.
    pub(super) fn refuse_if_deleted(&self) -> Result<(), AmqpError> {
        if self.deleted.load(std::sync::atomic::Ordering::Acquire) {
            return Err(AmqpError::new(
                warren_protocol::reply::CONNECTION_FORCED,
                format_args!("vhost '{}' is deleted", self.name),
            ));
        }
        Ok(())
    }
}
