//! What a redeclaration must match: RabbitMQ's `inequivalent arg` checks for exchanges and
//! queues declared again with other flags or arguments (406 with RabbitMQ's text). Declaring
//! is mod.rs's; this file only compares.

use warren_protocol::AmqpError;

use super::VHost;
use crate::broker::exchange::{Exchange, ExchangeOptions};
use crate::broker::names;
use crate::broker::queue::{Queue, QueueDeclaration, args};

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

impl VHost {
    pub(super) fn check_exchange_equivalence(
        &self,
        existing: &Exchange,
        new: &ExchangeOptions,
    ) -> Result<(), AmqpError> {
        let current = &existing.options;
        let what = names::exchange(&existing.name, &self.name);
        let mismatch = |arg: &str, received: &str, current: &str| {
            AmqpError::precondition(format_args!(
                "inequivalent arg '{arg}' for {what}: received '{received}' but current is '{current}'"
            ))
        };
        if current.kind != new.kind {
            return Err(mismatch("type", new.kind.as_str(), current.kind.as_str()));
        }
        if current.durable != new.durable {
            return Err(mismatch(
                "durable",
                bool_str(new.durable),
                bool_str(current.durable),
            ));
        }
        if current.auto_delete != new.auto_delete {
            return Err(mismatch(
                "auto_delete",
                bool_str(new.auto_delete),
                bool_str(current.auto_delete),
            ));
        }
        if current.internal != new.internal {
            return Err(mismatch(
                "internal",
                bool_str(new.internal),
                bool_str(current.internal),
            ));
        }
        // RabbitMQ compares only this argument of exchanges.
        let (cur, received) = (
            current.arguments.inner().get("alternate-exchange"),
            new.arguments.inner().get("alternate-exchange"),
        );
        if cur != received {
            return Err(args::inequivalent(
                "alternate-exchange",
                &what,
                received,
                cur,
            ));
        }
        Ok(())
    }

    pub(super) fn check_queue_equivalence(
        &self,
        existing: &Queue,
        new: &QueueDeclaration,
    ) -> Result<(), AmqpError> {
        let current = &existing.options;
        let what = names::queue(&existing.name, &self.name);
        let mismatch = |arg: &str, received: bool, current: bool| {
            AmqpError::precondition(format_args!(
                "inequivalent arg '{arg}' for {what}: received '{}' but current is '{}'",
                bool_str(received),
                bool_str(current)
            ))
        };
        if current.durable != new.durable {
            return Err(mismatch("durable", new.durable, current.durable));
        }
        if current.exclusive_owner.is_some() != new.exclusive_owner.is_some() {
            // A stream words it as for an exclusive queue (RabbitMQ 3.10).
            return Err(
                if current.exclusive_owner.is_some() || existing.is_stream() {
                    existing.locked()
                } else {
                    AmqpError::resource_locked(format_args!(
                        "cannot obtain exclusive access to locked {what}"
                    ))
                },
            );
        }
        if current.auto_delete != new.auto_delete {
            return Err(mismatch(
                "auto_delete",
                new.auto_delete,
                current.auto_delete,
            ));
        }
        current.arguments.check_equivalent(&new.arguments, &what)
    }
}
