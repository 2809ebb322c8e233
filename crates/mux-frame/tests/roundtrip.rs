//! Encode/decode round trips and the zero-copy `FrameBuf` wire form.

use std::io::IoSlice;

use bytes::{Buf, BytesMut};
use mux_frame::{Frame, FrameCodec, FrameError, HEADER_LEN};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

fn frame_strategy() -> impl Strategy<Value = Frame> {
    (any::<u8>(), prop::collection::vec(any::<u8>(), 0..4096))
        .prop_map(|(kind, value)| Frame::new(kind, value))
}

fn encoded(frame: &Frame) -> Result<BytesMut, FrameError> {
    let mut wire = BytesMut::new();
    FrameCodec::new().encode(frame.clone(), &mut wire)?;
    Ok(wire)
}

proptest! {
    #[test]
    fn roundtrip_back_to_back_frames(frames in prop::collection::vec(frame_strategy(), 0..8)) {
        let mut codec = FrameCodec::new();
        let mut wire = BytesMut::new();
        for frame in &frames {
            codec.encode(frame.clone(), &mut wire).unwrap();
        }
        let expected_len: usize = frames.iter().map(Frame::encoded_len).sum();
        prop_assert_eq!(wire.len(), expected_len);

        let mut decoded = Vec::new();
        while let Some(frame) = codec.decode(&mut wire).unwrap() {
            decoded.push(frame);
        }
        prop_assert!(wire.is_empty());
        prop_assert!(codec.decode_eof(&mut wire).unwrap().is_none());
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn into_buf_bytes_equal_encoder_bytes(frame in frame_strategy()) {
        let wire = encoded(&frame).unwrap();
        let mut buf = frame.clone().into_buf();
        prop_assert_eq!(buf.remaining(), frame.encoded_len());
        prop_assert_eq!(buf.copy_to_bytes(frame.encoded_len()), wire);
        prop_assert!(!buf.has_remaining());
    }
}

#[test]
fn into_buf_vectored_is_header_then_original_value() {
    let frame = Frame::new(0x42, vec![9u8; 1000]);
    let buf = frame.clone().into_buf();
    let mut slices = [IoSlice::new(&[]); 4];
    assert_eq!(buf.chunks_vectored(&mut slices), 2);
    assert_eq!(&*slices[0], frame.header().unwrap().encode());
    // Same memory as the frame's value: nothing was copied.
    assert_eq!(slices[1].as_ptr(), frame.value.as_ptr());
    assert_eq!(slices[1].len(), 1000);

    let mut one = [IoSlice::new(&[])];
    assert_eq!(buf.chunks_vectored(&mut one), 1);
    assert_eq!(one[0].len(), HEADER_LEN);
    assert_eq!(buf.chunks_vectored(&mut []), 0);
}

#[test]
fn into_buf_empty_value_is_one_slice() {
    let buf = Frame::new(1, "").into_buf();
    let mut slices = [IoSlice::new(&[]); 2];
    assert_eq!(buf.chunks_vectored(&mut slices), 1);
    assert_eq!(&*slices[0], [1, 0, 0, 0, 0]);
}

#[test]
fn frame_buf_advance_at_every_offset() {
    let frame = Frame::new(3, "value");
    let wire = encoded(&frame).unwrap();
    for at in 0..=wire.len() {
        let mut buf = frame.clone().into_buf();
        buf.advance(at);
        assert_eq!(buf.remaining(), wire.len() - at, "at {at}");
        let mut slices = [IoSlice::new(&[]); 2];
        let n = buf.chunks_vectored(&mut slices);
        let joined: Vec<u8> = slices[..n].iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(joined, wire[at..], "at {at}");
        assert_eq!(buf.copy_to_bytes(buf.remaining()), wire[at..], "at {at}");
    }
}

#[test]
fn frame_buf_over_advance_stops_at_end() {
    let mut buf = Frame::new(3, "abc").into_buf();
    buf.advance(100);
    assert_eq!(buf.remaining(), 0);
    assert!(buf.chunk().is_empty());
    buf.advance(1);
    assert_eq!(buf.remaining(), 0);
}

#[test]
fn try_into_buf_accepts_representable_values() {
    let mut buf = Frame::new(8, "ok").try_into_buf().unwrap();
    assert_eq!(buf.copy_to_bytes(7), &b"\x08\x00\x00\x00\x02ok"[..]);
}
