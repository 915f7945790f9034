//! Durable definitions as the store keeps them: exchanges, queues and bindings, and tenancy
//! (vhosts, users, permissions, topic permissions), independent of the broker's in-memory
//! types (the broker converts on its side).

use amq_protocol::types::FieldTable;

use super::schema::{Reader, RecordError, Writer, definition_key, open, seal};

const KIND_EXCHANGE: u8 = b'e';
const KIND_QUEUE: u8 = b'q';
const KIND_BINDING: u8 = b'b';
const KIND_VHOST: u8 = b'v';
const KIND_USER: u8 = b'u';
const KIND_PERMISSION: u8 = b'p';
const KIND_TOPIC_PERMISSION: u8 = b't';
const KIND_POLICY: u8 = b'P';
const KIND_DELAYED_LEFTOVER: u8 = b'd';

/// A limit that is not set (limits are stored as u64; none is this).
const NO_LIMIT: u64 = u64::MAX;

#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    Exchange {
        vhost: String,
        name: String,
        kind: String,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
        /// A delayed exchange's schedule id (schedule_index.rs); 0 for any other. Written
        /// after the arguments, and only when set, so earlier records still read.
        schedule_id: u64,
    },
    /// `id` keys the queue's message index.
    Queue {
        vhost: String,
        name: String,
        id: u64,
        auto_delete: bool,
        arguments: FieldTable,
    },
    Binding {
        vhost: String,
        source: String,
        /// true: the destination is an exchange; false: a queue.
        to_exchange: bool,
        destination: String,
        routing_key: String,
        arguments: FieldTable,
    },
    VHost {
        name: String,
        description: String,
        tags: Vec<String>,
        max_connections: Option<u64>,
        max_queues: Option<u64>,
    },
    User {
        name: String,
        /// `salt ‖ digest`; empty for a user without a password.
        password_hash: Vec<u8>,
        /// RabbitMQ's module name, e.g. `rabbit_password_hashing_sha256`.
        hashing_algorithm: String,
        tags: Vec<String>,
        max_connections: Option<u64>,
        max_channels: Option<u64>,
    },
    Permission {
        user: String,
        vhost: String,
        configure: String,
        write: String,
        read: String,
    },
    TopicPermission {
        user: String,
        vhost: String,
        exchange: String,
        write: String,
        read: String,
    },
    /// A policy (`operator`: an operator policy), its body as the API takes it (JSON:
    /// pattern, apply-to, definition, priority), checked again when loaded.
    Policy {
        vhost: String,
        name: String,
        operator: bool,
        body: String,
    },
    /// What a deleted durable delayed exchange still holds: its schedule, whose messages are
    /// routed by the exchange's name when due (broker/delayed/leftovers.rs).
    DelayedLeftover {
        vhost: String,
        exchange: String,
        schedule_id: u64,
    },
}

impl Definition {
    /// The key under which this definition is stored (its identity, not its settings).
    pub fn key(&self) -> [u8; 17] {
        match self {
            Definition::Exchange { vhost, name, .. } => {
                definition_key(KIND_EXCHANGE, &[vhost.as_bytes(), name.as_bytes()])
            }
            Definition::Queue { vhost, name, .. } => {
                definition_key(KIND_QUEUE, &[vhost.as_bytes(), name.as_bytes()])
            }
            Definition::Binding {
                vhost,
                source,
                to_exchange,
                destination,
                routing_key,
                arguments,
            } => {
                let mut args = Writer::default();
                args.table(arguments);
                definition_key(
                    KIND_BINDING,
                    &[
                        vhost.as_bytes(),
                        source.as_bytes(),
                        &[*to_exchange as u8],
                        destination.as_bytes(),
                        routing_key.as_bytes(),
                        &args.0,
                    ],
                )
            }
            Definition::VHost { name, .. } => definition_key(KIND_VHOST, &[name.as_bytes()]),
            Definition::User { name, .. } => definition_key(KIND_USER, &[name.as_bytes()]),
            Definition::Permission { user, vhost, .. } => {
                definition_key(KIND_PERMISSION, &[user.as_bytes(), vhost.as_bytes()])
            }
            Definition::TopicPermission {
                user,
                vhost,
                exchange,
                ..
            } => definition_key(
                KIND_TOPIC_PERMISSION,
                &[user.as_bytes(), vhost.as_bytes(), exchange.as_bytes()],
            ),
            Definition::Policy {
                vhost,
                name,
                operator,
                ..
            } => definition_key(
                KIND_POLICY,
                &[vhost.as_bytes(), name.as_bytes(), &[*operator as u8]],
            ),
            Definition::DelayedLeftover {
                vhost,
                exchange,
                schedule_id,
            } => definition_key(
                KIND_DELAYED_LEFTOVER,
                &[
                    vhost.as_bytes(),
                    exchange.as_bytes(),
                    &schedule_id.to_be_bytes(),
                ],
            ),
        }
    }

