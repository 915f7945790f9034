//! The connection handshake: protocol header, start/start-ok (authentication), tune/tune-ok,
//! open/open-ok. Produces the negotiated limits and the connection's registration with the
//! broker; on failure the caller closes the connection with the error this returns (403 on bad
//! credentials, 530 on an unknown vhost, a vhost the user has no permissions on, or a vhost or
//! user connection limit reached — RabbitMQ's checks in RabbitMQ's order).

use std::net::SocketAddr;
use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, connection};
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use warren_protocol::AmqpError;
use warren_protocol::codec::Frame;

use super::frame_reader::{FrameReader, ReadError};
use super::outbox::Outbox;
use super::tls::TlsPeer;
use crate::Config;
use crate::auth::{AuthError, User};
use crate::broker::Broker;
use crate::broker::connections::{
    ConnectionAbout, ConnectionControl, ConnectionLimits, Registration,
};
use crate::broker::vhost::VHost;
use crate::config::AuthMechanism;
use warren_protocol::method;

/// What the handshake settled.
pub struct Negotiated {
    pub user: Arc<User>,
    pub vhost: Arc<VHost>,
    /// This connection's place among the broker's open connections (dropped: it leaves).
    pub registration: Registration,
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
    /// The client's `capabilities.consumer_cancel_notify`.
    pub consumer_cancel_notify: bool,
    /// The client's `capabilities.connection.blocked`.
    pub connection_blocked: bool,
}

/// Capabilities warren implements; advertised in connection.start and nothing else.
const CAPABILITIES: [&str; 9] = [
    "connection.blocked",
    "consumer_priorities",
    "direct_reply_to",
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "per_consumer_qos",
    "authentication_failure_close",
];

/// The smallest frame_max the spec lets a peer choose.
pub const FRAME_MIN_SIZE: u32 = 4096;

pub fn server_properties(config: &Config) -> FieldTable {
    let mut caps = FieldTable::default();
    for cap in CAPABILITIES {
        caps.insert(ShortString::from(cap), AMQPValue::Boolean(true));
    }
    let mut props = FieldTable::default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
    props.insert("product".into(), text(&config.product));
    props.insert("version".into(), text(&config.product_version));
    props.insert(
        "platform".into(),
        text(&format!(
            "warren {} (Rust, {} {})",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        )),
    );
    props.insert("copyright".into(), text("Copyright (c) the warren authors"));
    props.insert(
        "information".into(),
        text("An AMQP 0-9-1 broker that behaves like RabbitMQ"),
    );
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    props
}

fn method(class: AMQPClass) -> impl FnOnce(&mut bytes::BytesMut) {
    move |buf| warren_protocol::encode::method(buf, 0, &class)
}

/// Reads the next channel-0 method, as the handshake expects nothing else. Heartbeats are
/// skipped in a loop (never by recursion: a peer may send any number of them).
async fn expect_method(reader: &mut FrameReader) -> Result<connection::AMQPMethod, ReadError> {
    loop {
        return match reader.next_frame().await? {
            Frame::Method { channel: 0, method } => match method {
                AMQPClass::Connection(m) => Ok(m),
                other => Err(ReadError::Protocol(AmqpError::command_invalid(
                    format_args!(
                        "expected a connection method during the handshake, got {}",
                        class_name(&other)
                    ),
                ))),
            },
            Frame::Heartbeat { .. } => continue,
            _ => Err(ReadError::Protocol(AmqpError::unexpected_frame(
                "expected a connection method during the handshake",
            ))),
        };
    }
}

fn class_name(class: &AMQPClass) -> String {
    format!("{class:?}")
        .split('(')
        .next()
        .unwrap_or("?")
        .to_lowercase()
}

/// Who is connecting, for the broker's connection registry.
pub struct Peer {
    pub id: u64,
    pub addr: SocketAddr,
    /// The broker's end of the socket, when it is one.
    pub local: Option<SocketAddr>,
    pub control: Arc<dyn ConnectionControl>,
}

