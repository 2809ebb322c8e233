//! The bounded `tokio_util` codec.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{len_u64, FrameError};
use crate::frame::Frame;
use crate::header::{Header, HEADER_LEN};

/// Default value-length limit: 1 MiB, large enough for bulk data frames
/// while bounding what a single hostile header can make the reader buffer.
pub const DEFAULT_MAX_VALUE_LEN: u32 = 1 << 20;

/// A [`Decoder`] and [`Encoder`] for frames whose value is at most
/// [`FrameCodec::max_value_len`] bytes.
///
/// Decoded values are split off the read buffer without copying, and an
/// oversized header is rejected before any memory is reserved for it.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_value_len: u32,
}

/// How far [`FrameCodec::step`] got with the buffered bytes.
enum Progress {
    Frame(Frame),
    NeedHeader,
    /// The header is valid; the frame needs `total` bytes including it.
    NeedValue {
        total: usize,
    },
}

impl FrameCodec {
    /// A codec limited to [`DEFAULT_MAX_VALUE_LEN`].
    pub fn new() -> Self {
        Self::with_max_value_len(DEFAULT_MAX_VALUE_LEN)
    }

    /// A codec limited to values of at most `max` bytes.
    pub fn with_max_value_len(max: u32) -> Self {
        Self { max_value_len: max }
    }

    /// The largest value this codec decodes or encodes.
    pub fn max_value_len(&self) -> u32 {
        self.max_value_len
    }

    fn too_large(&self, len: u64) -> FrameError {
        FrameError::TooLarge {
            len,
            max: self.max_value_len,
        }
    }

    /// Splits one whole frame off the front of `src`, like
    /// [`Decoder::decode`], but never reserves capacity in `src`: for
    /// readers that manage the buffer's memory themselves, such as one that
    /// recycles fixed-size blocks. `Ok(None)` means more bytes are needed.
    pub fn split_frame(&self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.step(src)? {
            Progress::Frame(frame) => Ok(Some(frame)),
            Progress::NeedHeader | Progress::NeedValue { .. } => Ok(None),
        }
    }

    fn step(&self, src: &mut BytesMut) -> Result<Progress, FrameError> {
        let Some(header) = Header::parse(src) else {
            return Ok(Progress::NeedHeader);
        };
        if header.len > self.max_value_len {
            return Err(self.too_large(header.len.into()));
        }
        // Only fails where usize is narrower than the limit allows.
        let total = header
            .frame_len()
            .ok_or_else(|| self.too_large(header.len.into()))?;
        if src.len() < total {
            return Ok(Progress::NeedValue { total });
        }
        let mut value = src.split_to(total);
        value.advance(HEADER_LEN);
        Ok(Progress::Frame(Frame {
            kind: header.kind,
            value: value.freeze(),
        }))
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.step(src)? {
            Progress::Frame(frame) => Ok(Some(frame)),
            Progress::NeedHeader => Ok(None),
            Progress::NeedValue { total } => {
                // Exactly the missing bytes: the limit check above already
                // bounds this, so a peer cannot make us hold more than one frame.
                src.reserve(total.saturating_sub(src.len()));
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        // Not `decode`: reserving for a frame that can no longer arrive is waste.
        let expected = match self.step(src)? {
            Progress::Frame(frame) => return Ok(Some(frame)),
            Progress::NeedHeader if src.is_empty() => return Ok(None),
            Progress::NeedHeader => HEADER_LEN,
            Progress::NeedValue { total } => total,
        };
        Err(FrameError::Truncated {
            buffered: src.len(),
            expected,
        })
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let len = len_u64(frame.value.len());
        if len > u64::from(self.max_value_len) {
            return Err(self.too_large(len));
        }
        let header = frame.header()?;
        dst.reserve(frame.encoded_len());
        header.put(dst);
        dst.extend_from_slice(&frame.value);
        Ok(())
    }
}
