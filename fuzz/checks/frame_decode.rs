//! Decoder invariants, shared by the `frame_decode` fuzz target and the
//! `fuzz_corpus_replay` test of `mux-frame`.
//!
//! Input: byte 0 picks the chunking (top 2 bits: mode; low 6 bits: largest
//! chunk minus one), byte 1 the value limit (`0xFF` = default), the rest is
//! the stream.

use bytes::{Buf, BytesMut};
use mux_frame::{FrameCodec, FrameError, Header, DEFAULT_MAX_VALUE_LEN, HEADER_LEN};
use tokio_util::codec::{Decoder, Encoder};

/// Runs the decoder over `data`, panicking if any invariant breaks.
pub(crate) fn check(data: &[u8]) {
    let [pattern, limit_sel, stream @ ..] = data else {
        return;
    };
    let limit = match limit_sel {
        0xFF => DEFAULT_MAX_VALUE_LEN,
        n => u32::from(*n),
    };
    let chunks = Chunks::new(*pattern, stream);
    // Everything buffered plus everything the decoder reserves fits in
    // `needed_max`: a partial frame (< limit + header) plus one chunk. The
    // allocation itself may be up to 4x that (Vec's 8-byte minimum, and
    // BytesMut doubling when it cannot reuse space in front of the data),
    // which is allocator policy, not the decoder; the decoder's own
    // reservations are checked exactly after each call below.
    let needed_max = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(HEADER_LEN)
        .saturating_add(chunks.max);
    let cap_bound = needed_max.max(8).saturating_mul(4);

    let mut codec = FrameCodec::with_max_value_len(limit);
    let mut buf = BytesMut::new();
    // Stream offset of the first byte not yet returned as a frame.
    let mut consumed = 0usize;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let (len_before, cap_before) = (buf.len(), buf.capacity());
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(buf.capacity() <= cap_before, "grew while splitting");
                    let mut wire = BytesMut::new();
                    if let Err(e) = codec.encode(frame.clone(), &mut wire) {
                        panic!("decoded frame does not re-encode: {e}");
                    }
                    let end = consumed.saturating_add(wire.len());
                    assert_eq!(stream.get(consumed..end), Some(wire.as_ref()));
                    let mut zero_copy = frame.into_buf();
                    assert_eq!(zero_copy.copy_to_bytes(zero_copy.remaining()), wire);
                    consumed = end;
                }
                Ok(None) => {
                    assert_eq!(buf.len(), len_before);
                    match frame_total(&buf) {
                        // Room for exactly the rest of the frame, and no
                        // reservation at all when there already was room.
                        Some(total) if cap_before >= total => {
                            assert_eq!(buf.capacity(), cap_before);
                        }
                        Some(total) => assert!(buf.capacity() >= total),
                        None => assert_eq!(buf.capacity(), cap_before),
                    }
                    break;
                }
                Err(FrameError::TooLarge { len, max }) => {
                    let header = Header::parse(&buf);
                    assert_eq!(header.map(|h| u64::from(h.len)), Some(len));
                    assert!(max == limit && len > u64::from(limit));
                    // Rejected before reserving or consuming anything.
                    assert_eq!((buf.len(), buf.capacity()), (len_before, cap_before));
                    return;
                }
                Err(e) => panic!("unexpected decode error: {e}"),
            }
        }
        assert!(
            buf.capacity() <= cap_bound,
            "capacity {} over bound {cap_bound}",
            buf.capacity()
        );
    }

    assert_eq!(consumed.saturating_add(buf.len()), stream.len());
    let buffered = buf.len();
    match codec.decode_eof(&mut buf) {
        Ok(None) => assert_eq!(buffered, 0),
        Err(FrameError::Truncated {
            buffered: b,
            expected,
        }) => {
            assert_eq!(b, buffered);
            let want = frame_total(&buf).unwrap_or(HEADER_LEN);
            assert!(expected == want && expected > buffered);
            if buffered >= HEADER_LEN {
                // `decode` reserved room for the whole frame.
                assert!(buf.capacity() >= expected);
            }
        }
        other => panic!("unexpected decode_eof result: {other:?}"),
    }
}

/// Header plus value length of the buffered frame, once its header is in.
fn frame_total(buf: &[u8]) -> Option<usize> {
    let header = Header::parse(buf)?;
    let len = usize::try_from(header.len).unwrap_or(usize::MAX);
    Some(len.saturating_add(HEADER_LEN))
}

/// Splits the stream into chunks of input-chosen sizes.
struct Chunks<'a> {
    rest: &'a [u8],
    mode: u8,
    /// Largest chunk this pattern yields.
    max: usize,
    rng: u32,
    toggle: bool,
}

impl<'a> Chunks<'a> {
    fn new(pattern: u8, stream: &'a [u8]) -> Self {
        let mode = pattern >> 6;
        let max = match mode {
            3 => stream.len(),
            _ => usize::from(pattern & 0x3F).saturating_add(1),
        };
        Self {
            rest: stream,
            mode,
            max,
            rng: u32::from(pattern).wrapping_add(0x9E37_79B9),
            toggle: false,
        }
    }

    fn next_size(&mut self) -> usize {
        match self.mode {
            // Pseudo-random sizes in 1..=max.
            1 => {
                self.rng = self.rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let r = usize::try_from(self.rng >> 16).unwrap_or(0);
                r.checked_rem(self.max).unwrap_or(0).saturating_add(1)
            }
            // Alternating single bytes and full chunks.
            2 => {
                self.toggle = !self.toggle;
                if self.toggle {
                    1
                } else {
                    self.max
                }
            }
            _ => self.max,
        }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let size = self.next_size().clamp(1, self.rest.len());
        let (chunk, rest) = self.rest.split_at(size);
        self.rest = rest;
        Some(chunk)
    }
}
