//! Reading fuzzer bytes as numbers, shared by the `session` and `e2e`
//! checks. Input that runs out reads as zeros, so every input is valid.
// Each check uses its own subset of these readers.
#![allow(dead_code)]

use std::time::Duration;

/// The unread part of a fuzzer input.
pub(crate) struct Input<'a> {
    pub(crate) data: &'a [u8],
}

impl Input<'_> {
    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(*first)
    }

    /// A byte, or 0 once the input ran out.
    pub(crate) fn byte(&mut self) -> u8 {
        self.u8().unwrap_or(0)
    }

    pub(crate) fn u32(&mut self) -> u32 {
        let mut v = 0u32;
        for _ in 0..4 {
            v = (v << 8) | u32::from(self.byte());
        }
        v
    }

    pub(crate) fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A u32 that is usually small, sometimes extreme.
    pub(crate) fn amount(&mut self) -> u32 {
        match self.byte() {
            0xFF => u32::MAX,
            0xFE => 0x7FFF_FFFF,
            0xFD => self.u32(),
            b if b >= 0x80 => u32::from(b & 0x7F) << 8 | u32::from(self.byte()),
            b => u32::from(b),
        }
    }

    /// A virtual duration: 10 ms steps below 1 s, then seconds, then minutes.
    pub(crate) fn duration(&mut self) -> Duration {
        match self.byte() {
            b @ 0..=99 => Duration::from_millis(u64::from(b) * 10),
            b @ 100..=199 => Duration::from_secs(u64::from(b - 99)),
            b => Duration::from_secs(u64::from(b - 199) * 60),
        }
    }
}
