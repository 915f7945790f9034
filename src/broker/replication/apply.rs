//! What a replicated [`Change`] does to this node's broker: the same operation a single node
//! runs, called with no connection (connection-specific checks were made where the client
//! asked). Every node runs this for every committed change, in the log's order.

use super::{Change, Outcome};
use crate::broker::Broker;
use crate::broker::exchange::{ExchangeKind, ExchangeOptions};
use crate::broker::policy::PolicyKind;
use crate::broker::queue::QueueDeclaration;
use crate::broker::tenancy::TenancyError;
use crate::broker::tenancy::records::{user_from, vhost_from};
use crate::store::Definition;
use warren_protocol::AmqpError;

/// No connection: the change comes from the cluster, not from a client of this node.
const NO_CONNECTION: u64 = 0;

/// Applies one committed change on this node; the outcome is the same on every node.
pub fn apply(broker: &Broker, change: &Change) -> Outcome {
    match change {
        Change::PutVhost { record } => Outcome::of_tenancy(
            decode(record, vhost_from)
                .and_then(|(name, settings)| broker.put_vhost_here(&name, settings)),
        ),
        Change::DeleteVhost { name } => Outcome::of_tenancy(broker.delete_vhost_here(name)),
        Change::PutUser { record } => Outcome::of_tenancy(
            decode(record, user_from)
                .and_then(|user| user.map_err(TenancyError::Invalid))
                .and_then(|user| broker.put_user_here(user)),
        ),
        Change::DeleteUser { name } => Outcome::of_tenancy(broker.delete_user_here(name)),
        Change::SetPermissions {
            user,
            vhost,
            configure,
            write,
            read,
        } => Outcome::of_tenancy(broker.set_permissions_here(user, vhost, configure, write, read)),
        Change::ClearPermissions { user, vhost } => {
            Outcome::of_tenancy(broker.clear_permissions_here(user, vhost))
        }
        Change::SetTopicPermission {
            user,
            vhost,
            exchange,
            write,
            read,
        } => Outcome::of_tenancy(
            broker.set_topic_permission_here(user, vhost, exchange, write, read),
        ),
        Change::ClearTopicPermissions {
            user,
            vhost,
            exchange,
        } => Outcome::of_tenancy(broker.clear_topic_permissions_here(
            user,
            vhost,
            exchange.as_deref(),
        )),
        Change::PutPolicy {
            vhost,
            name,
            operator,
            body,
        } => match serde_json::from_str(body) {
            Ok(body) => match broker.put_policy_here(vhost, name, policy_kind(*operator), &body) {
                Ok(created) => Outcome::Created(created),
                Err(e) => Outcome::of_tenancy::<()>(Err(e)),
            },
            Err(e) => Outcome::of_tenancy::<()>(Err(TenancyError::Invalid(e.to_string()))),
        },
        Change::DeletePolicy {
            vhost,
            name,
            operator,
        } => Outcome::of_tenancy(broker.delete_policy_here(vhost, name, policy_kind(*operator))),
        Change::DeclareExchange {
            vhost,
            name,
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
        } => Outcome::of_amqp(in_vhost(broker, vhost, |v| {
            let kind = ExchangeKind::parse(kind).ok_or_else(|| {
                AmqpError::command_invalid(format_args!("unknown exchange type '{kind}'"))
            })?;
            let options = ExchangeOptions {
                kind,
                durable: *durable,
                auto_delete: *auto_delete,
                internal: *internal,
                arguments: arguments.clone(),
            };
            v.declare_exchange_here(name, options)
        })),
        Change::DeleteExchange {
            vhost,
            name,
            if_unused,
        } => Outcome::of_amqp(in_vhost(broker, vhost, |v| {
            v.delete_exchange_here(name, *if_unused)
        })),
        Change::DeclareQueue {
            vhost,
            name,
            generated,
            durable,
            auto_delete,
            arguments,
            group,
        } => Outcome::of_amqp(in_vhost(broker, vhost, |v| {
            let options = QueueDeclaration {
                durable: *durable,
                exclusive_owner: None,
                auto_delete: *auto_delete,
                arguments: arguments.clone(),
            };
            // The cluster starts a quorum queue's group (`group`) once this is applied.
            let _ = group;
            v.declare_queue_here(name.clone(), *generated, options, NO_CONNECTION)
                .map(|_| ())
        })),
        Change::DeleteQueue { vhost, name } => Outcome::of_amqp(in_vhost(broker, vhost, |v| {
            if let Some(queue) = v.queue(name) {
                v.remove_queue(&queue);
            }
            Ok(())
        })),
        Change::Bind(b) => Outcome::of_amqp(in_vhost(broker, &b.vhost, |v| {
            v.bind_here(&b.source, b.binding(), NO_CONNECTION)
        })),
        Change::Unbind(b) => Outcome::of_amqp(in_vhost(broker, &b.vhost, |v| {
            v.unbind_here(&b.source, &b.binding(), NO_CONNECTION)
        })),
    }
}

fn policy_kind(operator: bool) -> PolicyKind {
    if operator {
        PolicyKind::Operator
    } else {
        PolicyKind::Policy
    }
}

fn decode<T>(
    record: &[u8],
    from: impl FnOnce(&Definition) -> Option<T>,
) -> Result<T, TenancyError> {
    let def = Definition::decode(record).map_err(|e| TenancyError::Invalid(e.to_string()))?;
    from(&def).ok_or_else(|| TenancyError::Invalid("unexpected record".into()))
}

/// Runs `op` on the vhost, or answers as a connection to a missing vhost would.
fn in_vhost(
    broker: &Broker,
    vhost: &str,
    op: impl FnOnce(&crate::broker::vhost::VHost) -> Result<(), AmqpError>,
) -> Result<(), AmqpError> {
    match broker.vhost(vhost) {
        Some(v) => op(&v),
        None => Err(AmqpError::new(
            warren_protocol::reply::CONNECTION_FORCED,
            format_args!("vhost '{vhost}' is deleted"),
        )),
    }
}
