//! The broker core: vhosts with their exchanges, bindings and queues, and the consumers attached
//! to queues. No sockets here — the server layer calls in with typed operations and implements
//! [`consumer::DeliveryTarget`] for deliveries going out.

pub mod consumer;
pub mod exchange;
pub mod field_display;
pub mod message;
pub mod names;
pub mod queue;
pub mod vhost;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::auth::Users;
use vhost::VHost;

/// Everything the broker holds: vhosts and users.
pub struct Broker {
    vhosts: RwLock<HashMap<String, Arc<VHost>>>,
    pub users: Users,
    /// Largest message body accepted (406 beyond it).
    pub max_message_size: u64,
}

impl Broker {
    /// A broker with the default vhost `/` and the default user.
    pub fn new(users: Users, max_message_size: u64) -> Self {
        let mut vhosts = HashMap::new();
        vhosts.insert("/".to_string(), Arc::new(VHost::new("/")));
        Broker {
            vhosts: RwLock::new(vhosts),
            users,
            max_message_size,
        }
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.read().get(name).cloned()
    }
}
