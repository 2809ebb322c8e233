//! Payload-sized copies that stay fast on CPUs whose `rep movsb` stalls on
//! 4K aliasing.
//!
//! glibc copies more than about 2 KiB with `rep movsb` on CPUs that
//! advertise fast string moves. On AMD Zen parts that instruction runs
//! 15–20 times slower when the destination lies 1 to 63 bytes past the
//! source, modulo 4096 (glibc bug 30994; microsoft/STL#5658 reports the same
//! on Windows).
//!
//! A muxer meets that case all the time rather than by bad luck: every
//! payload sits behind a 5-byte frame header, so a payload's offset in one
//! buffer and in the next differ by a small multiple of 5. When the offsets
//! line up badly, these helpers copy in pieces below glibc's `rep movsb`
//! threshold, which take the vector loop instead and run at full speed;
//! otherwise they are one ordinary copy. This crate uses them for every
//! payload-sized copy.

use bytes::{BufMut, BytesMut};
use tokio::io::ReadBuf;

/// Pieces of this size are below glibc's smallest `rep movsb` threshold
/// (2112 bytes on CPUs with fast short moves).
const PIECE: usize = 2048;
/// Destination-minus-source distances (modulo the page) that stall.
const SLOW_DISTANCE: std::ops::Range<usize> = 1..64;

/// Whether one copy of `len` bytes from `src` to `dst` (addresses) would
/// take the slow path.
fn aliases(dst: usize, src: usize, len: usize) -> bool {
    len > PIECE && SLOW_DISTANCE.contains(&(dst.wrapping_sub(src) & 4095))
}

/// Hands `src` to `put` whole, or in pieces when its destination `at`
/// would alias it.
fn copy_to(at: usize, src: &[u8], mut put: impl FnMut(&[u8])) {
    if aliases(at, src.as_ptr() as usize, src.len()) {
        src.chunks(PIECE).for_each(put);
    } else {
        put(src);
    }
}

/// Appends `src` to `dst`.
#[inline]
pub(crate) fn extend(dst: &mut BytesMut, src: &[u8]) {
    // Small copies (most frames of a chatty stream) skip the check.
    if src.len() <= PIECE {
        dst.extend_from_slice(src);
        return;
    }
    dst.reserve(src.len());
    let at = (dst.as_ptr() as usize).wrapping_add(dst.len());
    copy_to(at, src, |piece| dst.put_slice(piece));
}

/// Appends `src` to the filled part of `dst`, which must have room.
#[inline]
pub(crate) fn put(dst: &mut ReadBuf<'_>, src: &[u8]) {
    if src.len() <= PIECE {
        dst.put_slice(src);
        return;
    }
    let filled = dst.filled();
    let at = (filled.as_ptr() as usize).wrapping_add(filled.len());
    copy_to(at, src, |piece| dst.put_slice(piece));
}

/// Copies `src` into `dst`, which must be as long.
#[inline]
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) {
    if aliases(dst.as_ptr() as usize, src.as_ptr() as usize, src.len()) {
        for (d, s) in dst.chunks_mut(PIECE).zip(src.chunks(PIECE)) {
            d.copy_from_slice(s);
        }
    } else {
        dst.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// The prefix length that puts the next byte of a buffer starting at
    /// `base` `distance` bytes past `src`, modulo the page.
    fn prefix_for(base: usize, src: usize, distance: usize) -> usize {
        src.wrapping_add(distance).wrapping_sub(base) & 4095
    }

    #[test]
    fn aliasing_and_plain_copies_both_copy_every_byte() {
        let data = pattern(3 * PIECE + 17);
        let src = data.as_ptr() as usize;
        for distance in [0usize, 1, 5, 31, 63, 64, 100, 4095] {
            let mut backing = vec![0u8; 2 * 4096 + data.len()];
            let at = prefix_for(backing.as_ptr() as usize, src, distance);
            assert_eq!(
                aliases(backing.as_ptr() as usize + at, src, data.len()),
                SLOW_DISTANCE.contains(&distance)
            );
            let dst = backing.get_mut(at..at + data.len()).unwrap_or_default();
            copy(dst, &data);
            assert_eq!(dst, data.as_slice());

            let mut rb = ReadBuf::new(&mut backing);
            rb.put_slice(&vec![9u8; at]);
            put(&mut rb, &data);
            assert_eq!(rb.filled().get(at..), Some(data.as_slice()));

            let mut out = BytesMut::with_capacity(2 * 4096 + data.len());
            let at = prefix_for(out.as_ptr() as usize, src, distance);
            out.put_bytes(9, at);
            extend(&mut out, &data);
            assert_eq!(out.get(at..), Some(data.as_slice()));
        }
    }

    #[test]
    fn only_short_forward_distances_count_as_aliasing() {
        assert!(aliases(0x1005, 0x1000, 64 * 1024));
        assert!(aliases(0x2003, 0x1000, 64 * 1024), "modulo the page");
        assert!(!aliases(0x1000, 0x1000, 64 * 1024), "same offset is fast");
        assert!(!aliases(0x1000, 0x1005, 64 * 1024), "backward is fast");
        assert!(!aliases(0x1040, 0x1000, 64 * 1024));
        assert!(!aliases(0x1005, 0x1000, PIECE), "short copies never use it");
    }
}
