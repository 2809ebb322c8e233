//! A small typed-payload layer: binary and UTF-8 text values.
//!
//! The core codec stays kind-agnostic; this module assigns meaning to two
//! kind bytes and validates text, with its own size guard via
//! [`PayloadCodec`].

use std::io;
use std::str::Utf8Error;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::codec::{FrameCodec, DEFAULT_MAX_VALUE_LEN};
use crate::error::FrameError;
use crate::frame::Frame;

/// Kind byte of [`Payload::Binary`].
pub const KIND_BINARY: u8 = 1;
/// Kind byte of [`Payload::Text`].
pub const KIND_TEXT: u8 = 2;

/// A frame value with a known type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Opaque bytes, kind [`KIND_BINARY`].
    Binary(Bytes),
    /// UTF-8 text, kind [`KIND_TEXT`].
    Text(String),
}

/// Why a frame is not a valid [`Payload`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The frame's kind is neither [`KIND_BINARY`] nor [`KIND_TEXT`].
    #[error("unknown payload kind {kind:#04x}")]
    UnknownKind {
        /// The unrecognised kind byte.
        kind: u8,
    },
    /// A text frame's value is not UTF-8.
    #[error("text payload is not valid UTF-8")]
    InvalidUtf8(#[source] Utf8Error),
    /// The frame layer failed (size limit, truncation, I/O).
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl From<io::Error> for PayloadError {
    fn from(err: io::Error) -> Self {
        Self::Frame(FrameError::Io(err))
    }
}

/// Content errors become `InvalidData`; frame errors map as [`FrameError`] does.
impl From<PayloadError> for io::Error {
    fn from(err: PayloadError) -> Self {
        match err {
            PayloadError::Frame(e) => e.into(),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

impl Payload {
    /// The kind byte this payload is sent with.
    pub fn kind(&self) -> u8 {
        match self {
            Self::Binary(_) => KIND_BINARY,
            Self::Text(_) => KIND_TEXT,
        }
    }

    /// The frame carrying this payload; the bytes are moved, not copied.
    pub fn into_frame(self) -> Frame {
        let kind = self.kind();
        match self {
            Self::Binary(b) => Frame::new(kind, b),
            Self::Text(s) => Frame::new(kind, s),
        }
    }

    /// Interprets a frame by its kind byte.
    ///
    /// # Errors
    /// [`PayloadError::UnknownKind`] for other kinds and
    /// [`PayloadError::InvalidUtf8`] for text that is not UTF-8.
    pub fn try_from_frame(frame: Frame) -> Result<Payload, PayloadError> {
        match frame.kind {
            KIND_BINARY => Ok(Self::Binary(frame.value)),
            KIND_TEXT => {
                // `String` needs its own allocation unless the value is the
                // sole owner of a whole buffer; decoded values usually share
                // the read buffer, so this typically copies once.
                String::from_utf8(Vec::from(frame.value))
                    .map(Self::Text)
                    .map_err(|e| PayloadError::InvalidUtf8(e.utf8_error()))
            }
            kind => Err(PayloadError::UnknownKind { kind }),
        }
    }
}

impl From<Payload> for Frame {
    fn from(payload: Payload) -> Self {
        payload.into_frame()
    }
}

impl TryFrom<Frame> for Payload {
    type Error = PayloadError;

    fn try_from(frame: Frame) -> Result<Self, PayloadError> {
        Self::try_from_frame(frame)
    }
}

/// A codec for [`Payload`]s, with its own value-size limit.
#[derive(Debug, Clone, Default)]
pub struct PayloadCodec {
    frames: FrameCodec,
}

impl PayloadCodec {
    /// A codec limited to [`DEFAULT_MAX_VALUE_LEN`].
    pub fn new() -> Self {
        Self::with_max_len(DEFAULT_MAX_VALUE_LEN)
    }

    /// A codec limited to payloads of at most `max` bytes.
    pub fn with_max_len(max: u32) -> Self {
        Self {
            frames: FrameCodec::with_max_value_len(max),
        }
    }

    /// The largest payload this codec decodes or encodes, in bytes.
    pub fn max_len(&self) -> u32 {
        self.frames.max_value_len()
    }
}

impl Decoder for PayloadCodec {
    type Item = Payload;
    type Error = PayloadError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Payload>, PayloadError> {
        self.frames
            .decode(src)?
            .map(Payload::try_from_frame)
            .transpose()
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Payload>, PayloadError> {
        self.frames
            .decode_eof(src)?
            .map(Payload::try_from_frame)
            .transpose()
    }
}

impl Encoder<Payload> for PayloadCodec {
    type Error = PayloadError;

    fn encode(&mut self, payload: Payload, dst: &mut BytesMut) -> Result<(), PayloadError> {
        Ok(self.frames.encode(payload.into_frame(), dst)?)
    }
}