    /// The vhost this definition belongs to, if it belongs to one.
    pub fn vhost(&self) -> Option<&str> {
        match self {
            Definition::Exchange { vhost, .. }
            | Definition::Queue { vhost, .. }
            | Definition::Binding { vhost, .. }
            | Definition::Permission { vhost, .. }
            | Definition::TopicPermission { vhost, .. }
            | Definition::Policy { vhost, .. }
            | Definition::DelayedLeftover { vhost, .. } => Some(vhost),
            Definition::VHost { name, .. } => Some(name),
            Definition::User { .. } => None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Definition::Exchange {
                vhost,
                name,
                kind,
                auto_delete,
                internal,
                arguments,
                schedule_id,
            } => {
                w.u8(KIND_EXCHANGE)
                    .bytes(vhost.as_bytes())
                    .bytes(name.as_bytes())
                    .bytes(kind.as_bytes());
                w.u8(*auto_delete as u8)
                    .u8(*internal as u8)
                    .table(arguments);
                if *schedule_id != 0 {
                    w.u64(*schedule_id);
                }
            }
            Definition::Queue {
                vhost,
                name,
                id,
                auto_delete,
                arguments,
            } => {
                w.u8(KIND_QUEUE)
                    .bytes(vhost.as_bytes())
                    .bytes(name.as_bytes())
                    .u64(*id);
                w.u8(*auto_delete as u8).table(arguments);
            }
            Definition::Binding {
                vhost,
                source,
                to_exchange,
                destination,
                routing_key,
                arguments,
            } => {
                w.u8(KIND_BINDING)
                    .bytes(vhost.as_bytes())
                    .bytes(source.as_bytes())
                    .u8(*to_exchange as u8);
                w.bytes(destination.as_bytes())
                    .bytes(routing_key.as_bytes())
                    .table(arguments);
            }
            Definition::VHost {
                name,
                description,
                tags,
                max_connections,
                max_queues,
            } => {
                w.u8(KIND_VHOST)
                    .bytes(name.as_bytes())
                    .bytes(description.as_bytes())
                    .bytes(tags.join(",").as_bytes());
                w.u64(max_connections.unwrap_or(NO_LIMIT))
                    .u64(max_queues.unwrap_or(NO_LIMIT));
            }
            Definition::User {
                name,
                password_hash,
                hashing_algorithm,
                tags,
                max_connections,
                max_channels,
            } => {
                w.u8(KIND_USER)
                    .bytes(name.as_bytes())
                    .bytes(password_hash)
                    .bytes(hashing_algorithm.as_bytes());
                w.bytes(tags.join(",").as_bytes())
                    .u64(max_connections.unwrap_or(NO_LIMIT))
                    .u64(max_channels.unwrap_or(NO_LIMIT));
            }
            Definition::Permission {
                user,
                vhost,
                configure,
                write,
                read,
            } => {
                w.u8(KIND_PERMISSION)
                    .bytes(user.as_bytes())
                    .bytes(vhost.as_bytes());
                w.bytes(configure.as_bytes())
                    .bytes(write.as_bytes())
                    .bytes(read.as_bytes());
            }
            Definition::TopicPermission {
                user,
                vhost,
                exchange,
                write,
                read,
            } => {
                w.u8(KIND_TOPIC_PERMISSION)
                    .bytes(user.as_bytes())
                    .bytes(vhost.as_bytes());
                w.bytes(exchange.as_bytes())
                    .bytes(write.as_bytes())
                    .bytes(read.as_bytes());
            }
            Definition::Policy {
                vhost,
                name,
                operator,
                body,
            } => {
                w.u8(KIND_POLICY)
                    .bytes(vhost.as_bytes())
                    .bytes(name.as_bytes());
                w.u8(*operator as u8).bytes(body.as_bytes());
            }
            Definition::DelayedLeftover {
                vhost,
                exchange,
                schedule_id,
            } => {
                w.u8(KIND_DELAYED_LEFTOVER)
                    .bytes(vhost.as_bytes())
                    .bytes(exchange.as_bytes())
                    .u64(*schedule_id);
            }
        }
        seal(&w.0)
    }

