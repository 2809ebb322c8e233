//! The raw transport, no muxer: every stream is its own connection (a new
//! duplex pipe, TCP connection or HTTP/2 exchange). This is the physical
//! limit each muxer is compared with.

use std::io;

use super::{Acceptor, Opener, Setup};
use crate::transport::{self, Dialer, Io, Listener};

/// Starts the raw contender: a dialer and its listener.
pub async fn start(setup: Setup) -> io::Result<(Dialer, Listener)> {
    transport::dialer(setup.transport).await
}

impl Opener for Dialer {
    type Stream = Io;

    async fn open(&self) -> io::Result<Io> {
        self.dial().await
    }
}

impl Acceptor for Listener {
    type Stream = Io;

    async fn accept(&mut self) -> io::Result<Io> {
        Listener::accept(self).await
    }
}