/// The SASL mechanisms connection.start offers: `auth_mechanisms`, in order, EXTERNAL (the TLS
/// client certificate's name) on TLS connections only, as RabbitMQ offers them. (RabbitMQ
/// 3.10 ignores the configured order: it lists them in its registry's ETS order, which is not
/// the same from one node to the next — "EXTERNAL PLAIN AMQPLAIN" on one, "PLAIN EXTERNAL
/// AMQPLAIN" on another — so clients cannot rely on any.)
fn offered_mechanisms(config: &Config, tls: Option<&TlsPeer>) -> Vec<&'static str> {
    config
        .auth_mechanisms
        .iter()
        .filter(|m| tls.is_some() || **m != AuthMechanism::External)
        .map(|m| m.name())
        .collect()
}

/// `tls`: what the TLS handshake learnt of the client (`None` on a plain connection).
pub async fn run(
    reader: &mut FrameReader,
    outbox: &Outbox,
    broker: &Broker,
    config: &Config,
    peer: Peer,
    tls: Option<&TlsPeer>,
) -> Result<Negotiated, ReadError> {
    let Peer {
        id,
        addr: peer,
        local,
        control,
    } = peer;
    let offered = offered_mechanisms(config, tls);
    outbox.push(method(AMQPClass::Connection(
        connection::AMQPMethod::Start(connection::Start {
            version_major: 0,
            version_minor: 9,
            server_properties: server_properties(config),
            mechanisms: LongString::from(offered.join(" ").into_bytes()),
            locales: LongString::from(b"en_US".to_vec()),
        }),
    )));

    let connection::AMQPMethod::StartOk(start_ok) = expect_method(reader).await? else {
        return Err(ReadError::Protocol(AmqpError::command_invalid(
            "expected connection.start-ok",
        )));
    };
    let mechanism = start_ok.mechanism.as_str();
    let failure_close = matches!(
        start_ok.client_properties.inner().get("capabilities"),
        Some(AMQPValue::FieldTable(caps))
            if matches!(caps.inner().get("authentication_failure_close"), Some(AMQPValue::Boolean(true)))
    );
    let authenticated = if !offered.contains(&mechanism) {
        Err(AuthError::UnknownMechanism(mechanism.into()))
    } else if let (Some(tls), "EXTERNAL") = (tls, mechanism) {
        tls.authenticate_external(&broker.auth, peer.ip())
    } else {
        broker
            .auth
            .authenticate(mechanism, start_ok.response.as_bytes(), peer.ip())
    };
    let user = match authenticated {
        Ok(user) => user,
        Err(e) => {
            tracing::warn!(%peer, "login refused: {e:?}");
            return Err(login_refused(mechanism, e, failure_close));
        }
    };
    let client_has = |capability: &str| {
        matches!(
            start_ok.client_properties.inner().get("capabilities"),
            Some(AMQPValue::FieldTable(caps)) if matches!(caps.inner().get(capability), Some(AMQPValue::Boolean(true)))
        )
    };
    let consumer_cancel_notify = client_has("consumer_cancel_notify");
    let connection_blocked = client_has("connection.blocked");

    outbox.push(method(AMQPClass::Connection(connection::AMQPMethod::Tune(
        connection::Tune {
            channel_max: config.channel_max,
            frame_max: config.frame_max,
            heartbeat: config.heartbeat,
        },
    ))));
    let connection::AMQPMethod::TuneOk(tune_ok) = expect_method(reader).await? else {
        return Err(ReadError::Protocol(AmqpError::command_invalid(
            "expected connection.tune-ok",
        )));
    };
    let channel_max = negotiate(
        tune_ok.channel_max as u32,
        config.channel_max as u32,
        "channel_max",
    )? as u16;
    let frame_max = negotiate(tune_ok.frame_max, config.frame_max, "frame_max")?;
    if frame_max < FRAME_MIN_SIZE {
        return Err(ReadError::Protocol(AmqpError::not_allowed(format_args!(
            "frame_max={frame_max} < {FRAME_MIN_SIZE} min size"
        ))));
    }
    reader.frame_max = frame_max;

    let connection::AMQPMethod::Open(open) = expect_method(reader).await? else {
        return Err(ReadError::Protocol(AmqpError::command_invalid(
            "expected connection.open",
        )));
    };
    let vhost_name = open.virtual_host.as_str();
    let refused = |e: AmqpError| ReadError::Protocol(e.on_method(method::CONNECTION_OPEN));
    let Some(vhost) = broker.vhost(vhost_name) else {
        return Err(refused(AmqpError::not_allowed(format_args!(
            "vhost {vhost_name} not found"
        ))));
    };
    let limits = ConnectionLimits {
        vhost_max_connections: vhost.limits().max_connections,
        user_max_connections: user.limits.max_connections,
    };
    let about = ConnectionAbout {
        peer,
        local,
        client_properties: start_ok.client_properties.clone(),
        auth_mechanism: mechanism.to_string(),
        channel_max,
        frame_max,
        heartbeat: tune_ok.heartbeat,
        tls: tls.is_some(),
        connected_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    let registration = broker
        .connections
        .register(id, &user.name, vhost_name, limits, about, control)
        .map_err(refused)?;
    broker
        .auth
        .check_vhost_access(&user.name, vhost_name)
        .map_err(refused)?;
    tracing::info!(%peer, "user '{}' authenticated and granted access to vhost '{vhost_name}'", user.name);
    outbox.push(method(AMQPClass::Connection(
        connection::AMQPMethod::OpenOk(connection::OpenOk {}),
    )));
    Ok(Negotiated {
        user,
        vhost,
        registration,
        channel_max,
        frame_max,
        heartbeat: tune_ok.heartbeat,
        consumer_cancel_notify,
        connection_blocked,
    })
}

/// RabbitMQ's refusal. A refused login (403) is closed with its own words for a client that
/// asked for `authentication_failure_close` (most do), the reason otherwise. A mechanism it does
/// not offer (or know) and a response it cannot parse are protocol errors before the
/// connection has started (503 COMMAND_INVALID "invalid authentication mechanism 'NAME'", 502
/// SYNTAX_ERROR): RabbitMQ sends no connection.close for those, and closes the socket after
/// 3 s.
fn login_refused(mechanism: &str, e: AuthError, failure_close: bool) -> ReadError {
    let reason = match e {
        AuthError::UnknownMechanism(m) => {
            return ReadError::SilentClose(AmqpError::command_invalid(format_args!(
                "invalid authentication mechanism '{m}'"
            )));
        }
        AuthError::Malformed => {
            return ReadError::SilentClose(AmqpError::syntax_error(format_args!(
                "{mechanism} response invalid"
            )));
        }
        AuthError::LoopbackOnly(u) => format!("user '{u}' can only connect via localhost"),
        AuthError::BadCredentials(u) => format!("user '{u}' - invalid credentials"),
    };
    let refused = if failure_close {
        AmqpError::access_refused(format_args!(
            "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
        ))
    } else {
        AmqpError::access_refused(format_args!("{mechanism} login refused: {reason}"))
    };
    ReadError::Protocol(refused.on_method(method::CONNECTION_START_OK))
}

/// The client's value wins if it is smaller and non-zero; larger than ours is refused (530).
fn negotiate(client: u32, server: u32, name: &str) -> Result<u32, ReadError> {
    // 0 means "no limit", which exceeds ours: RabbitMQ refuses it the same way.
    match client {
        0 if server == 0 => Ok(0),
        c if c != 0 && c <= server => Ok(c),
        c => Err(ReadError::Protocol(AmqpError::not_allowed(format_args!(
            "negotiated {name} = {c} is higher than the maximum allowed value ({server})"
        )))),
    }
}
