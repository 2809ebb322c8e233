//! End of stream in the middle of a frame is reported as `Truncated`.

use std::io;

use bytes::BytesMut;
use futures::StreamExt;
use mux_frame::{Frame, FrameCodec, FrameError};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Decoder, FramedRead};

#[test]
fn decode_eof_on_empty_buffer_is_none() {
    let mut buf = BytesMut::new();
    assert!(FrameCodec::new().decode_eof(&mut buf).unwrap().is_none());
}

#[test]
fn decode_eof_mid_header_is_truncated() {
    let mut buf = BytesMut::from(&[0x01, 0x00, 0x00][..]);
    let err = FrameCodec::new().decode_eof(&mut buf).unwrap_err();
    assert!(err.is_truncated() && !err.is_too_large());
    assert!(matches!(
        err,
        FrameError::Truncated {
            buffered: 3,
            expected: 5
        }
    ));
}

#[test]
fn decode_eof_mid_value_is_truncated_without_reserving() {
    let mut buf = BytesMut::with_capacity(7);
    buf.extend_from_slice(&[0x01, 0, 0, 0, 10, b'a', b'b']);
    let err = FrameCodec::new().decode_eof(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        FrameError::Truncated {
            buffered: 7,
            expected: 15
        }
    ));
    assert_eq!(buf.capacity(), 7);
}

#[test]
fn decode_eof_yields_complete_frames_before_the_error() {
    let mut buf = BytesMut::from(&b"\x05\x00\x00\x00\x01x\x06\x00"[..]);
    let mut codec = FrameCodec::new();
    assert_eq!(
        codec.decode_eof(&mut buf).unwrap(),
        Some(Frame::new(5, "x"))
    );
    assert!(matches!(
        codec.decode_eof(&mut buf),
        Err(FrameError::Truncated {
            buffered: 2,
            expected: 5
        })
    ));
}

#[tokio::test]
async fn framed_read_over_slice_reports_truncation() {
    let wire: &[u8] = b"\x01\x00\x00\x00\x03abc\x02\x00\x00\x00\x09four";
    let mut frames = FramedRead::new(wire, FrameCodec::new());
    assert_eq!(frames.next().await.unwrap().unwrap(), Frame::new(1, "abc"));
    let err = frames.next().await.unwrap().unwrap_err();
    assert!(matches!(
        err,
        FrameError::Truncated {
            buffered: 9,
            expected: 14
        }
    ));
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn framed_read_over_slice_ends_cleanly_on_frame_boundary() {
    let wire: &[u8] = b"\x01\x00\x00\x00\x01a\x02\x00\x00\x00\x00";
    let frames: Vec<_> = FramedRead::new(wire, FrameCodec::new()).collect().await;
    let frames: Vec<Frame> = frames.into_iter().map(Result::unwrap).collect();
    assert_eq!(frames, [Frame::new(1, "a"), Frame::new(2, "")]);
}

#[tokio::test]
async fn framed_read_over_duplex_closed_mid_frame() {
    let (mut tx, rx) = tokio::io::duplex(8);
    let writer = tokio::spawn(async move {
        tx.write_all(b"\x07\x00\x00\x00\x04full").await.unwrap();
        // Announce 100 bytes, send 3, then hang up.
        tx.write_all(b"\x07\x00\x00\x00\x64abc").await.unwrap();
    });
    let mut frames = FramedRead::new(rx, FrameCodec::new());
    assert_eq!(frames.next().await.unwrap().unwrap(), Frame::new(7, "full"));
    let err = frames.next().await.unwrap().unwrap_err();
    assert!(matches!(
        err,
        FrameError::Truncated {
            buffered: 8,
            expected: 105
        }
    ));
    writer.await.unwrap();
}
