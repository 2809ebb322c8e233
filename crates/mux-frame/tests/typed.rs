//! The typed-payload layer on top of the generic codec.

use std::io;

use bytes::{Bytes, BytesMut};
use mux_frame::typed::{Payload, PayloadCodec, PayloadError, KIND_BINARY, KIND_TEXT};
use mux_frame::{Frame, FrameError};
use tokio_util::codec::{Decoder, Encoder};

#[test]
fn payloads_round_trip_through_the_codec() {
    let payloads = vec![
        Payload::Binary(Bytes::from_static(&[0, 159, 146, 150])),
        Payload::Text("héllo ✓".to_owned()),
        Payload::Text(String::new()),
    ];
    let mut codec = PayloadCodec::new();
    let mut wire = BytesMut::new();
    for payload in &payloads {
        codec.encode(payload.clone(), &mut wire).unwrap();
    }
    assert_eq!(wire[0], KIND_BINARY);
    assert_eq!(wire[9], KIND_TEXT);
    let mut decoded = Vec::new();
    while let Some(payload) = codec.decode(&mut wire).unwrap() {
        decoded.push(payload);
    }
    assert_eq!(decoded, payloads);
}

#[test]
fn payload_frame_conversions() {
    let frame = Payload::Text("hi".to_owned()).into_frame();
    assert_eq!(frame, Frame::new(KIND_TEXT, "hi"));
    assert_eq!(
        Payload::try_from(frame).unwrap(),
        Payload::Text("hi".to_owned())
    );
    assert_eq!(Payload::Binary(Bytes::new()).kind(), KIND_BINARY);
}

#[test]
fn unknown_kind_is_a_typed_error() {
    let err = Payload::try_from_frame(Frame::new(3, "x")).unwrap_err();
    assert!(matches!(err, PayloadError::UnknownKind { kind: 3 }));

    let mut wire = BytesMut::from(&b"\x09\x00\x00\x00\x00"[..]);
    let err = PayloadCodec::new().decode(&mut wire).unwrap_err();
    assert!(matches!(err, PayloadError::UnknownKind { kind: 9 }));
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidData);
}

#[test]
fn invalid_utf8_text_is_a_typed_error() {
    let err = Payload::try_from_frame(Frame::new(KIND_TEXT, vec![b'o', b'k', 0xFF])).unwrap_err();
    let PayloadError::InvalidUtf8(cause) = err else {
        panic!("expected InvalidUtf8, got {err:?}");
    };
    assert_eq!(cause.valid_up_to(), 2);
}

#[test]
fn payload_codec_enforces_its_own_limit() {
    let mut codec = PayloadCodec::with_max_len(4);
    assert_eq!(codec.max_len(), 4);
    let mut wire = BytesMut::new();
    let err = codec
        .encode(Payload::Text("12345".to_owned()), &mut wire)
        .unwrap_err();
    assert!(matches!(
        err,
        PayloadError::Frame(FrameError::TooLarge { len: 5, max: 4 })
    ));

    let mut wire = BytesMut::from(&b"\x01\x00\x00\x00\x05"[..]);
    let err = codec.decode(&mut wire).unwrap_err();
    assert!(matches!(
        err,
        PayloadError::Frame(FrameError::TooLarge { len: 5, max: 4 })
    ));
}

#[test]
fn payload_codec_reports_truncation_at_eof() {
    let mut wire = BytesMut::from(&b"\x02\x00\x00\x00\x05ab"[..]);
    let err = PayloadCodec::new().decode_eof(&mut wire).unwrap_err();
    assert!(matches!(
        err,
        PayloadError::Frame(FrameError::Truncated {
            buffered: 7,
            expected: 10
        })
    ));
}
