//! Exact wire bytes for known frames.

use bytes::BytesMut;
use mux_frame::{Frame, FrameCodec, FrameError, Header, DEFAULT_MAX_VALUE_LEN, HEADER_LEN};
use tokio_util::codec::{Decoder, Encoder};

fn encode(codec: &mut FrameCodec, frame: Frame) -> Result<BytesMut, FrameError> {
    let mut wire = BytesMut::new();
    codec.encode(frame, &mut wire)?;
    Ok(wire)
}

#[test]
fn golden_abc() {
    let wire = encode(&mut FrameCodec::new(), Frame::new(0x01, "abc")).unwrap();
    assert_eq!(&wire[..], [0x01, 0x00, 0x00, 0x00, 0x03, 0x61, 0x62, 0x63]);
    assert_eq!(
        Header::new(0x01, 3).encode(),
        [0x01, 0x00, 0x00, 0x00, 0x03]
    );
}

#[test]
fn golden_empty_value() {
    let mut codec = FrameCodec::new();
    let mut wire = encode(&mut codec, Frame::new(0xAB, "")).unwrap();
    assert_eq!(&wire[..], [0xAB, 0, 0, 0, 0]);
    let frame = codec.decode(&mut wire).unwrap().unwrap();
    assert_eq!(frame, Frame::new(0xAB, ""));
    assert!(wire.is_empty());
}

#[test]
fn golden_value_at_default_limit() {
    assert_eq!(DEFAULT_MAX_VALUE_LEN, 1_048_576);
    let value = vec![0x5A; 1 << 20];
    let mut codec = FrameCodec::new();
    let mut wire = encode(&mut codec, Frame::new(0xFF, value.clone())).unwrap();
    assert_eq!(wire[..HEADER_LEN], [0xFF, 0x00, 0x10, 0x00, 0x00]);
    assert_eq!(wire.len(), HEADER_LEN + (1 << 20));
    let frame = codec.decode(&mut wire).unwrap().unwrap();
    assert_eq!(frame.value, value);
}

#[test]
fn golden_header_big_endian_length() {
    let header = Header::new(0x7F, 0x0102_0304);
    assert_eq!(header.encode(), [0x7F, 0x01, 0x02, 0x03, 0x04]);
    let mut out = Vec::new();
    header.put(&mut out);
    assert_eq!(out, header.encode());
}

#[test]
fn header_parse_reads_only_first_five_bytes() {
    let header = Header::parse(&[0x02, 0, 0, 1, 0, 0xEE, 0xEE]).unwrap();
    assert_eq!(header, Header::new(0x02, 256));
    assert_eq!(Header::parse(&header.encode()), Some(header));
}

#[test]
fn header_parse_short_input_is_none() {
    for len in 0..HEADER_LEN {
        assert_eq!(Header::parse(&[0xFF; 4][..len]), None);
    }
}

#[test]
fn frame_header_and_encoded_len() {
    let frame = Frame::new(9, vec![0u8; 300]);
    assert_eq!(frame.header().unwrap(), Header::new(9, 300));
    assert_eq!(frame.encoded_len(), 305);
}
