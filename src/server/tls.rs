//! TLS (amqps) listeners: the rustls server configuration built from `[ssl_options]`, the TLS
//! handshake of each accepted socket (bounded by `handshake_timeout`), and what the client's
//! certificate says for SASL EXTERNAL: the user name, taken as RabbitMQ's
//! `rabbit_ssl:peer_cert_auth_name` takes it (`ssl_cert_login_from`).
//!
//! Client verification follows RabbitMQ's (Erlang's) `ssl_options`: `verify_none` asks for no
//! certificate; `verify_peer` asks for one and verifies it against `cacertfile`, and refuses a
//! client without one only with `fail_if_no_peer_cert = true`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier, danger::ClientCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use x509_parser::asn1_rs::{Any, Class, Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::auth::{Auth, AuthError, User};
use crate::config::{CertLoginFrom, Config, SslVerify};

/// What a TLS connection knows about its client, for the AMQP handshake.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    /// The user name SASL EXTERNAL logs in as, or why there is none (RabbitMQ's reason text).
    pub external_login: Result<String, &'static str>,
}

impl TlsPeer {
    /// SASL EXTERNAL: the certificate's name must be a user (no password is checked).
    pub fn authenticate_external(&self, auth: &Auth, peer: IpAddr) -> Result<Arc<User>, AuthError> {
        match &self.external_login {
            Ok(name) => auth.authenticate_external(name, peer),
            Err(reason) => {
                tracing::warn!(%peer, "EXTERNAL login refused: {reason}");
                Err(AuthError::BadCredentials(String::new()))
            }
        }
    }
}

/// One configuration shared by every TLS listener.
pub struct TlsListener {
    acceptor: TlsAcceptor,
    login_from: CertLoginFrom,
    verify_peer: bool,
}

impl TlsListener {
    /// The TLS configuration `config` asks for; a message naming the key and file at fault when
    /// a file is missing or unusable.
    pub fn from_config(config: &Config) -> Result<Arc<TlsListener>, String> {
        let opts = &config.ssl_options;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certfile = opts
            .certfile
            .as_deref()
            .ok_or("a TLS listener needs ssl_options.certfile (the server's certificate)")?;
        let keyfile = opts
            .keyfile
            .as_deref()
            .ok_or("a TLS listener needs ssl_options.keyfile (the server's private key)")?;
        let certs = read_certs("ssl_options.certfile", certfile)?;
        let key = read_key(keyfile)?;
        let roots = match &opts.cacertfile {
            Some(path) => Some(read_roots(path)?),
            None => None,
        };
        let verifier: Arc<dyn ClientCertVerifier> = match opts.verify {
            SslVerify::VerifyNone if opts.fail_if_no_peer_cert => {
                return Err(
                    "ssl_options.fail_if_no_peer_cert = true needs ssl_options.verify = \"verify_peer\""
                        .into(),
                );
            }
            SslVerify::VerifyNone => WebPkiClientVerifier::no_client_auth(),
            SslVerify::VerifyPeer => {
                let roots = roots.ok_or(
                    "ssl_options.verify = \"verify_peer\" needs ssl_options.cacertfile (the CA that signs client certificates)",
                )?;
                let builder =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let builder = if opts.fail_if_no_peer_cert {
                    builder
                } else {
                    builder.allow_unauthenticated()
                };
                builder
                    .build()
                    .map_err(|e| format!("ssl_options.cacertfile: {e}"))?
            }
        };
        let server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .map_err(|e| format!("TLS: {e}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| {
                format!(
                    "ssl_options.keyfile {} does not go with ssl_options.certfile {}: {e}",
                    keyfile.display(),
                    certfile.display()
                )
            })?;
        Ok(Arc::new(TlsListener {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            login_from: config.ssl_cert_login_from,
            verify_peer: opts.verify == SslVerify::VerifyPeer,
        }))
    }

    /// The TLS handshake on an accepted socket, within `timeout`. A failed or slow handshake
    /// (plain AMQP on this port, an unknown client certificate, …) is logged once and the
    /// socket dropped: `None`.
    pub async fn accept(
        &self,
        socket: TcpStream,
        peer: SocketAddr,
        timeout: Duration,
    ) -> Option<(TlsStream<TcpStream>, TlsPeer)> {
        let stream = match tokio::time::timeout(timeout, self.acceptor.accept(socket)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::info!(%peer, "TLS handshake failed: {e}");
                return None;
            }
            Err(_) => {
                tracing::info!(%peer, "TLS handshake timed out after {timeout:?}");
                return None;
            }
        };
        let (_, session) = stream.get_ref();
        let leaf = session.peer_certificates().and_then(|certs| certs.first());
        let external_login = match leaf {
            None => Err("connection peer presented no TLS (x.509) certificate"),
            // As RabbitMQ: a certificate nobody verified names nobody.
            Some(_) if !self.verify_peer => Err("TLS configuration is unsafe"),
            Some(cert) => login_name(cert, self.login_from),
        };
        tracing::debug!(%peer, version = ?session.protocol_version(), login = ?external_login, "TLS handshake done");
        Some((stream, TlsPeer { external_login }))
    }
}

fn read_file(key: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {key} {}: {e}", path.display()))
}

fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{key} {}: bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{key} {}: no certificate (no BEGIN CERTIFICATE block)",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_file("ssl_options.keyfile", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!(
            "ssl_options.keyfile {}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            path.display()
        )
    })
}

fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("ssl_options.cacertfile", path)? {
        roots
            .add(cert)
            .map_err(|e| format!("ssl_options.cacertfile {}: {e}", path.display()))?;
    }
    Ok(roots)
}

