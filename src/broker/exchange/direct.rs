//! Direct-exchange bindings: a routing key maps to the destinations bound with exactly that key.

use std::collections::HashMap;

use super::Destination;

#[derive(Default)]
pub struct DirectBindings {
    by_key: HashMap<String, Vec<Destination>, ahash::RandomState>,
}

impl DirectBindings {
    pub fn bind(&mut self, routing_key: &str, dest: Destination) {
        let dests = self.by_key.entry(routing_key.to_string()).or_default();
        if !dests.contains(&dest) {
            dests.push(dest);
        }
    }

    pub fn unbind(&mut self, routing_key: &str, dest: &Destination) {
        if let Some(dests) = self.by_key.get_mut(routing_key) {
            dests.retain(|d| d != dest);
            if dests.is_empty() {
                self.by_key.remove(routing_key);
            }
        }
    }

    pub fn route(&self, routing_key: &str, out: &mut Vec<Destination>) {
        if let Some(dests) = self.by_key.get(routing_key) {
            out.extend(dests.iter().cloned());
        }
    }
}
