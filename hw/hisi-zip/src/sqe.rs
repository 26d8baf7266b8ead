//! The 128-byte ZIP SQE (docs/hardware-interface.md §4.1), defined here independently of
//! the device model.
//!
//! | dw | bits | field |
//! |----|------|-------|
//! | 0 | | `consumed` (out) |
//! | 1 | | `produced` (out) |
//! | 3 | `[7:0]`, 8 | status (out), last-block flag |
//! | 4 | | `input_data_length` |
//! | 7 | 25 / 26 / 27, `[31:28]` | flush (1 = finish), stream mode, new stream; `sqe_type` |
//! | 9 | `[7:0]`, `[11:8]`, `[15:12]` | request type, buffer type, window |
//! | 13 | | tag when `sqe_type` = 0 (v2) |
//! | 14 | | `dest_avail_out` |
//! | 15, 28, 29 | | `ctx_dw0`, `ctx_dw1`, `ctx_dw2` |
//! | 18–19, 20–21, 22–23 | | source, destination, stream context addresses (lo, hi) |
//! | 26 | | tag when `sqe_type` = 3 (v3) |
//! | 30, 31 | | running ISIZE, running checksum |

#![forbid(unsafe_code)]

use hisi_qm::words::{self, Field};

/// Bytes per ZIP SQE.
pub const SQE_SIZE: usize = 128;
/// 32-bit words per ZIP SQE.
pub const SQE_WORDS: usize = SQE_SIZE / 4;

/// Request type codes of dw9 [7:0] (hardware-interface §4.2).
pub mod req {
    /// Raw deflate (api ≥ v3 only).
    pub const DEFLATE: u8 = 0x01;
    /// zlib (RFC 1950 payload and Adler-32 trailer).
    pub const ZLIB: u8 = 0x02;
    /// gzip (RFC 1952 payload and CRC32/ISIZE trailer).
    pub const GZIP: u8 = 0x03;
}

/// Status codes of dw3 [7:0] (hardware-interface §4.5).
pub mod status {
    /// Success.
    pub const OK: u8 = 0x00;
    /// Negative compression: output larger than input, still valid.
    pub const NEGATIVE_COMPRESSION: u8 = 0x0d;
    /// `dest_avail_out` too small.
    pub const DEST_TOO_SMALL: u8 = 0x0e;
    /// Input DIF check error.
    pub const DIF_IN: u8 = 0x0f;
    /// CRC (checksum) error.
    pub const CRC_ERROR: u8 = 0x10;
    /// Uncompressed-data DIF check error.
    pub const DIF_OUT: u8 = 0x12;
    /// Decompression reached the end of the stream (with the last-block flag).
    pub const DECOMP_END: u8 = 0x13;
}

/// `ctx_dw0[3:0]` (ctx_st) values (hardware-interface §4.5).
pub mod ctx_st {
    /// Last block, no output space.
    pub const LAST_BLOCK_NO_SPACE: u32 = 0x1;
    /// No space in the middle of decompression.
    pub const NO_SPACE: u32 = 0x2;
    /// Block not started.
    pub const BLOCK_NOT_STARTED: u32 = 0x3;
    /// No CRC: the stream ended but the trailer was not checked.
    pub const NO_CRC: u32 = 0x4;
}

/// `sqe_type` of the v2 layout (tag in dw13).
pub const SQE_TYPE_V2: u8 = 0;
/// `sqe_type` of the v3 layout (tag in dw26).
pub const SQE_TYPE_V3: u8 = 3;
/// dw9 [15:12] window code for 32 KiB (uadk: 0 = 4K ... 4 = 32K).
pub const WINDOW_32K: u8 = 4;

