//! A multi-frame input decodes identically however it is split into reads.

use bytes::BytesMut;
use mux_frame::{Frame, FrameCodec, FrameError};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

fn sample_frames() -> Vec<Frame> {
    vec![
        Frame::new(0x01, "abc"),
        Frame::new(0x00, ""),
        Frame::new(0xFF, vec![7u8; 300]),
        Frame::new(0x02, "z"),
    ]
}

fn encode_all(frames: &[Frame]) -> Result<Vec<u8>, FrameError> {
    let mut codec = FrameCodec::new();
    let mut wire = BytesMut::new();
    for frame in frames {
        codec.encode(frame.clone(), &mut wire)?;
    }
    Ok(wire.to_vec())
}

/// Feeds `chunks` one by one, draining every complete frame after each.
fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<Frame>, FrameError> {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(frame) = codec.decode(&mut buf)? {
            out.push(frame);
        }
    }
    assert!(codec.decode_eof(&mut buf)?.is_none());
    assert!(buf.is_empty());
    Ok(out)
}

/// Splits `wire` into consecutive chunks of the given sizes, cycling them.
fn split_by<'a>(wire: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut rest = wire;
    let mut out = Vec::new();
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}

#[test]
fn every_two_chunk_split_decodes_the_same() {
    let frames = sample_frames();
    let wire = encode_all(&frames).unwrap();
    for at in 0..=wire.len() {
        let (head, tail) = wire.split_at(at);
        assert_eq!(
            decode_chunks([head, tail]).unwrap(),
            frames,
            "split at {at}"
        );
    }
}

#[test]
fn one_byte_at_a_time_decodes_the_same() {
    let frames = sample_frames();
    let wire = encode_all(&frames).unwrap();
    assert_eq!(decode_chunks(wire.chunks(1)).unwrap(), frames);
}

proptest! {
    #[test]
    fn random_chunkings_decode_the_same(
        frames in prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..512))
                .prop_map(|(kind, value)| Frame::new(kind, value)),
            1..6,
        ),
        sizes in prop::collection::vec(1usize..64, 1..16),
    ) {
        let wire = encode_all(&frames).unwrap();
        prop_assert_eq!(decode_chunks(split_by(&wire, &sizes)).unwrap(), frames);
    }
}
