//! The fixed 5-byte frame header.

use bytes::BufMut;

/// Length of the encoded header: 1 kind byte plus a 4-byte big-endian length.
pub const HEADER_LEN: usize = 5;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// The frame type; the codec gives no byte a special meaning.
    pub kind: u8,
    /// Length of the value that follows, excluding the header.
    pub len: u32,
}

impl Header {
    /// Creates a header for a value of `len` bytes.
    pub const fn new(kind: u8, len: u32) -> Self {
        Self { kind, len }
    }

    /// The header's wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let [a, b, c, d] = self.len.to_be_bytes();
        [self.kind, a, b, c, d]
    }

    /// Appends the header's wire bytes to `dst`.
    ///
    /// # Panics
    /// As [`BufMut::put_slice`], if `dst` is a fixed-size buffer with fewer
    /// than [`HEADER_LEN`] bytes of room; growable buffers never panic.
    pub fn put(&self, dst: &mut impl BufMut) {
        dst.put_slice(&self.encode());
    }

    /// The whole frame's length on the wire, header included; `None` where
    /// that does not fit in `usize`.
    pub fn frame_len(&self) -> Option<usize> {
        usize::try_from(self.len).ok()?.checked_add(HEADER_LEN)
    }

    /// Parses the first [`HEADER_LEN`] bytes of `src`, ignoring the rest;
    /// `None` if `src` is shorter than that.
    pub fn parse(src: &[u8]) -> Option<Header> {
        let [kind, a, b, c, d] = *src.first_chunk::<HEADER_LEN>()?;
        Some(Header::new(kind, u32::from_be_bytes([a, b, c, d])))
    }
}
