//! Unit tests of headers-exchange matching and x-match validation (RabbitMQ semantics).

use super::*;
use AMQPValue as V;

fn s(v: &str) -> V {
    V::LongString(v.as_bytes().to_vec().into())
}

fn dec(scale: u8, value: u32) -> V {
    V::DecimalValue(DecimalValue { scale, value })
}

fn table(entries: &[(&str, V)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

fn xm(kind: &str) -> (&'static str, V) {
    ("x-match", s(kind))
}

/// Does a lone binding with `args` route a message with `headers`?
fn hit(args: &[(&str, V)], headers: Option<&[(&str, V)]>) -> bool {
    let mut b = HeadersBindings::new();
    b.bind(&table(args), 1u32);
    let mut out = Vec::new();
    b.route(headers.map(table).as_ref(), &mut out);
    out == vec![1]
}

/// Does binding `k = a` match header `k = b` (x-match all)?
fn same(a: V, b: V) -> bool {
    hit(&[("k", a)], Some(&[("k", b)]))
}

#[test]
fn all_any_and_their_with_x_variants() {
    let (one, two) = (("a", s("1")), ("b", s("2")));
    let full = [one.clone(), two.clone(), ("c", s("3"))];
    for all in [
        vec![],
        vec![xm("all")],
        vec![xm("all-with-x")],
        vec![xm("bogus")],
    ] {
        let args = [all, vec![one.clone(), two.clone()]].concat();
        assert!(hit(&args, Some(&full)));
        assert!(!hit(&args, Some(std::slice::from_ref(&one))));
        assert!(!hit(&args, Some(&[one.clone(), ("b", s("x"))])));
        assert!(!hit(&args, None));
    }
    for any in [xm("any"), xm("any-with-x")] {
        let args = [any, one.clone(), two.clone()];
        assert!(hit(&args, Some(std::slice::from_ref(&two))));
        assert!(hit(&args, Some(&[one.clone(), ("b", s("x"))])));
        assert!(!hit(&args, Some(&[("a", s("2")), ("b", s("1"))])));
        assert!(!hit(&args, Some(&[])) && !hit(&args, None));
    }
}

#[test]
fn bindings_without_keys_all_matches_everything_any_nothing() {
    for headers in [None, Some(&[][..]), Some(&[("a", s("1"))][..])] {
        assert!(
            hit(&[], headers)
                && hit(&[xm("all")], headers)
                && hit(&[xm("all"), ("x-foo", s("1"))], headers)
        );
        assert!(hit(&[xm("all-with-x")], headers));
        assert!(!hit(&[xm("any")], headers) && !hit(&[xm("any"), ("x-foo", s("1"))], headers));
        assert!(!hit(&[xm("any-with-x")], headers));
    }
}

#[test]
fn x_keys_ignored_unless_with_x_and_x_match_never_compared() {
    let h = [("x-foo", s("1")), ("a", s("1"))];
    assert!(hit(&[("x-foo", s("2")), ("a", s("1"))], Some(&h)));
    assert!(!hit(&[xm("any"), ("x-foo", s("1"))], Some(&h)));
    assert!(hit(&[xm("any-with-x"), ("x-foo", s("1"))], Some(&h)));
    assert!(!hit(
        &[xm("all-with-x"), ("x-foo", s("2")), ("a", s("1"))],
        Some(&h)
    ));
    assert!(hit(
        &[xm("all-with-x"), ("x-foo", s("1")), ("a", s("1"))],
        Some(&h)
    ));
    assert!(hit(&[xm("all-with-x"), ("a", s("1"))], Some(&h)));
    assert!(hit(
        &[xm("any-with-x"), ("a", s("1"))],
        Some(&[("a", s("1")), xm("all")])
    ));
    // Only the exact prefix "x-" counts.
    assert!(!hit(&[("xfoo", s("1"))], Some(&[])) && !hit(&[("X-foo", s("1"))], Some(&[])));
}

#[test]
fn void_binding_value_means_present() {
    for present in [s("anything"), V::Void, V::Boolean(false), V::LongInt(0)] {
        assert!(same(V::Void, present));
    }
    assert!(!hit(&[("a", V::Void)], Some(&[("b", s("1"))])));
    assert!(hit(
        &[xm("any"), ("a", V::Void), ("b", s("1"))],
        Some(&[("a", V::LongInt(0))])
    ));
    assert!(
        !same(s(""), V::Void),
        "a void header only equals a void binding value"
    );
}

#[test]
fn numbers_compare_by_value_across_types() {
    let ones = [
        V::ShortShortInt(1),
        V::ShortShortUInt(1),
        V::ShortInt(1),
        V::ShortUInt(1),
        V::LongInt(1),
        V::LongUInt(1),
        V::LongLongInt(1),
        V::Timestamp(1),
        V::Float(1.0),
        V::Double(1.0),
    ];
    for a in &ones {
        for b in &ones {
            assert!(same(a.clone(), b.clone()), "{a:?} vs {b:?}");
        }
        for b in [
            V::LongInt(2),
            s("1"),
            V::Boolean(true),
            dec(0, 1),
            V::Double(1.5),
        ] {
            assert!(!same(a.clone(), b.clone()), "{a:?} vs {b:?}");
        }
    }
    assert!(
        same(V::LongInt(-1), V::ShortShortInt(-1)) && !same(V::LongUInt(u32::MAX), V::LongInt(-1))
    );
    assert!(same(V::Double(0.0), V::Double(-0.0)) && same(V::Float(0.5), V::Double(0.5)));
    assert!(
        !same(V::Float(0.1), V::Double(0.1)),
        "f32 0.1 widened is not the double 0.1"
    );
    let big = 1i64 << 60; // exact int/float comparison beyond 2^53
    assert!(
        same(V::LongLongInt(big), V::Double(big as f64))
            && !same(V::LongLongInt(big + 1), V::Double(big as f64))
    );
    assert!(
        same(V::Timestamp(u64::MAX), V::Timestamp(u64::MAX))
            && !same(V::Timestamp(u64::MAX), V::LongLongInt(-1))
    );
    assert!(!same(V::Double(f64::NAN), V::Double(f64::NAN)));
}

#[test]
fn strings_bools_decimals_arrays_tables() {
    let strs = [
        s("abc"),
        V::ByteArray(b"abc".to_vec().into()),
        V::ShortString("abc".into()),
    ];
    for x in &strs {
        for y in &strs {
            assert!(same(x.clone(), y.clone()));
        }
    }
    assert!(!same(s("abc"), s("ABC")) && same(V::Boolean(true), V::Boolean(true)));
    assert!(!same(V::Boolean(true), V::Boolean(false)) && !same(V::Boolean(true), V::LongInt(1)));
    assert!(same(dec(2, 150), dec(2, 150)) && !same(dec(1, 15), dec(2, 150)));
    let arr = |v: Vec<V>| V::FieldArray(v.into());
    let tab = |e: &[(&str, V)]| V::FieldTable(table(e));
    assert!(same(
        arr(vec![V::LongInt(1), s("a")]),
        arr(vec![V::LongInt(1), s("a")])
    ));
    // Nested values are {Type, Value} tuples in Erlang: the types must agree.
    assert!(!same(
        arr(vec![V::LongInt(1)]),
        arr(vec![V::LongLongInt(1)])
    ));
    assert!(!same(
        arr(vec![s("a")]),
        arr(vec![V::ByteArray(b"a".to_vec().into())])
    ));
    assert!(!same(
        arr(vec![V::LongInt(1)]),
        arr(vec![V::LongInt(1), V::LongInt(1)])
    ));
    assert!(same(
        tab(&[("a", V::LongInt(1))]),
        tab(&[("a", V::LongInt(1))])
    ));
    assert!(!same(
        tab(&[("a", V::LongInt(1))]),
        tab(&[("a", V::ShortInt(1))])
    ));
    assert!(!same(
        tab(&[("a", V::LongInt(1))]),
        tab(&[("b", V::LongInt(1))])
    ));
    assert!(same(arr(vec![]), tab(&[])), "both are [] in Erlang");
    assert!(!same(arr(vec![s("a")]), tab(&[("a", s("a"))])) && !same(arr(vec![]), s("")));
}

#[test]
fn bind_unbind_identity_and_dedup() {
    let mut b = HeadersBindings::new();
    let a1 = table(&[("a", s("1"))]);
    let a1_any = table(&[xm("any"), ("a", s("1")), ("b", s("2"))]);
    assert!(b.is_empty());
    assert!(b.bind(&a1, "q1") && !b.bind(&a1, "q1") && b.bind(&a1_any, "q1") && b.bind(&a1, "q2"));
    assert_eq!(b.len(), 3);
    let mut out = vec!["q1"];
    b.route(Some(&table(&[("a", s("1")), ("b", s("2"))])), &mut out);
    out.sort_unstable();
    assert_eq!(
        out,
        vec!["q1", "q1", "q2"],
        "appends; q1 matches twice but is pushed once"
    );
    // Identity is type-exact: 1 as signedint is not 1 as long.
    let (int, long) = (
        table(&[("n", V::LongInt(1))]),
        table(&[("n", V::LongLongInt(1))]),
    );
    assert!(
        b.bind(&int, "q3")
            && b.bind(&long, "q3")
            && b.unbind(&long, &"q3")
            && !b.unbind(&long, &"q3")
    );
    assert!(b.unbind(&int, &"q3"));
    let nan = table(&[("f", V::Double(f64::NAN))]);
    assert!(b.bind(&nan, "q4") && !b.bind(&nan, "q4") && b.unbind(&nan, &"q4"));
    assert!(!b.unbind(&a1, &"q9") && !b.unbind(&table(&[("a", s("2"))]), &"q1"));
    assert!(
        b.unbind(&a1, &"q1") && b.unbind(&a1_any, &"q1") && b.unbind(&a1, &"q2") && b.is_empty()
    );
    out.clear();
    b.route(None, &mut out);
    assert!(out.is_empty());
}

#[test]
fn validation_messages_match_rabbitmq() {
    assert_eq!(validate_binding_arguments(&FieldTable::default()), Ok(()));
    for ok in ["all", "any", "all-with-x", "any-with-x"] {
        assert_eq!(
            validate_binding_arguments(&table(&[xm(ok), ("a", s("1"))])),
            Ok(())
        );
    }
    let value = |shown: &str| {
        format!("Invalid x-match field value {shown}; expected all, any, all-with-x, or any-with-x")
    };
    let typed = |t: &str, shown: &str| {
        format!("Invalid x-match field type {t} (value {shown}); expected longstr")
    };
    let cases = [
        (s("foo"), value("<<\"foo\">>")),
        (s("ALL"), value("<<\"ALL\">>")),
        (s(""), value("<<>>")),
        (s("a\"b\\c\n"), value("<<\"a\\\"b\\\\c\\n\">>")),
        (s("héllo"), value("<<\"héllo\"/utf8>>")),
        (V::LongString(vec![0u8, 255].into()), value("<<0,255>>")),
        (V::LongInt(5), typed("signedint", "5")),
        (V::ShortInt(-5), typed("short", "-5")),
        (V::Boolean(true), typed("bool", "true")),
        (V::Void, typed("void", "undefined")),
        (V::Timestamp(7), typed("timestamp", "7")),
        (
            V::ByteArray(b"all".to_vec().into()),
            typed("binary", "<<\"all\">>"),
        ),
        (dec(2, 150), typed("decimal", "{2,150}")),
        (
            V::FieldArray(vec![V::LongLongInt(1), s("a")].into()),
            typed("array", "[{long,1},{longstr,<<\"a\">>}]"),
        ),
        (
            V::FieldTable(table(&[("k", V::Boolean(false))])),
            typed("table", "[{<<\"k\">>,bool,false}]"),
        ),
        (V::Double(1.5), typed("double", "1.5")),
    ];
    for (x_match, want) in cases {
        assert_eq!(
            validate_binding_arguments(&table(&[("x-match", x_match)])),
            Err(want)
        );
    }
}

#[test]
fn erlang_float_printing() {
    let cases = [
        (1.0, "1.0"),
        (-1.0, "-1.0"),
        (0.5, "0.5"),
        (1.5, "1.5"),
        (100.0, "100.0"),
        (1000.0, "1.0e3"),
        (1200.0, "1.2e3"),
        (123456.0, "123456.0"),
        (0.001, "0.001"),
        (0.0001, "1.0e-4"),
        (0.1, "0.1"),
        (0.0, "0.0"),
        (1e100, "1.0e100"),
        (9007199254740992.0, "9.007199254740992e15"),
        (
            f64::from(f32::from_bits(0x3dcc_cccd)),
            "0.10000000149011612",
        ),
    ];
    for (f, want) in cases {
        assert_eq!(erl_float(f), want, "{f}");
    }
}
