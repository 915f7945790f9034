//! TLS listeners (`listen_tls`, `[ssl_options]`) and SASL EXTERNAL: every test starts its own
//! warren with a plain and a TLS listener and throwaway certificates made with rcgen, whatever
//! `WARREN_TEST_AMQP_URL` says (the reference RabbitMQ runs without TLS; the py-amqp interop
//! suite checks TLS against both brokers).
//!
//! - [`pki`]: the CA, server and client certificates.
//! - [`broker`]: the warren process, and starts that must fail.
//! - [`client`]: rustls clients, a small frame-level AMQP client over any stream, lapin over
//!   amqps.
//! - [`listener`]: AMQP over TLS 1.2 and 1.3, client verification, what the TLS port does with
//!   plain AMQP and the plain port with TLS, the handshake timeout, invalid setups, the default
//!   amqps port 5671 without `listen_tls` (skipped when 5671 is taken).
//! - [`external`]: SASL EXTERNAL with client certificates.

mod broker;
mod client;
mod external;
mod listener;
mod pki;