const CONSUMED: Field = (0, 0, 32);
const PRODUCED: Field = (1, 0, 32);
const STATUS: Field = (3, 0, 8);
const LAST_BLOCK: Field = (3, 8, 1);
const INPUT_LEN: Field = (4, 0, 32);
const FLUSH_FINISH: Field = (7, 25, 1);
const STREAM_MODE: Field = (7, 26, 1);
const NEW_STREAM: Field = (7, 27, 1);
const SQE_TYPE: Field = (7, 28, 4);
const REQ_TYPE: Field = (9, 0, 8);
const BUF_TYPE: Field = (9, 8, 4);
const WINDOW: Field = (9, 12, 4);
const TAG_V2: Field = (13, 0, 32);
const DEST_AVAIL: Field = (14, 0, 32);
const CTX_DW0: Field = (15, 0, 32);
const CTX_DW1: Field = (28, 0, 32);
const CTX_DW2: Field = (29, 0, 32);
const TAG_V3: Field = (26, 0, 32);
const ISIZE: Field = (30, 0, 32);
const CHECKSUM: Field = (31, 0, 32);
const SRC_DW: usize = 18;
const DST_DW: usize = 20;
const CTX_ADDR_DW: usize = 22;

/// A ZIP SQE as 32 little-endian words (the ring copies words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipSqe(pub [u32; SQE_WORDS]);

impl Default for ZipSqe {
    fn default() -> Self {
        ZipSqe([0; SQE_WORDS])
    }
}

macro_rules! field {
    ($get:ident, $set:ident, $f:ident, $t:ty, $doc:literal) => {
        #[doc = concat!("Reads ", $doc, ".")]
        pub fn $get(&self) -> $t {
            self.get($f) as $t
        }
        #[doc = concat!("Sets ", $doc, ".")]
        pub fn $set(&mut self, v: $t) {
            self.set($f, v as u32)
        }
    };
}

macro_rules! flag {
    ($get:ident, $set:ident, $f:ident, $doc:literal) => {
        #[doc = concat!("Reads ", $doc, ".")]
        pub fn $get(&self) -> bool {
            self.get($f) != 0
        }
        #[doc = concat!("Sets ", $doc, ".")]
        pub fn $set(&mut self, v: bool) {
            self.set($f, u32::from(v))
        }
    };
}

impl ZipSqe {
    fn get(&self, f: Field) -> u32 {
        words::get(&self.0, f)
    }

    fn set(&mut self, f: Field, v: u32) {
        words::set(&mut self.0, f, v)
    }

    fn get_u64(&self, dw: usize) -> u64 {
        words::get_u64(&self.0, dw)
    }

    fn set_u64(&mut self, dw: usize, v: u64) {
        words::set_u64(&mut self.0, dw, v)
    }

    field!(
        consumed,
        set_consumed,
        CONSUMED,
        u32,
        "dw0, input bytes consumed"
    );
    field!(
        produced,
        set_produced,
        PRODUCED,
        u32,
        "dw1, output bytes produced"
    );
    field!(status, set_status, STATUS, u8, "dw3 [7:0], the status");
    flag!(
        last_block,
        set_last_block,
        LAST_BLOCK,
        "dw3 bit 8, the last-block flag"
    );
    field!(
        input_len,
        set_input_len,
        INPUT_LEN,
        u32,
        "dw4, the input length"
    );
    flag!(
        finish,
        set_finish,
        FLUSH_FINISH,
        "dw7 bit 25 (1 = finish, 0 = sync flush)"
    );
    flag!(
        stream_mode,
        set_stream_mode,
        STREAM_MODE,
        "dw7 bit 26, stream (stateful) mode"
    );
    flag!(
        new_stream,
        set_new_stream,
        NEW_STREAM,
        "dw7 bit 27, the new-stream flag"
    );
    field!(
        sqe_type,
        set_sqe_type,
        SQE_TYPE,
        u8,
        "dw7 [31:28], the SQE layout type"
    );
    field!(
        req_type,
        set_req_type,
        REQ_TYPE,
        u8,
        "dw9 [7:0], the request type"
    );
    field!(
        buf_type,
        set_buf_type,
        BUF_TYPE,
        u8,
        "dw9 [11:8] (0 = flat buffer)"
    );
    field!(
        window,
        set_window,
        WINDOW,
        u8,
        "dw9 [15:12], the window size code"
    );
    field!(
        dest_avail,
        set_dest_avail,
        DEST_AVAIL,
        u32,
        "dw14, `dest_avail_out`"
    );
    field!(ctx_dw0, set_ctx_dw0, CTX_DW0, u32, "dw15, `ctx_dw0`");
    field!(ctx_dw1, set_ctx_dw1, CTX_DW1, u32, "dw28, `ctx_dw1`");
    field!(ctx_dw2, set_ctx_dw2, CTX_DW2, u32, "dw29, `ctx_dw2`");
    field!(isize, set_isize, ISIZE, u32, "dw30, the running ISIZE");
    field!(
        checksum,
        set_checksum,
        CHECKSUM,
        u32,
        "dw31, the running checksum"
    );

