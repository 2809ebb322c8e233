//! Frames and their zero-copy wire form.

use std::io::IoSlice;

use bytes::{Buf, Bytes};

use crate::error::{len_u64, FrameError};
use crate::header::{Header, HEADER_LEN};

/// One frame: a kind byte and an opaque value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The frame type; any byte is valid.
    pub kind: u8,
    /// The value; decoded values share the read buffer's allocation.
    pub value: Bytes,
}

impl Frame {
    /// Creates a frame; `value` is converted, not copied, where `Bytes` allows.
    pub fn new(kind: u8, value: impl Into<Bytes>) -> Self {
        Self {
            kind,
            value: value.into(),
        }
    }

    /// The header announcing this frame.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] if the value is longer than `u32::MAX` bytes.
    pub fn header(&self) -> Result<Header, FrameError> {
        let len = u32::try_from(self.value.len()).map_err(|_| FrameError::TooLarge {
            len: len_u64(self.value.len()),
            max: u32::MAX,
        })?;
        Ok(Header::new(self.kind, len))
    }

    /// Bytes on the wire: [`HEADER_LEN`] plus the value length.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.value.len())
    }

    /// The frame's wire form as a [`Buf`], without copying the value.
    ///
    /// A value longer than `u32::MAX` bytes cannot be announced; rather than
    /// send a header that disagrees with the body (which would desynchronise
    /// the peer), the value is cut to `u32::MAX` bytes. Use
    /// [`Frame::try_into_buf`] to get an error instead.
    pub fn into_buf(self) -> FrameBuf {
        let len = u32::try_from(self.value.len()).unwrap_or(u32::MAX);
        let mut value = self.value;
        value.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        FrameBuf::new(Header::new(self.kind, len), value)
    }

    /// Like [`Frame::into_buf`], but refuses values the header cannot announce.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] if the value is longer than `u32::MAX` bytes.
    pub fn try_into_buf(self) -> Result<FrameBuf, FrameError> {
        let header = self.header()?;
        Ok(FrameBuf::new(header, self.value))
    }
}

/// A frame's wire bytes as a [`Buf`]: the header, then the value.
///
/// [`Buf::chunks_vectored`] yields the header and the value as separate
/// slices, so vectored writers send both in one call without copying.
#[derive(Debug, Clone)]
pub struct FrameBuf {
    header: [u8; HEADER_LEN],
    /// Header bytes already consumed.
    header_pos: usize,
    value: Bytes,
}

impl FrameBuf {
    fn new(header: Header, value: Bytes) -> Self {
        Self {
            header: header.encode(),
            header_pos: 0,
            value,
        }
    }

    fn header_rest(&self) -> &[u8] {
        self.header.get(self.header_pos..).unwrap_or_default()
    }
}

impl Buf for FrameBuf {
    fn remaining(&self) -> usize {
        self.header_rest().len().saturating_add(self.value.len())
    }

    fn chunk(&self) -> &[u8] {
        let header = self.header_rest();
        if header.is_empty() {
            &self.value
        } else {
            header
        }
    }

    /// Advancing past the end stops at the end instead of panicking.
    fn advance(&mut self, cnt: usize) {
        let from_header = cnt.min(self.header_rest().len());
        self.header_pos = self.header_pos.saturating_add(from_header);
        let from_value = cnt.saturating_sub(from_header).min(self.value.len());
        self.value.advance(from_value);
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let chunks = [self.header_rest(), self.value.as_ref()];
        dst.iter_mut()
            .zip(chunks.into_iter().filter(|c| !c.is_empty()))
            .map(|(slot, chunk)| *slot = IoSlice::new(chunk))
            .count()
    }
}
