//! What the management API sees of a channel: its settings (published here by the channel's
//! handlers, which own them) and a snapshot of its deliveries and consumers. Read-only.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::shared::ChannelShared;
use crate::broker::connections::{ChannelAbout, ConsumerAbout};

/// A channel's settings that live in the connection task, mirrored for readers elsewhere.
#[derive(Default)]
pub struct ChannelSettings {
    consumer_prefetch: AtomicU32,
    confirm: AtomicBool,
    transactional: AtomicBool,
}

impl ChannelSettings {
    pub fn set_consumer_prefetch(&self, count: u32) {
        self.consumer_prefetch.store(count, Ordering::Relaxed);
    }

    pub fn set_confirm(&self) {
        self.confirm.store(true, Ordering::Relaxed);
    }

    pub fn set_transactional(&self) {
        self.transactional.store(true, Ordering::Relaxed);
    }
}

impl ChannelShared {
    pub fn about(&self) -> ChannelAbout {
        let (unacked, global_prefetch, consumers) = self.delivery_snapshot();
        let settings = &self.settings;
        ChannelAbout {
            number: self.id,
            prefetch_count: settings.consumer_prefetch.load(Ordering::Relaxed),
            global_prefetch_count: global_prefetch,
            confirm: settings.confirm.load(Ordering::Relaxed),
            transactional: settings.transactional.load(Ordering::Relaxed),
            unacked,
            counts: self.counts.clone(),
            consumers: consumers
                .iter()
                .map(|(queue, consumer)| ConsumerAbout {
                    tag: consumer.tag.clone(),
                    queue: queue.name.clone(),
                    ack_required: !consumer.no_ack,
                    exclusive: consumer.exclusive,
                    prefetch_count: consumer.prefetch,
                    priority: consumer.priority,
                })
                .collect(),
        }
    }
}
