//! mux-yamux-lite on the yamux wire against the `yamux` crate 0.14: one
//! side of each over the two ends of one transport connection, started by
//! the same code as [`super::mux`] and [`super::yamux`] start their own
//! pairs. The rows show what each side costs when facing the incumbent,
//! and that they interoperate under load.

use std::io;

use super::mux::{self, MuxAcceptor, MuxOpener, Wire};
use super::yamux::{self, YamuxAcceptor, YamuxOpener};
use super::Setup;

/// Our client on the yamux wire, a `yamux` server.
pub async fn mux_to_yamux(setup: Setup) -> io::Result<(MuxOpener, YamuxAcceptor)> {
    setup
        .sides(|a| mux::client(a, &setup, Wire::Yamux), yamux::server)
        .await
}

/// A `yamux` client, our server on the yamux wire.
pub async fn yamux_to_mux(setup: Setup) -> io::Result<(YamuxOpener, MuxAcceptor)> {
    setup
        .sides(yamux::client, |b| mux::server(b, &setup, Wire::Yamux))
        .await
}
