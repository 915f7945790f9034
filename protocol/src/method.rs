//! Names for the (class id, method id) pairs an error points at in channel.close and
//! connection.close, so code says `AmqpError::on_method(method::BASIC_PUBLISH)` rather than
//! `.on(60, 40)`. Only the methods an error can point at are here: those a client sends, and
//! the server-only ones a broker refuses when a client sends them.

/// One AMQP method: its class id and its method id within the class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodId {
    pub class: u16,
    pub method: u16,
}

const fn id(class: u16, method: u16) -> MethodId {
    MethodId { class, method }
}

pub const CONNECTION_START_OK: MethodId = id(10, 11);
pub const CONNECTION_SECURE_OK: MethodId = id(10, 21);
pub const CONNECTION_TUNE_OK: MethodId = id(10, 31);
pub const CONNECTION_OPEN: MethodId = id(10, 40);
pub const CONNECTION_UPDATE_SECRET: MethodId = id(10, 70);
pub const CONNECTION_CLOSE: MethodId = id(10, 50);

pub const CHANNEL_OPEN: MethodId = id(20, 10);
pub const CHANNEL_OPEN_OK: MethodId = id(20, 11);
pub const CHANNEL_FLOW: MethodId = id(20, 20);
pub const CHANNEL_FLOW_OK: MethodId = id(20, 21);
pub const CHANNEL_CLOSE: MethodId = id(20, 40);
pub const CHANNEL_CLOSE_OK: MethodId = id(20, 41);

pub const EXCHANGE_DECLARE: MethodId = id(40, 10);
pub const EXCHANGE_DELETE: MethodId = id(40, 20);
pub const EXCHANGE_BIND: MethodId = id(40, 30);
pub const EXCHANGE_UNBIND: MethodId = id(40, 40);

pub const QUEUE_DECLARE: MethodId = id(50, 10);
pub const QUEUE_BIND: MethodId = id(50, 20);
pub const QUEUE_PURGE: MethodId = id(50, 30);
pub const QUEUE_DELETE: MethodId = id(50, 40);
pub const QUEUE_UNBIND: MethodId = id(50, 50);

pub const BASIC_QOS: MethodId = id(60, 10);
pub const BASIC_CONSUME: MethodId = id(60, 20);
pub const BASIC_CANCEL: MethodId = id(60, 30);
pub const BASIC_PUBLISH: MethodId = id(60, 40);
pub const BASIC_GET: MethodId = id(60, 70);
pub const BASIC_ACK: MethodId = id(60, 80);
pub const BASIC_REJECT: MethodId = id(60, 90);
pub const BASIC_RECOVER_ASYNC: MethodId = id(60, 100);
pub const BASIC_RECOVER: MethodId = id(60, 110);
pub const BASIC_NACK: MethodId = id(60, 120);

pub const CONFIRM_SELECT: MethodId = id(85, 10);

pub const TX_SELECT: MethodId = id(90, 10);
pub const TX_COMMIT: MethodId = id(90, 20);
pub const TX_ROLLBACK: MethodId = id(90, 30);
