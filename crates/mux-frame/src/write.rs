//! Writing a frame to an async writer without copying its value.

use std::io;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::frame::Frame;

/// Writes `frame` (header, then value) to `w`.
///
/// The value is never copied: the header and value are handed to the writer
/// as two slices, in one vectored write when the writer supports it. No
/// length limit beyond `u32::MAX` is applied here; the reading side enforces
/// its own. The writer is not flushed, so callers can batch frames.
///
/// # Errors
/// `InvalidData` if the value is longer than `u32::MAX` bytes, `WriteZero`
/// if the writer stops accepting bytes, or any error of the writer.
///
/// # Example
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use mux_frame::{write_frame, Frame};
/// use tokio::io::AsyncReadExt;
///
/// let (mut tx, mut rx) = tokio::io::duplex(64);
/// write_frame(&mut tx, Frame::new(7, "hi")).await?;
/// let mut wire = [0u8; 7];
/// rx.read_exact(&mut wire).await?;
/// assert_eq!(&wire, b"\x07\x00\x00\x00\x02hi");
/// # Ok(())
/// # }
/// ```
pub async fn write_frame<W>(w: &mut W, frame: Frame) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut buf = frame.try_into_buf()?;
    w.write_all_buf(&mut buf).await
}