/// The user name a client certificate gives, as `rabbit_ssl:peer_cert_auth_name`.
pub fn login_name(cert: &[u8], from: CertLoginFrom) -> Result<String, &'static str> {
    let (_, cert) = X509Certificate::from_der(cert).map_err(|_| "no name found")?;
    subject_login(cert.subject(), from)
}

fn subject_login(subject: &X509Name, from: CertLoginFrom) -> Result<String, &'static str> {
    match from {
        CertLoginFrom::DistinguishedName => Ok(distinguished_name(subject)),
        CertLoginFrom::CommonName => {
            let cns: Vec<String> = subject
                .iter_rdn()
                .flat_map(|rdn| rdn.iter())
                .filter(|atv| atv.attr_type().to_id_string() == CN)
                .map(|atv| String::from_utf8_lossy(&value_bytes(CN, atv.attr_value())).into_owned())
                .collect();
            if cns.is_empty() {
                return Err("no name found");
            }
            // RabbitMQ joins several CNs with ","; for anything fancier it points to DN mode.
            Ok(cns.join(","))
        }
    }
}

/// The subject as `rabbit_cert_info:subject` formats it (RFC 4514-like): RDNs last to first,
/// joined by ","; a multi-valued RDN's parts joined by "+"; each `TYPE=value` with RabbitMQ's
/// short names (the dotted OID for other types) and its escaping.
pub fn distinguished_name(name: &X509Name) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let value = escape_value(&value_bytes(&oid, atv.attr_value()));
                    match short_name(&oid) {
                        Some(short) => format!("{short}={value}"),
                        None => format!("{oid}={value}"),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// commonName's OID.
const CN: &str = "2.5.4.3";

/// RabbitMQ's names for attribute types (`rabbit_cert_info:format_rdn`). streetAddress
/// (2.5.4.9) is not among them: RabbitMQ's "STREET" entry names an X.400 attribute that never
/// matches, so that one prints as its OID there as here.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.4" => "SN",
        "2.5.4.42" => "GIVENNAME",
        "2.5.4.43" => "INITIALS",
        "2.5.4.44" => "GENERATIONQUALIFIER",
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "TITLE",
        "2.5.4.6" => "C",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.65" => "PSEUDONYM",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "EMAILADDRESS",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// Attribute types Erlang's `public_key` decodes itself (`pubkey_cert_records`); the values of
/// any other type stay undecoded DER, which RabbitMQ decodes only as a DirectoryString.
fn decoded_by_erlang(oid: &str) -> bool {
    matches!(
        oid,
        "2.5.4.41" // name
            | "2.5.4.4"
            | "2.5.4.42"
            | "2.5.4.43"
            | "2.5.4.44"
            | "2.5.4.3"
            | "2.5.4.7"
            | "2.5.4.8"
            | "2.5.4.10"
            | "2.5.4.11"
            | "2.5.4.12"
            | "2.5.4.46" // dnQualifier
            | "2.5.4.6"
            | "2.5.4.5"
            | "2.5.4.65"
            | "0.9.2342.19200300.100.1.25"
            | "1.2.840.113549.1.9.1"
    )
}

/// An attribute value as UTF-8 bytes (`rabbit_cert_info:format_asn1_value`): string types
/// converted to UTF-8 (for types Erlang does not know, only the DirectoryString ones: UTF8,
/// Printable, Teletex, BMP, Universal), anything else as Erlang prints the undecoded DER binary
/// (`<<22,3,...>>`).
fn value_bytes(oid: &str, value: &Any) -> Vec<u8> {
    let data = value.data;
    if value.class() != Class::Universal {
        return erlang_binary(value);
    }
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString => data.to_vec(),
        Tag::Ia5String | Tag::VisibleString | Tag::NumericString if decoded_by_erlang(oid) => {
            data.to_vec()
        }
        // Taken as ISO-8859-1, as RabbitMQ does.
        Tag::TeletexString => data.iter().map(|&b| b as char).collect::<String>().into(),
        Tag::BmpString => {
            let units = data.chunks(2).map(|c| match c {
                [hi, lo] => u16::from_be_bytes([*hi, *lo]),
                _ => 0xFFFD,
            });
            char::decode_utf16(units)
                .map(|c| c.unwrap_or('\u{FFFD}'))
                .collect::<String>()
                .into()
        }
        Tag::UniversalString => data
            .chunks(4)
            .map(|c| match c {
                [a, b, c, d] => char::from_u32(u32::from_be_bytes([*a, *b, *c, *d])),
                _ => None,
            })
            .map(|c| c.unwrap_or('\u{FFFD}'))
            .collect::<String>()
            .into(),
        _ => erlang_binary(value),
    }
}

fn erlang_binary(value: &Any) -> Vec<u8> {
    let der = value.to_der_vec().unwrap_or_default();
    let bytes: Vec<String> = der.iter().map(u8::to_string).collect();
    format!("<<{}>>", bytes.join(",")).into_bytes()
}

/// RFC 4514 escaping as `rabbit_cert_info:escape_rdn_value` does it, on UTF-8 bytes: a leading
/// space or "#" and a trailing space get a backslash, so do `"+,;<>\`; bytes under 32 or from
/// 126 up become `\XX` (uppercase hex), so the result is ASCII.
fn escape_value(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        let first = i == 0;
        let last = i + 1 == bytes.len();
        match b {
            b' ' | b'#' if first => {
                out.push('\\');
                out.push(b as char);
            }
            b' ' if last => out.push_str("\\ "),
            b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            b if !(32..126).contains(&b) => out.push_str(&format!("\\{b:02X}")),
            b => out.push(b as char),
        }
    }
    out
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