    /// The tag: dw13 for `sqe_type` 0, dw26 for `sqe_type` 3.
    pub fn tag(&self) -> u32 {
        if self.sqe_type() == SQE_TYPE_V3 {
            self.get(TAG_V3)
        } else {
            self.get(TAG_V2)
        }
    }

    /// Sets the tag where this SQE's `sqe_type` keeps it (set the type first).
    pub fn set_tag(&mut self, v: u32) {
        if self.sqe_type() == SQE_TYPE_V3 {
            self.set(TAG_V3, v)
        } else {
            self.set(TAG_V2, v)
        }
    }

    /// Source address, dw18 (low) and dw19 (high).
    pub fn source(&self) -> u64 {
        self.get_u64(SRC_DW)
    }
    /// Sets the source address.
    pub fn set_source(&mut self, v: u64) {
        self.set_u64(SRC_DW, v)
    }
    /// Destination address, dw20–21.
    pub fn dest(&self) -> u64 {
        self.get_u64(DST_DW)
    }
    /// Sets the destination address.
    pub fn set_dest(&mut self, v: u64) {
        self.set_u64(DST_DW, v)
    }
    /// Stream context address, dw22–23.
    pub fn ctx_addr(&self) -> u64 {
        self.get_u64(CTX_ADDR_DW)
    }
    /// Sets the stream context address.
    pub fn set_ctx_addr(&mut self, v: u64) {
        self.set_u64(CTX_ADDR_DW, v)
    }

    /// `ctx_dw0/1/2` together (carried from one completed stream request to the next).
    pub fn ctx_words(&self) -> [u32; 3] {
        [self.ctx_dw0(), self.ctx_dw1(), self.ctx_dw2()]
    }

    /// Sets `ctx_dw0/1/2`.
    pub fn set_ctx_words(&mut self, w: [u32; 3]) {
        self.set_ctx_dw0(w[0]);
        self.set_ctx_dw1(w[1]);
        self.set_ctx_dw2(w[2]);
    }

    /// The SQE as the device sees it in memory.
    pub fn to_bytes(&self) -> [u8; SQE_SIZE] {
        words::to_le_bytes(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets one field in a zeroed SQE and returns the bytes that changed.
    fn only(f: impl FnOnce(&mut ZipSqe)) -> Vec<(usize, u8)> {
        let mut s = ZipSqe::default();
        f(&mut s);
        s.to_bytes()
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != 0)
            .map(|(i, b)| (i, *b))
            .collect()
    }

    fn word_at(byte: usize, v: u32) -> Vec<(usize, u8)> {
        v.to_le_bytes()
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != 0)
            .map(|(i, b)| (byte + i, *b))
            .collect()
    }

    #[test]
    fn status_word_dw3() {
        assert_eq!(only(|s| s.set_status(0xff)), vec![(12, 0xff)]);
        assert_eq!(only(|s| s.set_last_block(true)), vec![(13, 0x01)]);
        let mut s = ZipSqe::default();
        s.0[3] = 0x113;
        assert_eq!((s.status(), s.last_block()), (status::DECOMP_END, true));
    }

