//! Unit tests of the certificate → login name rules (RabbitMQ's `rabbit_cert_info` formatting),
//! on subjects built DER byte by byte (multi-valued RDNs, repeated CNs, every string type) and on
//! certificates rcgen makes.

use super::*;

/// DER tag bytes of the string types.
const UTF8: u8 = 0x0C;
const PRINTABLE: u8 = 0x13;
const TELETEX: u8 = 0x14;
const IA5: u8 = 0x16;
const BMP: u8 = 0x1E;
const UNIVERSAL: u8 = 0x1C;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 128 => out.push(n as u8),
        n if n < 256 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// The DER of an OID in dotted form.
fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut chunk = vec![(arc & 0x7F) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push((rest & 0x7F) as u8 | 0x80);
            rest >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    }
    tlv(0x06, &body)
}

/// One attribute: (OID, value tag, value bytes).
type Atv<'a> = (&'a str, u8, &'a [u8]);

/// A Name: RDNs in DER order, each a set of attributes.
fn name_der(rdns: &[&[Atv]]) -> Vec<u8> {
    let mut seq = Vec::new();
    for rdn in rdns {
        let mut set = Vec::new();
        for (id, tag, value) in rdn.iter() {
            let mut atv = oid(id);
            atv.extend(tlv(*tag, value));
            set.extend(tlv(0x30, &atv));
        }
        seq.extend(tlv(0x31, &set));
    }
    tlv(0x30, &seq)
}

fn dn(rdns: &[&[Atv]]) -> String {
    let der = name_der(rdns);
    let (_, name) = X509Name::from_der(&der).expect("a valid Name");
    distinguished_name(&name)
}

fn cn_login(rdns: &[&[Atv]]) -> Result<String, &'static str> {
    let der = name_der(rdns);
    let (_, name) = X509Name::from_der(&der).expect("a valid Name");
    subject_login(&name, CertLoginFrom::CommonName)
}

const O: &str = "2.5.4.10";
const C: &str = "2.5.4.6";

#[test]
fn dn_lists_rdns_last_first_with_rabbitmq_short_names() {
    // openssl -subj /C=SE/O=warren/CN=client: DER order C, O, CN.
    let name = dn(&[
        &[(C, PRINTABLE, b"SE")],
        &[(O, UTF8, b"warren")],
        &[(CN, UTF8, b"client")],
    ]);
    assert_eq!(name, "CN=client,O=warren,C=SE");
}

#[test]
fn dn_names_every_type_rabbitmq_knows_and_dotted_oids_for_others() {
    let all = [
        ("2.5.4.4", "SN"),
        ("2.5.4.42", "GIVENNAME"),
        ("2.5.4.43", "INITIALS"),
        ("2.5.4.44", "GENERATIONQUALIFIER"),
        ("2.5.4.7", "L"),
        ("2.5.4.8", "ST"),
        ("2.5.4.11", "OU"),
        ("2.5.4.12", "TITLE"),
        ("2.5.4.5", "SERIALNUMBER"),
        ("2.5.4.65", "PSEUDONYM"),
        ("0.9.2342.19200300.100.1.25", "DC"),
        ("1.2.840.113549.1.9.1", "EMAILADDRESS"),
        ("0.9.2342.19200300.100.1.1", "UID"),
        // streetAddress: RabbitMQ's STREET entry never matches it.
        ("2.5.4.9", "2.5.4.9"),
        ("1.3.6.1.4.1.99999.1", "1.3.6.1.4.1.99999.1"),
    ];
    for (id, short) in all {
        assert_eq!(dn(&[&[(id, UTF8, b"v")]]), format!("{short}=v"), "{id}");
    }
}

#[test]
fn multi_valued_rdn_parts_are_joined_with_plus() {
    let name = dn(&[&[(O, UTF8, b"org")], &[(CN, UTF8, b"a"), (CN, UTF8, b"b")]]);
    assert_eq!(name, "CN=a+CN=b,O=org");
}

#[test]
fn values_are_escaped_as_rabbitmq_does() {
    let cases: [(&[u8], &str); 10] = [
        (b"plain", "plain"),
        (b" lead", "\\ lead"),
        (b"#hash", "\\#hash"),
        (b"mid#dle and space", "mid#dle and space"),
        (b"trail ", "trail\\ "),
        (b" ", "\\ "),
        (b"a,b+c;d<e>f\"g\\h", "a\\,b\\+c\\;d\\<e\\>f\\\"g\\\\h"),
        (b"tab\there", "tab\\09here"),
        // From 126 up, bytes are hex-escaped: "~", DEL and UTF-8 sequences.
        (b"a~b\x7f", "a\\7Eb\\7F"),
        ("é".as_bytes(), "\\C3\\A9"),
    ];
    for (value, want) in cases {
        assert_eq!(
            dn(&[&[(CN, UTF8, value)]]),
            format!("CN={want}"),
            "{value:?}"
        );
    }
}

#[test]
fn string_types_become_utf8_before_escaping() {
    // "é" in each encoding RabbitMQ converts: Latin-1, UCS-2, UCS-4.
    assert_eq!(dn(&[&[(CN, TELETEX, &[0xE9])]]), "CN=\\C3\\A9");
    assert_eq!(dn(&[&[(CN, BMP, &[0x00, 0xE9])]]), "CN=\\C3\\A9");
    assert_eq!(dn(&[&[(CN, UNIVERSAL, &[0, 0, 0, 0xE9])]]), "CN=\\C3\\A9");
    assert_eq!(
        dn(&[&[("1.2.840.113549.1.9.1", IA5, b"a@b.c")]]),
        "EMAILADDRESS=a@b.c"
    );
}

#[test]
fn values_erlang_leaves_undecoded_print_as_erlang_binaries() {
    // An IA5String under a type Erlang does not know is no DirectoryString: RabbitMQ prints
    // the DER binary (<<22,3,"foo">>), escaped like any value.
    assert_eq!(
        dn(&[&[("1.3.6.1.4.1.99999.1", IA5, b"foo")]]),
        "1.3.6.1.4.1.99999.1=\\<\\<22\\,3\\,102\\,111\\,111\\>\\>"
    );
    // A DirectoryString under an unknown type is decoded.
    assert_eq!(
        dn(&[&[("1.3.6.1.4.1.99999.1", UTF8, b"foo")]]),
        "1.3.6.1.4.1.99999.1=foo"
    );
}

#[test]
fn common_name_login_joins_several_cns_with_commas_unescaped() {
    assert_eq!(
        cn_login(&[&[(O, UTF8, b"org")], &[(CN, UTF8, b"client")]]),
        Ok("client".into())
    );
    assert_eq!(
        cn_login(&[&[(CN, UTF8, b"a b")], &[(CN, UTF8, b"c,d")]]),
        Ok("a b,c,d".into())
    );
    assert_eq!(
        cn_login(&[&[(O, UTF8, b"org")]]),
        Err("no name found"),
        "a subject without CN names nobody"
    );
}

#[test]
fn login_name_reads_an_rcgen_certificate() {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "warren");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "client");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    assert_eq!(
        login_name(cert.der(), CertLoginFrom::DistinguishedName),
        Ok("CN=client,O=warren".into())
    );
    assert_eq!(
        login_name(cert.der(), CertLoginFrom::CommonName),
        Ok("client".into())
    );
    assert_eq!(
        login_name(b"not a certificate", CertLoginFrom::CommonName),
        Err("no name found")
    );
}
