//! Durable definitions as the store keeps them: exchanges, queues and bindings, independent of
//! the broker's in-memory types (the broker converts on its side).

use amq_protocol::types::FieldTable;

use super::schema::{Reader, RecordError, Writer, definition_key, open, seal};

const KIND_EXCHANGE: u8 = b'e';
const KIND_QUEUE: u8 = b'q';
const KIND_BINDING: u8 = b'b';

#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    Exchange {
        vhost: String,
        name: String,
        kind: String,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
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
            } => {
                w.u8(KIND_EXCHANGE)
                    .bytes(vhost.as_bytes())
                    .bytes(name.as_bytes())
                    .bytes(kind.as_bytes());
                w.u8(*auto_delete as u8)
                    .u8(*internal as u8)
                    .table(arguments);
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
            _ => return Err(RecordError::Malformed("unknown definition kind")),
        };
        if !r.rest().is_empty() {
            return Err(RecordError::Malformed("trailing bytes"));
        }
        Ok(def)
    }
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
        ];
        for d in &defs {
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
    }
}