    #[test]
    fn dw7_flags_and_sqe_type() {
        assert_eq!(only(|s| s.set_finish(true)), vec![(31, 0x02)]);
        assert_eq!(only(|s| s.set_stream_mode(true)), vec![(31, 0x04)]);
        assert_eq!(only(|s| s.set_new_stream(true)), vec![(31, 0x08)]);
        assert_eq!(only(|s| s.set_sqe_type(SQE_TYPE_V3)), vec![(31, 0x30)]);
        assert_eq!(only(|s| s.set_sqe_type(0xf)), vec![(31, 0xf0)]);
    }

    #[test]
    fn dw9_request_buffer_and_window() {
        assert_eq!(only(|s| s.set_req_type(req::GZIP)), vec![(36, 0x03)]);
        assert_eq!(only(|s| s.set_buf_type(1)), vec![(37, 0x01)]);
        assert_eq!(only(|s| s.set_window(WINDOW_32K)), vec![(37, 0x40)]);
    }

    #[test]
    fn tags_by_sqe_type() {
        let v2 = only(|s| {
            s.set_sqe_type(SQE_TYPE_V2);
            s.set_tag(0xa55a);
        });
        assert_eq!(v2, vec![(52, 0x5a), (53, 0xa5)]);
        let v3 = only(|s| {
            s.set_sqe_type(SQE_TYPE_V3);
            s.set_tag(0xa55a);
        });
        assert_eq!(v3, vec![(31, 0x30), (104, 0x5a), (105, 0xa5)]);
    }

    #[test]
    fn word_fields_sit_at_their_bytes() {
        let v = 0x1122_3344;
        assert_eq!(only(|s| s.set_consumed(v)), word_at(0, v));
        assert_eq!(only(|s| s.set_produced(v)), word_at(4, v));
        assert_eq!(only(|s| s.set_input_len(v)), word_at(16, v));
        assert_eq!(only(|s| s.set_dest_avail(v)), word_at(56, v));
        assert_eq!(only(|s| s.set_ctx_dw0(v)), word_at(60, v));
        assert_eq!(only(|s| s.set_ctx_dw1(v)), word_at(112, v));
        assert_eq!(only(|s| s.set_ctx_dw2(v)), word_at(116, v));
        assert_eq!(only(|s| s.set_isize(v)), word_at(120, v));
        assert_eq!(only(|s| s.set_checksum(v)), word_at(124, v));
    }

    #[test]
    fn addresses_lo_then_hi() {
        let a = 0x8877_6655_4433_2211u64;
        let at = |base: usize| -> Vec<(usize, u8)> {
            (0..8).map(|i| (base + i, 0x11 * (i as u8 + 1))).collect()
        };
        assert_eq!(only(|s| s.set_source(a)), at(72));
        assert_eq!(only(|s| s.set_dest(a)), at(80));
        assert_eq!(only(|s| s.set_ctx_addr(a)), at(88));
        let mut s = ZipSqe::default();
        s.set_source(a);
        s.set_dest(a + 1);
        s.set_ctx_addr(a + 2);
        assert_eq!((s.source(), s.dest(), s.ctx_addr()), (a, a + 1, a + 2));
    }

    #[test]
    fn fields_do_not_overlap() {
        let mut s = ZipSqe::default();
        s.set_finish(true);
        s.set_stream_mode(true);
        s.set_new_stream(true);
        s.set_sqe_type(SQE_TYPE_V3);
        s.set_req_type(req::ZLIB);
        s.set_window(WINDOW_32K);
        assert_eq!(s.0[7], 0x3e00_0000);
        assert_eq!(s.0[9], 0x4002);
        s.set_stream_mode(false);
        assert!(s.finish() && s.new_stream() && !s.stream_mode());
        assert_eq!(s.sqe_type(), 3);
    }
}
