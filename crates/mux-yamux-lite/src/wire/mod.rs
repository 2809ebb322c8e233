//! Byte layouts for [`Frame`](crate::frame::Frame)s.
//!
//! The session is written against semantic frames only; this module is the
//! one place that knows bytes. [`lite`] is the native layout: mux-frame TLV
//! frames. A yamux 1.0 layout can sit beside it without touching the session.

pub mod lite;

/// Why bytes from the peer are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A TLV type byte this protocol does not define.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// A value whose length does not fit its kind.
    #[error("frame kind {kind:#04x} with a {len}-byte value (expected {expected})")]
    BadLength {
        /// The TLV type byte.
        kind: u8,
        /// The value's length.
        len: usize,
        /// What the kind requires, in words.
        expected: &'static str,
    },
    /// Flag bits this protocol does not define.
    #[error("unknown flag bits {0:#04x}")]
    UnknownFlags(u8),
}

/// Reads a big-endian `u32` at `at`, or `None` past the end.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let raw: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(u32::from_be_bytes(raw))
}
