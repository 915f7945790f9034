//! Connection-level behaviour: protocol header, handshake, authentication,
//! tuning, heartbeats, limits and closing.

mod closing;
mod frame_max;
mod handshake;
mod tuning;
