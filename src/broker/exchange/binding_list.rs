//! An exchange's bindings: in the order they were made (for listing), and indexed by
//! destination and routing key, so that whether a binding exists, and whether another one
//! already routes the same way, costs the same with ten bindings or 100,000 (binding 100,000
//! patterns one by one used to compare each with all before it).
//!
//! This file keeps the bindings only; the exchange's matcher (direct.rs, topic.rs, …) routes.

use ahash::AHashMap;
use amq_protocol::types::FieldTable;

use super::{Binding, Destination, ExchangeKind};

#[derive(Default)]
pub struct BindingList {
    list: Vec<Binding>,
    /// Destination → routing key → the arguments of each binding with both.
    index: AHashMap<Destination, AHashMap<String, Vec<FieldTable>>>,
}

impl BindingList {
    /// Whether this exact binding (destination, routing key, arguments) exists.
    pub fn contains(&self, binding: &Binding) -> bool {
        self.index
            .get(&binding.destination)
            .and_then(|keys| keys.get(binding.routing_key.as_str()))
            .is_some_and(|all| all.contains(&binding.arguments))
    }

    /// Whether a binding here routes as `binding` does for an exchange of `kind`: to the same
    /// destination, and with the same routing key (direct, topic), whatever it (fanout), or with
    /// the same arguments (headers).
    pub fn routes_like(&self, binding: &Binding, kind: ExchangeKind) -> bool {
        let Some(keys) = self.index.get(&binding.destination) else {
            return false;
        };
        match kind {
            ExchangeKind::Fanout => true,
            ExchangeKind::Direct | ExchangeKind::Topic | ExchangeKind::DelayedMessage => {
                keys.contains_key(binding.routing_key.as_str())
            }
            ExchangeKind::Headers => keys.values().flatten().any(|a| *a == binding.arguments),
        }
    }

    /// Adds a binding (the caller checked it is not here yet).
    pub fn push(&mut self, binding: Binding) {
        self.index
            .entry(binding.destination.clone())
            .or_default()
            .entry(binding.routing_key.clone())
            .or_default()
            .push(binding.arguments.clone());
        self.list.push(binding);
    }

    /// Removes this exact binding; what was removed, or `None` if it was not here.
    pub fn remove(&mut self, binding: &Binding) -> Option<Binding> {
        let keys = self.index.get_mut(&binding.destination)?;
        let all = keys.get_mut(binding.routing_key.as_str())?;
        let at = all.iter().position(|a| *a == binding.arguments)?;
        all.swap_remove(at);
        if all.is_empty() {
            keys.remove(binding.routing_key.as_str());
            if keys.is_empty() {
                self.index.remove(&binding.destination);
            }
        }
        let at = self.list.iter().position(|b| b == binding)?;
        Some(self.list.remove(at))
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Binding> {
        self.list.iter()
    }

    pub fn to_vec(&self) -> Vec<Binding> {
        self.list.clone()
    }
}

#[cfg(test)]
mod tests {
    use amq_protocol::types::AMQPValue;

    use super::*;

    fn binding(queue: &str, key: &str, argument: Option<i32>) -> Binding {
        let mut arguments = FieldTable::default();
        if let Some(n) = argument {
            arguments.insert("x-n".into(), AMQPValue::LongInt(n));
        }
        Binding {
            destination: Destination::Queue(queue.into()),
            routing_key: key.into(),
            arguments,
        }
    }

    #[test]
    fn a_binding_is_the_whole_triple_and_routes_like_its_kind_says() {
        let mut list = BindingList::default();
        list.push(binding("q", "a.*", Some(1)));
        assert!(list.contains(&binding("q", "a.*", Some(1))));
        assert!(!list.contains(&binding("q", "a.*", Some(2))));
        assert!(!list.contains(&binding("q", "a.#", Some(1))));
        // Other arguments: routes the same, except for a headers exchange.
        let other_arguments = binding("q", "a.*", Some(2));
        assert!(list.routes_like(&other_arguments, ExchangeKind::Topic));
        assert!(!list.routes_like(&other_arguments, ExchangeKind::Headers));
        // Another key: only a fanout exchange ignores it; another queue: nobody.
        let other_key = binding("q", "b", Some(1));
        assert!(list.routes_like(&other_key, ExchangeKind::Fanout));
        assert!(!list.routes_like(&other_key, ExchangeKind::Direct));
        assert!(list.routes_like(&other_key, ExchangeKind::Headers));
        assert!(!list.routes_like(&binding("r", "a.*", Some(1)), ExchangeKind::Fanout));
    }

    #[test]
    fn removing_keeps_the_order_and_forgets_what_went() {
        let mut list = BindingList::default();
        for key in ["a", "b", "c"] {
            list.push(binding("q", key, None));
        }
        assert_eq!(list.remove(&binding("q", "x", None)), None);
        assert_eq!(
            list.remove(&binding("q", "b", None)),
            Some(binding("q", "b", None))
        );
        let keys: Vec<&str> = list.iter().map(|b| b.routing_key.as_str()).collect();
        assert_eq!(keys, ["a", "c"]);
        assert!(!list.routes_like(&binding("q", "b", None), ExchangeKind::Direct));
        list.remove(&binding("q", "a", None));
        list.remove(&binding("q", "c", None));
        assert!(list.is_empty() && list.index.is_empty());
    }
}
