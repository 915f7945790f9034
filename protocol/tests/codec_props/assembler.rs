//! `ContentAssembler` against a model: arbitrary operation sequences and well-formed content.

use super::*;

// ---------------------------------------------------------------------------------------------
// ContentAssembler
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Start(u8),
    Header { class_id: u16, body_size: u64 },
    Body(Vec<u8>),
    CheckMethod,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<u8>().prop_map(Op::Start),
        2 => (prop_oneof![9 => Just(60u16), 1 => any::<u16>()], prop_oneof![0u64..16, any::<u64>()])
            .prop_map(|(class_id, body_size)| Op::Header { class_id, body_size }),
        4 => vec(any::<u8>(), 0..12).prop_map(Op::Body),
        1 => Just(Op::CheckMethod),
        1 => Just(Op::Reset),
    ]
}

/// Reference model of the assembler state.
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Idle,
    AwaitingHeader(u8),
    AwaitingBody { method: u8, size: u64, got: Vec<u8> },
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary start/header/body sequences never panic, only fail with 501/505, and behave
    /// like a simple state-machine model.
    #[test]
    fn assembler_arbitrary_ops_match_model(ops in vec(op(), 0..40)) {
        let mut a: ContentAssembler<u8> = ContentAssembler::default();
        let mut m = Model::Idle;
        for op in ops {
            match op {
                Op::Start(x) => {
                    a.start(x);
                    m = Model::AwaitingHeader(x);
                }
                Op::Reset => {
                    a.reset();
                    m = Model::Idle;
                }
                Op::CheckMethod => {
                    let r = a.check_method_allowed();
                    match &m {
                        Model::Idle => prop_assert!(r.is_ok()),
                        _ => prop_assert_eq!(r.unwrap_err().code, 505),
                    }
                }
                Op::Header { class_id, body_size } => {
                    let r = a.header(class_id, body_size, Properties::default());
                    match m.clone() {
                        // RabbitMQ: "expected content header for class 60, got one for
                        // class N instead", an unexpected frame.
                        Model::AwaitingHeader(_) if class_id != 60 => {
                            prop_assert_eq!(r.unwrap_err().code, 505);
                            m = Model::Idle;
                        }
                        Model::AwaitingHeader(method) if body_size == 0 => {
                            let c = r.unwrap().unwrap();
                            prop_assert_eq!(c.method, method);
                            prop_assert!(c.body.is_empty());
                            m = Model::Idle;
                        }
                        Model::AwaitingHeader(method) => {
                            prop_assert!(r.unwrap().is_none());
                            m = Model::AwaitingBody { method, size: body_size, got: vec![] };
                        }
                        Model::Idle | Model::AwaitingBody { .. } => prop_assert_eq!(r.unwrap_err().code, 505),
                    }
                }
                Op::Body(chunk) => {
                    let r = a.body(Bytes::from(chunk.clone()));
                    match &mut m {
                        Model::AwaitingBody { method, size, got } => {
                            if (got.len() + chunk.len()) as u64 > *size {
                                prop_assert_eq!(r.unwrap_err().code, 501);
                                // State after an oversize body is not specified by the model:
                                // the connection closes. Stop here.
                                return Ok(());
                            }
                            got.extend_from_slice(&chunk);
                            if got.len() as u64 == *size {
                                let c = r.unwrap().unwrap();
                                prop_assert_eq!(c.method, *method);
                                prop_assert_eq!(&c.body[..], &got[..]);
                                m = Model::Idle;
                            } else {
                                prop_assert!(r.unwrap().is_none());
                            }
                        }
                        Model::Idle | Model::AwaitingHeader(_) => prop_assert_eq!(r.unwrap_err().code, 505),
                    }
                }
            }
            prop_assert_eq!(a.is_idle(), m == Model::Idle);
        }
    }

    /// A well-formed start/header/body… sequence, body split anywhere (empty chunks included),
    /// reproduces method, properties and body exactly; a single-frame body is not copied.
    #[test]
    fn assembler_well_formed_reproduces_body(
        method in any::<u32>(),
        properties in properties(),
        body in vec(any::<u8>(), 0..3000),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let raw = Bytes::from(encode::properties(&properties));
        let mut a: ContentAssembler<u32> = ContentAssembler::default();
        prop_assert!(a.check_method_allowed().is_ok());
        a.start(method);
        let r = a.header(60, body.len() as u64, Properties::parse(raw.clone()).unwrap()).unwrap();
        let done = if body.is_empty() {
            r.expect("empty body completes at the header")
        } else {
            prop_assert!(r.is_none());
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
            points.push(0);
            points.push(body.len());
            points.sort_unstable();
            let body = Bytes::from(body.clone());
            let mut pieces: Vec<Bytes> = points.windows(2).map(|w| body.slice(w[0]..w[1])).collect();
            // Empty frames after the last byte would be frames past the end of the content.
            while pieces.last().is_some_and(|p| p.is_empty()) {
                pieces.pop();
            }
            let mut done = None;
            for (i, p) in pieces.iter().enumerate() {
                prop_assert!(done.is_none(), "completed early");
                let r = a.body(p.clone()).unwrap();
                if i + 1 == pieces.len() {
                    done = r;
                } else {
                    prop_assert!(r.is_none());
                }
            }
            let done = done.expect("complete after the last chunk");
            if pieces.iter().filter(|p| !p.is_empty()).count() == 1 {
                prop_assert_eq!(done.body.as_ptr(), pieces.last().unwrap().as_ptr(), "single-frame body copied");
            }
            done
        };
        prop_assert_eq!(done.method, method);
        prop_assert_eq!(&done.properties.to_basic(), &properties);
        prop_assert_eq!(done.properties.raw(), &raw);
        prop_assert_eq!(&done.body[..], &body[..]);
        prop_assert!(a.is_idle());
    }
}
