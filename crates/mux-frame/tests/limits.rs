//! The value-length limit: oversized headers are refused before any buffer
//! growth, and the encoder enforces the same limit.

use std::io;

use bytes::BytesMut;
use mux_frame::{Frame, FrameCodec, FrameError, HEADER_LEN};
use tokio_util::codec::{Decoder, Encoder};

/// Decodes `wire` and returns the error, asserting nothing was reserved or consumed.
fn reject(codec: &mut FrameCodec, wire: &[u8]) -> FrameError {
    let mut buf = BytesMut::with_capacity(16);
    buf.extend_from_slice(wire);
    let (len, cap) = (buf.len(), buf.capacity());
    let err = match codec.decode(&mut buf) {
        Err(err) => err,
        Ok(decoded) => panic!("expected an error, got {decoded:?}"),
    };
    assert_eq!(buf.capacity(), cap, "capacity grew on a rejected header");
    assert_eq!(buf.len(), len);
    err
}

#[test]
fn header_announcing_u32_max_is_too_large() {
    let err = reject(&mut FrameCodec::new(), &[0x01, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert!(err.is_too_large() && !err.is_truncated());
    assert!(matches!(
        err,
        FrameError::TooLarge {
            len: 0xFFFF_FFFF,
            max: 1_048_576
        }
    ));
}

#[test]
fn header_announcing_limit_plus_one_is_too_large() {
    let mut codec = FrameCodec::with_max_value_len(100);
    let err = reject(&mut codec, &[0x03, 0, 0, 0, 101, b'x', b'y']);
    assert!(matches!(err, FrameError::TooLarge { len: 101, max: 100 }));
    // Still refused the next time: the codec keeps no half-parsed state.
    let err = reject(&mut codec, &[0x03, 0, 0, 0, 101]);
    assert!(err.is_too_large());
}

#[test]
fn value_at_limit_is_accepted() {
    let mut codec = FrameCodec::with_max_value_len(3);
    let mut buf = BytesMut::from(&b"\x01\x00\x00\x00\x03abc"[..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::new(1, "abc")));
}

#[test]
fn zero_limit_allows_only_empty_values() {
    let mut codec = FrameCodec::with_max_value_len(0);
    assert_eq!(codec.max_value_len(), 0);
    let mut buf = BytesMut::from(&[7u8, 0, 0, 0, 0][..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::new(7, "")));
    let err = reject(&mut codec, &[7, 0, 0, 0, 1]);
    assert!(matches!(err, FrameError::TooLarge { len: 1, max: 0 }));
}

#[test]
fn partial_frame_reserves_only_missing_bytes() {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::with_capacity(HEADER_LEN);
    buf.extend_from_slice(&[0x01, 0, 0, 0, 100]);
    assert_eq!(buf.capacity(), HEADER_LEN);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    // Room for the whole frame; reserving the full frame length on top of
    // what is buffered would have given at least 110.
    assert!(
        (105..110).contains(&buf.capacity()),
        "capacity {}",
        buf.capacity()
    );
    // Once room exists, another partial decode does not grow it again.
    buf.extend_from_slice(&[0; 50]);
    let cap = buf.capacity();
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert_eq!(buf.capacity(), cap);
}

#[test]
fn encoder_rejects_value_over_limit() {
    let mut codec = FrameCodec::with_max_value_len(4);
    let mut dst = BytesMut::new();
    let err = codec.encode(Frame::new(1, "12345"), &mut dst).unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { len: 5, max: 4 }));
    assert!(dst.is_empty(), "nothing written for a rejected frame");
    codec.encode(Frame::new(1, "1234"), &mut dst).unwrap();
    assert_eq!(dst.len(), HEADER_LEN + 4);
}

#[test]
fn default_codec_uses_default_limit() {
    assert_eq!(FrameCodec::default().max_value_len(), 1 << 20);
    assert_eq!(FrameCodec::new().max_value_len(), 1 << 20);
}

#[test]
fn errors_map_to_io_kinds() {
    let too_large: io::Error = FrameError::TooLarge { len: 2, max: 1 }.into();
    assert_eq!(too_large.kind(), io::ErrorKind::InvalidData);
    let truncated: io::Error = FrameError::Truncated {
        buffered: 1,
        expected: 5,
    }
    .into();
    assert_eq!(truncated.kind(), io::ErrorKind::UnexpectedEof);
    let original = io::Error::new(io::ErrorKind::BrokenPipe, "gone");
    let back: io::Error = FrameError::from(original).into();
    assert_eq!(back.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(back.to_string(), "gone");
}
