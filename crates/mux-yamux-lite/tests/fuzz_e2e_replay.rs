//! Replays the `e2e` fuzz corpus through the fuzz target's checks on stable
//! Rust, so corpus regressions fail `cargo test`. `write_e2e_seeds`
//! (ignored) regenerates the hand-made seeds.
// The seed builder below works on small constants; a malformed seed may panic.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[path = "../../../fuzz/checks/e2e.rs"]
mod e2e;

#[test]
fn fuzz_e2e_corpus_replays_cleanly() {
    replay::replay_corpus("e2e", e2e::check);
}

/// Builds e2e inputs op by op (opcodes as in `checks/e2e.rs`).
struct Seed(Vec<u8>);

/// `pick_id` operand for a literal small id (1..=15).
const fn id(n: u8) -> u8 {
    0xC0 | n
}
/// `pick_id` operand for a fresh id of the peer's parity.
const FRESH: u8 = 0xF0;
/// `duration` operand for `n` seconds (1..=100).
const fn secs(n: u8) -> u8 {
    99 + n
}

impl Seed {
    fn new(cfg: [u8; 8]) -> Self {
        Self(cfg.to_vec())
    }
    fn op(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    /// A version-1 HELLO: window 65536, frames 65536, 1000 streams.
    fn hello(self) -> Self {
        self.op(&[0, 0xFA])
    }
    fn data(self, id: u8, flags: u8, payload: &[u8]) -> Self {
        let len = u8::try_from(payload.len()).unwrap();
        self.op(&[1, id, flags, len]).op(payload)
    }
    fn data_gen(self, id: u8, flags: u8, len: u16) -> Self {
        let [hi, lo] = len.to_be_bytes();
        self.op(&[2, id, flags, 0x80 | hi, lo, 7])
    }
    fn run(self, d: u8) -> Self {
        self.op(&[14, d])
    }
    /// Lets the peer send EOF once the operations are done.
    fn peer_eof(mut self) -> Self {
        self.0[0] |= 2;
        self
    }
    fn end(self) -> Vec<u8> {
        self.0
    }
}

/// Writes the hand-made seeds into `fuzz/corpus/e2e` (run with `--ignored`
/// after changing the input format).
#[test]
#[ignore = "writes the seed corpus"]
fn write_e2e_seeds() {
    // cfg: role|peer EOF|keepalive, frame payload, window, window mult|budget,
    // inbound|keepalive timeout|empty, backlog|resets, pending|open timeout,
    // send buffer|close timeout.
    let client = [0x00, 2, 3, 0x81, 2, 2, 1, 0x35];
    let server = [0x01, 2, 3, 0x81, 2, 2, 1, 0x35];
    let server_1000 = [0x01, 4, 3, 0x81, 2, 2, 1, 0x35];
    let small = [0x40, 1, 2, 0x00, 0x0A, 0x12, 0x10, 0x21];
    let roomy = [0xC0, 4, 5, 0xC3, 4, 4, 3, 0x53];
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "client_exchange",
            Seed::new(client)
                .hello()
                .op(&[15, 0, 0]) // open slot 0
                .run(1)
                .op(&[9, 0x40]) // ACK with credit
                .data(id(1), 0, b"hello")
                .op(&[19, 0, 1, 10]) // read
                .op(&[17, 0, 100, 10]) // write 100
                .run(10)
                .op(&[21, 0, 10]) // shutdown
                .data(id(1), 4, b"")
                .op(&[19, 0, 1, 10])
                .op(&[27, secs(5)]) // close
                .peer_eof()
                .end(),
        ),
        (
            "server_exchange",
            Seed::new(server)
                .hello()
                .data(FRESH, 1, b"request")
                .op(&[16, 0, 10]) // accept slot 0
                .op(&[19, 0, 4, 10])
                .op(&[17, 0, 0x80, 0xC8, 10]) // write 200
                .op(&[21, 0, secs(1)])
                .op(&[3, id(1), 0, 0x7F]) // credit
                .data(id(1), 4, b"")
                .op(&[20]) // read burst
                .op(&[26, 0]) // drop
                .run(secs(2))
                .end(),
        ),
        (
            "keepalive_pong_then_timeout",
            Seed::new(small)
                .hello()
                .run(secs(1))
                .op(&[6])
                .run(secs(3))
                .op(&[6])
                .run(secs(30))
                .end(),
        ),
        (
            "window_exceeded",
            Seed::new(server_1000)
                .hello()
                .data_gen(FRESH, 1, 100)
                .op(&[16, 0, 0])
                .op(&[20])
                .data_gen(id(1), 0, 300)
                .run(10)
                .op(&[19, 0, 40, 10])
                .peer_eof()
                .end(),
        ),
        (
            "tiny_reads_short_writes",
            Seed::new(roomy)
                .op(&[10, 0, 11, 0]) // read chunk 1, write max 1
                .hello()
                .op(&[15, 1, 0])
                .op(&[9, 0x7F])
                .op(&[17, 1, 0x81, 0, 0]) // write 256
                .data_gen(id(1), 0, 500)
                .run(10)
                .op(&[19, 1, 0xFF, 10])
                .op(&[18, 1]) // write burst
                .op(&[22, 1, secs(1)])
                .run(secs(2))
                .peer_eof()
                .end(),
        ),
        (
            "pending_socket_then_release",
            Seed::new(client)
                .op(&[10, 0x3B, 11, 0x3A]) // pending + hold both ways
                .hello()
                .op(&[15, 0, 10, 15, 1, 10])
                .op(&[9, 10, 9, 10])
                .op(&[17, 0, 50, 10])
                .run(secs(2))
                .op(&[13]) // release
                .run(10)
                .op(&[11, 0x20]) // hold writes again
                .op(&[27, secs(3)])
                .end(),
        ),
        (
            "write_error",
            Seed::new(client)
                .hello()
                .op(&[15, 0, 0, 9, 50, 17, 0, 30, 0])
                .op(&[12, 3])
                .run(10)
                .op(&[19, 0, 1, secs(1), 17, 0, 5, 0])
                .end(),
        ),
        (
            "read_error",
            Seed::new(server)
                .hello()
                .data(FRESH, 1, b"x")
                .op(&[16, 2, 0])
                .op(&[12, 1])
                .run(10)
                .op(&[19, 2, 1, secs(1), 21, 2, 0])
                .end(),
        ),
        (
            "write_zero_and_eof",
            Seed::new(client)
                .hello()
                .op(&[12, 2, 15, 0, 0])
                .run(10)
                .op(&[12, 0])
                .run(10)
                .peer_eof()
                .end(),
        ),
        (
            "truncated_frame_at_eof",
            Seed::new(server)
                .hello()
                .op(&[8, 3, 0, 0, 0])
                .op(&[12, 0])
                .run(10)
                .peer_eof()
                .end(),
        ),
        (
            "many_streams_mixed_endings",
            Seed::new(roomy)
                .hello()
                .op(&[15, 0, 0, 15, 1, 0, 15, 2, 0, 15, 3, 0])
                .op(&[9, 0x7F, 9, 0x7F, 9, 0x7F])
                .data(FRESH, 1, b"a")
                .data(FRESH, 1, b"b")
                .data(FRESH, 5, b"c")
                .op(&[16, 4, 10, 16, 5, 10, 16, 6, 10])
                .op(&[23, 0, 9]) // reset
                .op(&[24, 1]) // close_read
                .op(&[26, 2]) // drop
                .op(&[21, 3, 10])
                .op(&[4, id(2), 1]) // peer resets 2
                .op(&[20])
                .data(id(4), 4, b"")
                .op(&[27, secs(1)])
                .end(),
        ),
        (
            "garbage",
            Seed::new(client)
                .hello()
                .op(&[8, 10, 9, 0, 0, 0, 1, 0, 1, 2, 3, 4])
                .run(10)
                .end(),
        ),
        (
            "close_with_open_streams_then_timeout",
            Seed::new(roomy)
                .hello()
                .op(&[15, 0, 0, 9, 10])
                .data(FRESH, 1, b"")
                .op(&[16, 1, 0])
                .op(&[17, 0, 0x80, 0xFF, 0])
                .op(&[27, 10])
                .op(&[28]) // drop the connection handle
                .run(secs(8))
                .op(&[19, 1, 1, 10])
                .end(),
        ),
        (
            "deadlines",
            Seed::new(server)
                .hello()
                .data(FRESH, 1, b"")
                .op(&[16, 0, 0])
                .op(&[25, 0, 2, secs(1)]) // both deadlines in 1 s
                .op(&[19, 0, 1, secs(5)])
                .op(&[17, 0, 0x81, 0, secs(5)])
                .op(&[25, 0, 4, 0]) // clear
                .data(id(1), 0, b"late")
                .op(&[19, 0, 1, 10])
                .peer_eof()
                .end(),
        ),
        (
            "peer_go_away",
            Seed::new(client)
                .hello()
                .op(&[15, 0, 0, 9, 5])
                .op(&[7, 0])
                .op(&[15, 1, 10])
                .data(id(1), 4, b"bye")
                .op(&[19, 0, 10, 10, 21, 0, 10])
                .run(10)
                .peer_eof()
                .end(),
        ),
        (
            "rapid_reset",
            Seed::new(server)
                .hello()
                .data(FRESH, 1, b"")
                .op(&[4, id(1), 0])
                .data(FRESH, 1, b"")
                .op(&[4, id(3), 0])
                .data(FRESH, 1, b"")
                .op(&[4, id(5), 0])
                .data(FRESH, 1, b"")
                .op(&[4, id(7), 0])
                .run(10)
                .op(&[16, 0, 0])
                .end(),
        ),
        (
            "ping_flood_unread",
            Seed::new(client)
                .op(&[11, 0x20])
                .hello()
                .op(&[5, 0, 1, 5, 0, 2, 5, 0, 3, 5, 0, 4, 5, 0, 5])
                .run(secs(1))
                .op(&[13])
                .run(10)
                .end(),
        ),
        (
            "bad_hello_version",
            Seed::new(server).op(&[0, 1, 2]).run(10).end(),
        ),
    ];
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in seeds {
        e2e::check(&data);
        std::fs::write(dir.join(name), data).unwrap();
    }
}
