//! Throwaway certificates made with rcgen at test time: a CA, a server certificate for
//! 127.0.0.1 and localhost, a client certificate the CA signed, and a "stranger" client
//! certificate from another CA; written as PEM files into a temp directory that lives as long
//! as the [`Pki`].

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::common::unique;

/// The client certificate's common name.
pub const CLIENT_CN: &str = "warren-client";
/// The client certificate's subject as RabbitMQ formats it (`ssl_cert_login_from =
/// distinguished_name`): the subject is O=warren then CN=warren-client, listed last first.
pub const CLIENT_DN: &str = "CN=warren-client,O=warren";

/// A certificate with its private key, as PEM.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Identity {
    pub fn cert_der(&self) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("our own certificate PEM")
    }

    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("our own key PEM")
    }
}

/// The CA, server and client certificates of one test, on disk.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    /// Signed by the CA.
    pub client: Identity,
    /// Signed by a CA the broker does not trust.
    pub stranger: Identity,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let pem = params.self_signed(&key).expect("CA certificate").pem();
    (params, key, pem)
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    names: &[&str],
    subject: &[(DnType, &str)],
    usage: ExtendedKeyUsagePurpose,
) -> Identity {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params.distinguished_name = DistinguishedName::new();
    for (kind, value) in subject {
        params.distinguished_name.push(kind.clone(), *value);
    }
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("leaf certificate");
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

impl Pki {
    pub fn new() -> Pki {
        let dir = std::env::temp_dir().join(unique("warren-tls"));
        std::fs::create_dir_all(&dir).expect("create the certificates' directory");
        let (ca_params, ca_key, ca_pem) = ca("warren test CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let server = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            &[(DnType::CommonName, "localhost")],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client_subject = [
            (DnType::OrganizationName, "warren"),
            (DnType::CommonName, CLIENT_CN),
        ];
        let client = leaf(
            &issuer,
            &[],
            &client_subject,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (other_params, other_key, _) = ca("some other CA");
        let stranger = leaf(
            &Issuer::new(other_params, other_key),
            &[],
            &client_subject,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let pki = Pki {
            dir,
            ca_pem,
            client,
            stranger,
        };
        pki.write("ca_certificate.pem", &pki.ca_pem);
        pki.write("server_certificate.pem", &server.cert_pem);
        pki.write("server_key.pem", &server.key_pem);
        pki
    }

    fn write(&self, name: &str, pem: &str) {
        std::fs::write(self.dir.join(name), pem).expect("write a PEM file");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.path("ca_certificate.pem")
    }

    pub fn ca_der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("our own CA PEM")
    }

    /// `[ssl_options]` with the server's files and the CA, plus `extra` lines.
    pub fn ssl_options(&self, extra: &str) -> String {
        format!(
            "[ssl_options]\ncacertfile = {}\ncertfile = {}\nkeyfile = {}\n{extra}\n",
            toml_path(&self.ca_file()),
            toml_path(&self.path("server_certificate.pem")),
            toml_path(&self.path("server_key.pem")),
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A path as a TOML string.
pub fn toml_path(path: &Path) -> String {
    format!("{:?}", path.to_str().expect("utf-8 temp path"))
}
