//! The per-message client methods decoded by hand: basic.publish, whose exchange and routing
//! key stay slices of the read buffer instead of the two `String`s amq-protocol would allocate,
//! and basic.ack / nack / reject, which amq-protocol's parser allocates for (two allocations
//! per ack, measured in `tests/alloc_counts.rs`).

use amq_protocol::protocol::{AMQPClass, basic};

use crate::reply::AmqpError;
use crate::short_str::ShortStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    pub mandatory: bool,
    pub immediate: bool,
}

fn cannot_decode() -> AmqpError {
    AmqpError::frame_error("cannot decode arguments of method 60.40").on(60, 40)
}

/// Decodes the arguments of basic.publish; `payload` starts with the class and method ids.
pub fn decode(payload: &[u8]) -> Result<Publish, AmqpError> {
    // class (2) + method (2) + reserved-1 short (2)
    let mut pos = 6;
    let short_str = |pos: &mut usize| -> Result<ShortStr, AmqpError> {
        let len = *payload.get(*pos).ok_or_else(cannot_decode)? as usize;
        let start = *pos + 1;
        let end = start + len;
        if end > payload.len() {
            return Err(cannot_decode());
        }
        *pos = end;
        ShortStr::from_slice(&payload[start..end]).ok_or_else(cannot_decode)
    };
    let exchange = short_str(&mut pos)?;
    let routing_key = short_str(&mut pos)?;
    let bits = *payload.get(pos).ok_or_else(cannot_decode)?;
    if pos + 1 != payload.len() {
        return Err(cannot_decode());
    }
    Ok(Publish {
        exchange,
        routing_key,
        mandatory: bits & 1 != 0,
        immediate: bits & 2 != 0,
    })
}

/// basic.ack (60.80), basic.reject (60.90) and basic.nack (60.120): delivery-tag then one octet
/// of bits. `None` for any other method or a payload of the wrong size, which then goes through
/// the general parser (and its error reporting).
pub fn decode_settlement(payload: &[u8], class_id: u16, method_id: u16) -> Option<AMQPClass> {
    if class_id != 60 || payload.len() != 13 {
        return None;
    }
    let tag = u64::from_be_bytes(payload[4..12].try_into().ok()?);
    let bits = payload[12];
    let (first, second) = (bits & 1 != 0, bits & 2 != 0);
    let method = match method_id {
        80 => basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: tag,
            multiple: first,
        }),
        90 => basic::AMQPMethod::Reject(basic::Reject {
            delivery_tag: tag,
            requeue: first,
        }),
        120 => basic::AMQPMethod::Nack(basic::Nack {
            delivery_tag: tag,
            multiple: first,
            requeue: second,
        }),
        _ => return None,
    };
    Some(AMQPClass::Basic(method))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;
    use amq_protocol::frame::AMQPFrame;
    use amq_protocol::frame::parsing::parse_frame;
    use bytes::BytesMut;

    #[test]
    fn hand_decoded_settlements_match_amq_protocol() {
        let methods = [
            basic::AMQPMethod::Ack(basic::Ack {
                delivery_tag: 7,
                multiple: true,
            }),
            basic::AMQPMethod::Reject(basic::Reject {
                delivery_tag: 8,
                requeue: true,
            }),
            basic::AMQPMethod::Nack(basic::Nack {
                delivery_tag: 9,
                multiple: false,
                requeue: true,
            }),
            basic::AMQPMethod::Nack(basic::Nack {
                delivery_tag: 10,
                multiple: true,
                requeue: false,
            }),
        ];
        for m in methods {
            let class = AMQPClass::Basic(m);
            let mut out = BytesMut::new();
            encode::method(&mut out, 1, &class);
            let payload = &out[7..out.len() - 1];
            let Ok((_, AMQPFrame::Method(_, parsed))) = parse_frame(&out[..]) else {
                panic!()
            };
            assert_eq!(
                decode_settlement(payload, 60, parsed.get_amqp_method_id()),
                Some(parsed)
            );
        }
    }

    #[test]
    fn publish_arguments_are_slices_and_bits_are_read() {
        let class = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "x".into(),
            routing_key: "a.b".into(),
            mandatory: true,
            immediate: false,
        }));
        let mut out = BytesMut::new();
        encode::method(&mut out, 1, &class);
        let payload = &out[7..out.len() - 1];
        let p = decode(payload).unwrap();
        assert_eq!(
            (
                p.exchange.as_str(),
                p.routing_key.as_str(),
                p.mandatory,
                p.immediate
            ),
            ("x", "a.b", true, false)
        );
        assert!(decode(&payload[..payload.len() - 1]).is_err());
    }
}
