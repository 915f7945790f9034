//! The checks RabbitMQ makes on a published message before routing it, in its words: no
//! publishing to an internal exchange, a `user_id` property must name the authenticated user,
//! an `expiration` must be a whole number of milliseconds, and a direct reply-to request needs
//! its publisher to consume `amq.rabbitmq.reply-to`. Errors carry no method ids: the caller
//! says which method failed.

use crate::auth::User;
use warren_protocol::{AmqpError, Properties};

use super::direct_reply::REPLY_PSEUDO_QUEUE;
use crate::broker::exchange::Exchange;
use crate::broker::names;

/// Internal exchanges take messages only from other exchanges.
pub fn not_internal(exchange: &Exchange, vhost: &str) -> Result<(), AmqpError> {
    if exchange.options.internal {
        return Err(AmqpError::access_refused(format_args!(
            "cannot publish to internal {}",
            names::exchange(&exchange.name, vhost)
        )));
    }
    Ok(())
}

/// A `user_id` property must be the publisher's own user name, unless the publisher has the
/// `impersonator` tag.
pub fn user_id(properties: &Properties, user: &User) -> Result<(), AmqpError> {
    match properties.user_id() {
        Some(user_id) if user_id != user.name && !user.is_impersonator() => {
            Err(AmqpError::precondition(format_args!(
                "user_id property set to '{user_id}' but authenticated user was '{}'",
                user.name
            )))
        }
        _ => Ok(()),
    }
}

/// The `expiration` property must be a non-negative integer of milliseconds; RabbitMQ refuses
/// anything else with 406 and says why in Erlang's terms.
pub fn expiration(properties: &Properties) -> Result<(), AmqpError> {
    let Some(expiration) = properties.expiration() else {
        return Ok(());
    };
    let digits = expiration.strip_prefix('-').unwrap_or(expiration);
    let leading = digits.bytes().take_while(u8::is_ascii_digit).count();
    let reason = if leading == 0 {
        "no_integer".to_string()
    } else if leading < digits.len() {
        format!("{{leftover_string,\"{}\"}}", &digits[leading..])
    } else if expiration.starts_with('-') {
        format!("{{value_negative,{expiration}}}")
    } else {
        return Ok(());
    };
    Err(AmqpError::precondition(format_args!(
        "invalid expiration '{expiration}': {reason}"
    )))
}

/// A request asking for a direct reply (`reply_to: amq.rabbitmq.reply-to`) gets its
/// publisher's routable reply address instead.
pub fn rewrite_reply_to(
    properties: Properties,
    reply_address: Option<&str>,
) -> Result<Properties, AmqpError> {
    if properties.reply_to() != Some(REPLY_PSEUDO_QUEUE) {
        return Ok(properties);
    }
    let Some(address) = reply_address else {
        return Err(AmqpError::precondition(
            "fast reply consumer does not exist",
        ));
    };
    let basic = properties.to_basic().with_reply_to(address.into());
    Ok(Properties::from_basic(&basic))
}
