//! Placeholder; being written.
#![allow(missing_docs)]
use tokio::io::{AsyncRead, AsyncWrite};
pub struct RwConn<R, W> { r: R, w: W }
impl<R: AsyncRead, W: AsyncWrite> RwConn<R, W> { pub fn new(r: R, w: W) -> Self { Self { r, w } } }
