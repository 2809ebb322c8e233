//! The codec's error type and its `io::Error` mapping.

use std::io;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A value is longer than the codec's limit (or than a `u32` can announce).
    #[error("frame value of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced (decoding) or attempted (encoding) value length.
        len: u64,
        /// The limit that was exceeded.
        max: u32,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended mid-frame: {buffered} of {expected} bytes buffered")]
    Truncated {
        /// Bytes of the incomplete frame that were buffered at EOF.
        buffered: usize,
        /// Bytes the frame needed: header plus value, or just the header
        /// length when the header itself was incomplete.
        expected: usize,
    },
    /// The underlying reader or writer failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl FrameError {
    /// Whether this is [`FrameError::TooLarge`].
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge { .. })
    }

    /// Whether this is [`FrameError::Truncated`].
    pub fn is_truncated(&self) -> bool {
        matches!(self, Self::Truncated { .. })
    }
}

/// `TooLarge` becomes `InvalidData`, `Truncated` becomes `UnexpectedEof`, and
/// `Io` is unwrapped so callers see the original error.
impl From<FrameError> for io::Error {
    fn from(err: FrameError) -> Self {
        match err {
            FrameError::Io(e) => e,
            FrameError::TooLarge { .. } => io::Error::new(io::ErrorKind::InvalidData, err),
            FrameError::Truncated { .. } => io::Error::new(io::ErrorKind::UnexpectedEof, err),
        }
    }
}

/// Widens a length for error reports; saturating keeps it total on any target.
pub(crate) fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}
