//! # mux-frame: a bounded, zero-copy TLV frame codec
//!
//! Each frame is a type byte ("kind"), a value length, and the value. The
//! codec gives no kind byte a meaning; the [`typed`] module layers binary and
//! text payloads on top.
//!
//! ## Wire layout
//! ```text
//! +--------+--------------------------+---------------------+
//! | kind   | len: u32, big-endian     | value: len bytes    |
//! | 1 byte | 4 bytes (value only)     |                     |
//! +--------+--------------------------+---------------------+
//!  <------ HEADER_LEN = 5 bytes ------>
//! ```
//! `kind 0x01, value "abc"` is `01 00 00 00 03 61 62 63`.
//!
//! ## Crate layout
//! - [`Header`]: the 5-byte header, [`HEADER_LEN`].
//! - [`Frame`] and [`FrameBuf`]: a frame and its wire bytes as a [`bytes::Buf`]
//!   whose header and value are separate slices for vectored writes.
//! - [`FrameCodec`]: a `tokio_util` codec bounded by a maximum value length
//!   ([`DEFAULT_MAX_VALUE_LEN`] unless set); decoded values are split off the
//!   read buffer, never copied, and oversized headers are rejected before any
//!   memory is reserved.
//! - [`write_frame`]: writes a frame to an `AsyncWrite` without copying the value.
//! - [`FrameError`]: errors, convertible to `std::io::Error`.
//! - [`typed`]: [`typed::Payload`] (binary or UTF-8 text) and its codec.
//!
//! ## Example
//! ```
//! use bytes::BytesMut;
//! use mux_frame::{Frame, FrameCodec};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut codec = FrameCodec::with_max_value_len(1024);
//! let mut wire = BytesMut::new();
//! codec.encode(Frame::new(0x01, "abc"), &mut wire)?;
//! assert_eq!(&wire[..], b"\x01\x00\x00\x00\x03abc");
//!
//! let frame = codec.decode(&mut wire)?;
//! assert_eq!(frame, Some(Frame::new(0x01, "abc")));
//!
//! // A header announcing more than the limit is refused outright.
//! let mut hostile = BytesMut::from(&b"\x01\xff\xff\xff\xff"[..]);
//! assert!(codec.decode(&mut hostile).is_err_and(|e| e.is_too_large()));
//! # Ok::<(), mux_frame::FrameError>(())
//! ```

#![forbid(unsafe_code)]

mod codec;
mod error;
mod frame;
mod header;
pub mod typed;
mod write;

pub use codec::{FrameCodec, DEFAULT_MAX_VALUE_LEN};
pub use error::FrameError;
pub use frame::{Frame, FrameBuf};
pub use header::{Header, HEADER_LEN};
pub use write::write_frame;
