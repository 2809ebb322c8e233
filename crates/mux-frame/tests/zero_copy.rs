//! Decoded values share the read buffer's memory instead of being copied.

use bytes::BytesMut;
use futures::StreamExt;
use mux_frame::{Frame, FrameCodec, HEADER_LEN};
use tokio_util::codec::{Decoder, Encoder, FramedRead};

fn frames() -> Vec<Frame> {
    vec![
        Frame::new(1, "first"),
        Frame::new(2, vec![0xAAu8; 1000]),
        Frame::new(3, "third"),
    ]
}

#[test]
fn decoded_values_point_into_the_read_buffer() {
    let frames = frames();
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    for frame in &frames {
        codec.encode(frame.clone(), &mut buf).unwrap();
    }
    let start = buf.as_ptr().addr();
    let end = start + buf.len();

    let mut offset = 0;
    for expected in &frames {
        let frame = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&frame, expected);
        let addr = frame.value.as_ptr().addr();
        assert_eq!(
            addr,
            start + offset + HEADER_LEN,
            "value not split in place"
        );
        assert!(addr + frame.value.len() <= end);
        offset += frame.encoded_len();
    }
}

#[tokio::test]
async fn framed_read_values_share_one_read_allocation() {
    let mut codec = FrameCodec::new();
    let mut wire = BytesMut::new();
    for frame in frames() {
        codec.encode(frame, &mut wire).unwrap();
    }
    // One read delivers all three frames into one buffer, so their values
    // must sit back to back, a header apart.
    let read: Vec<Frame> = FramedRead::new(&wire[..], FrameCodec::new())
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(read, frames());
    for pair in read.windows(2) {
        let end_of_first = pair[0].value.as_ptr().addr() + pair[0].value.len();
        assert_eq!(pair[1].value.as_ptr().addr(), end_of_first + HEADER_LEN);
    }
}

#[test]
fn split_frame_takes_whole_frames_and_never_reserves() {
    let codec = FrameCodec::new();
    let mut wire = BytesMut::new();
    FrameCodec::new()
        .encode(Frame::new(7, vec![1u8; 100]), &mut wire)
        .unwrap();
    let mut buf = BytesMut::with_capacity(60);
    buf.extend_from_slice(&wire[..60]);
    assert_eq!(codec.split_frame(&mut buf).unwrap(), None);
    assert_eq!(buf.capacity(), 60, "a partial frame reserved memory");
    assert_eq!(buf.len(), 60);
    buf.extend_from_slice(&wire[60..]);
    let frame = codec.split_frame(&mut buf).unwrap().unwrap();
    assert_eq!(frame, Frame::new(7, vec![1u8; 100]));
    assert!(buf.is_empty());
    // Oversized headers are refused just as `decode` refuses them.
    let mut huge = BytesMut::from(&[1u8, 0xff, 0xff, 0xff, 0xff][..]);
    assert!(codec.split_frame(&mut huge).is_err());
}
