//! futures-io adapters (feature `futures-io`), for async-std and libp2p users.
//!
//! Every stream and [`RwConn`](crate::RwConn) is tokio I/O; wrapping it with
//! [`into_futures_io`] gives `futures::io::{AsyncRead, AsyncWrite}` through
//! tokio-util's compat layer, with no extra copy.

pub use tokio_util::compat::{
    Compat, FuturesAsyncReadCompatExt, FuturesAsyncWriteCompatExt, TokioAsyncReadCompatExt,
    TokioAsyncWriteCompatExt,
};

/// Wraps tokio I/O (a stream, an `RwConn`) as futures-io.
pub fn into_futures_io<T>(io: T) -> Compat<T>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    io.compat()
}