    pub fn decode(record: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader(open(record)?);
        let def = match r.u8()? {
            KIND_EXCHANGE => Definition::Exchange {
                vhost: r.string()?,
                name: r.string()?,
                kind: r.string()?,
                auto_delete: r.u8()? != 0,
                internal: r.u8()? != 0,
                arguments: r.table()?,
                schedule_id: match r.0.is_empty() {
                    true => 0,
                    false => r.u64()?,
                },
            },
            KIND_QUEUE => Definition::Queue {
                vhost: r.string()?,
                name: r.string()?,
                id: r.u64()?,
                auto_delete: r.u8()? != 0,
                arguments: r.table()?,
            },
            KIND_BINDING => Definition::Binding {
                vhost: r.string()?,
                source: r.string()?,
                to_exchange: r.u8()? != 0,
                destination: r.string()?,
                routing_key: r.string()?,
                arguments: r.table()?,
            },
            KIND_VHOST => Definition::VHost {
                name: r.string()?,
                description: r.string()?,
                tags: tags(&r.string()?),
                max_connections: limit(r.u64()?),
                max_queues: limit(r.u64()?),
            },
            KIND_USER => Definition::User {
                name: r.string()?,
                password_hash: r.bytes()?.to_vec(),
                hashing_algorithm: r.string()?,
                tags: tags(&r.string()?),
                max_connections: limit(r.u64()?),
                max_channels: limit(r.u64()?),
            },
            KIND_PERMISSION => Definition::Permission {
                user: r.string()?,
                vhost: r.string()?,
                configure: r.string()?,
                write: r.string()?,
                read: r.string()?,
            },
            KIND_TOPIC_PERMISSION => Definition::TopicPermission {
                user: r.string()?,
                vhost: r.string()?,
                exchange: r.string()?,
                write: r.string()?,
                read: r.string()?,
            },
            KIND_POLICY => Definition::Policy {
                vhost: r.string()?,
                name: r.string()?,
                operator: r.u8()? != 0,
                body: r.string()?,
            },
            KIND_DELAYED_LEFTOVER => Definition::DelayedLeftover {
                vhost: r.string()?,
                exchange: r.string()?,
                schedule_id: r.u64()?,
            },
            _ => return Err(RecordError::Malformed("unknown definition kind")),
        };
        if !r.rest().is_empty() {
            return Err(RecordError::Malformed("trailing bytes"));
        }
        Ok(def)
    }
}

fn tags(joined: &str) -> Vec<String> {
    joined
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn limit(stored: u64) -> Option<u64> {
    (stored != NO_LIMIT).then_some(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::AMQPValue;

    #[test]
    fn definitions_round_trip_and_keys_follow_identity() {
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongInt(10));
        let defs = [
            Definition::Exchange {
                vhost: "/".into(),
                name: "ex".into(),
                kind: "topic".into(),
                auto_delete: false,
                internal: true,
                arguments: args.clone(),
                schedule_id: 0,
            },
            Definition::Queue {
                vhost: "/".into(),
                name: "q".into(),
                id: 7,
                auto_delete: true,
                arguments: args.clone(),
            },
            Definition::Binding {
                vhost: "/".into(),
                source: "ex".into(),
                to_exchange: false,
                destination: "q".into(),
                routing_key: "a.#".into(),
                arguments: args,
            },
            Definition::Exchange {
                vhost: "/".into(),
                name: "later".into(),
                kind: "x-delayed-message".into(),
                auto_delete: false,
                internal: false,
                arguments: FieldTable::default(),
                schedule_id: 42,
            },
            Definition::DelayedLeftover {
                vhost: "/".into(),
                exchange: "later".into(),
                schedule_id: 42,
            },
        ];
        for d in &defs {
            assert_eq!(&Definition::decode(&d.encode()).unwrap(), d);
        }
        let tenancy = [
            Definition::VHost {
                name: "staging".into(),
                description: "d".into(),
                tags: vec!["a".into(), "b".into()],
                max_connections: Some(0),
                max_queues: None,
            },
            Definition::User {
                name: "svc".into(),
                password_hash: vec![1, 2, 3],
                hashing_algorithm: "rabbit_password_hashing_sha512".into(),
                tags: vec![],
                max_connections: None,
                max_channels: Some(5),
            },
            Definition::Permission {
                user: "svc".into(),
                vhost: "staging".into(),
                configure: "".into(),
                write: ".*".into(),
                read: "^q".into(),
            },
            Definition::TopicPermission {
                user: "svc".into(),
                vhost: "staging".into(),
                exchange: "amq.topic".into(),
                write: "^a".into(),
                read: ".*".into(),
            },
            Definition::Policy {
                vhost: "staging".into(),
                name: "limit".into(),
                operator: true,
                body: r#"{"pattern":"^q","definition":{"max-length":5}}"#.into(),
            },
        ];
        for d in &tenancy {
            assert_eq!(&Definition::decode(&d.encode()).unwrap(), d);
        }
        let Definition::Queue { .. } = &defs[1] else {
            unreachable!()
        };
        let same_queue_other_settings = Definition::Queue {
            vhost: "/".into(),
            name: "q".into(),
            id: 8,
            auto_delete: false,
            arguments: FieldTable::default(),
        };
        assert_eq!(defs[1].key(), same_queue_other_settings.key());
        assert_ne!(defs[0].key(), defs[1].key());
        let policy = |operator| Definition::Policy {
            vhost: "/".into(),
            name: "p".into(),
            operator,
            body: String::new(),
        };
        assert_ne!(policy(true).key(), policy(false).key());
        // An exchange deleted twice leaves two schedules under one name.
        let leftover = |schedule_id| Definition::DelayedLeftover {
            vhost: "/".into(),
            exchange: "later".into(),
            schedule_id,
        };
        assert_ne!(leftover(1).key(), leftover(2).key());
    }
}
