//! The ZIP SQE (128 bytes, docs/hardware-interface.md §4.1) as the device reads and writes
//! it, with the request codes (§4.2) and status codes (§4.5). Defined here independently of
//! the driver.

#![forbid(unsafe_code)]

/// Bytes per ZIP SQE.
pub const SQE_SIZE: usize = 128;
/// 32-bit words per ZIP SQE.
pub const SQE_WORDS: usize = SQE_SIZE / 4;

/// dw0: input bytes consumed (out).
pub const DW_CONSUMED: usize = 0;
/// dw1: output bytes produced (out).
pub const DW_PRODUCED: usize = 1;
/// dw3: [7:0] status, bit 8 last block (out).
pub const DW_STATUS: usize = 3;
/// dw4: input length (in).
pub const DW_INPUT_LEN: usize = 4;
/// dw7: flush bit 25, stream mode bit 26, new stream bit 27, sqe_type [31:28].
pub const DW_FLAGS: usize = 7;
/// dw9: request type [7:0], buffer type [11:8], window [15:12].
pub const DW_TYPE: usize = 9;
/// dw13: tag when sqe_type is 0.
pub const DW_TAG_V2: usize = 13;
/// dw14: output buffer size (in), space left (out).
pub const DW_DEST_AVAIL: usize = 14;
/// dw15: ctx_dw0.
pub const DW_CTX0: usize = 15;
/// dw18/dw19: source address low/high.
pub const DW_SRC: usize = 18;
/// dw20/dw21: destination address low/high.
pub const DW_DST: usize = 20;
/// dw22/dw23: stream context address low/high.
pub const DW_CTX_ADDR: usize = 22;
/// dw26: tag when sqe_type is 3.
pub const DW_TAG_V3: usize = 26;
/// dw28: ctx_dw1.
pub const DW_CTX1: usize = 28;
/// dw29: ctx_dw2.
pub const DW_CTX2: usize = 29;
/// dw30: running ISIZE.
pub const DW_ISIZE: usize = 30;
/// dw31: running checksum.
pub const DW_CHECKSUM: usize = 31;

/// dw3 [7:0].
pub const STATUS_MASK: u32 = 0xff;
/// dw3 bit 8: the last block of the stream was decoded.
pub const LAST_BLOCK: u32 = 1 << 8;
/// dw7 bit 25: 0 = sync flush, 1 = finish.
pub const FLUSH_FINISH: u32 = 1 << 25;
/// dw7 bit 26: 1 = stateful (stream) mode.
pub const STREAM_MODE: u32 = 1 << 26;
/// dw7 bit 27: first request of a new stream.
pub const NEW_STREAM: u32 = 1 << 27;
/// dw7 [31:28].
pub const SQE_TYPE_SHIFT: u32 = 28;
/// dw9 [11:8].
pub const BUF_TYPE_SHIFT: u32 = 8;
/// dw9 [15:12].
pub const WINDOW_SHIFT: u32 = 12;

/// sqe_type of the v2 layout (tag in dw13).
pub const SQE_TYPE_V2: u8 = 0;
/// sqe_type of the v3 layout (tag in dw26).
pub const SQE_TYPE_V3: u8 = 3;

/// Request type: raw deflate (v3 only).
pub const REQ_DEFLATE: u8 = 0x01;
/// Request type: zlib.
pub const REQ_ZLIB: u8 = 0x02;
/// Request type: gzip.
pub const REQ_GZIP: u8 = 0x03;

/// Buffer type: flat buffer ("pbuffer").
pub const BUF_FLAT: u8 = 0;

/// Status: success.
pub const ST_OK: u8 = 0x00;
/// Model status: bad parameter (request type, sqe_type, buffer type, window, queue class,
/// input length over the limit). Not in hardware-interface; any nonzero non-listed value is
/// an error.
pub const ST_PARAM: u8 = 0x01;
/// Model status: a DMA address the IOMMU refused.
pub const ST_ADDR: u8 = 0x02;
/// Model status: the compressed input is not valid deflate (or stream context corrupt).
pub const ST_DATA: u8 = 0x06;
/// Status: negative compression (output larger than input); the output is valid.
pub const ST_NEGATIVE: u8 = 0x0d;
/// Status: `dest_avail_out` too small.
pub const ST_DEST_SMALL: u8 = 0x0e;
/// Status: checksum (trailer) mismatch.
pub const ST_CRC: u8 = 0x10;
/// Status: decompression reached the end of the stream (with [`LAST_BLOCK`]).
pub const ST_DECOMP_END: u8 = 0x13;
/// Model status: injected or internal hardware error.
pub const ST_HW: u8 = 0x1f;

/// ctx_dw0 [3:0] ctx_st values the model writes after decompression.
pub const CTX_ST_NONE: u32 = 0x0;
/// Output space ran out in the middle of a block.
pub const CTX_ST_NO_SPACE: u32 = 0x2;
/// Input ran out in the middle of a block: resend from the block start with more input.
pub const CTX_ST_BLOCK_NOT_STARTED: u32 = 0x3;
/// End of stream reached but the trailer was not in the input (software checks it).
pub const CTX_ST_NO_CRC: u32 = 0x4;
/// ctx_dw0 bit 7: the last block (BFINAL) was seen.
pub const CTX_BFINAL: u32 = 0x80;
/// ctx_dw0 [15:10]: bits of the first input byte already used.
pub const CTX_BITS_SHIFT: u32 = 10;
/// ctx_dw0 [15:10] mask after shifting.
pub const CTX_BITS_MASK: u32 = 0x3f;

/// Size of the stream context buffer (`HW_CTX_SIZE`).
pub const CTX_SIZE: usize = 0x10000;
/// Smallest output buffer the engine writes into.
pub const MIN_DEST: u32 = 200;
/// Largest input (and output) of one request (`HZ_MAX_SIZE`).
pub const MAX_LEN: u32 = 8 << 20;

/// The request fields of a ZIP SQE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipSqe {
    /// dw4.
    pub input_len: u32,
    /// dw7 bit 25.
    pub finish: bool,
    /// dw7 bit 26.
    pub stateful: bool,
    /// dw7 bit 27.
    pub new_stream: bool,
    /// dw7 [31:28].
    pub sqe_type: u8,
    /// dw9 [7:0].
    pub req_type: u8,
    /// dw9 [11:8].
    pub buf_type: u8,
    /// dw9 [15:12].
    pub window: u8,
    /// dw14.
    pub dest_avail: u32,
    /// dw15, dw28, dw29.
    pub ctx: [u32; 3],
    /// dw18–19.
    pub src: u64,
    /// dw20–21.
    pub dst: u64,
    /// dw22–23.
    pub ctx_addr: u64,
    /// dw30.
    pub isize: u32,
    /// dw31.
    pub checksum: u32,
}

fn u64_at(words: &[u32], dw: usize) -> u64 {
    u64::from(words[dw]) | (u64::from(words[dw + 1]) << 32)
}

impl ZipSqe {
    /// Reads the request fields from the SQE words.
    pub fn decode(w: &[u32; SQE_WORDS]) -> ZipSqe {
        let f = w[DW_FLAGS];
        let t = w[DW_TYPE];
        ZipSqe {
            input_len: w[DW_INPUT_LEN],
            finish: f & FLUSH_FINISH != 0,
            stateful: f & STREAM_MODE != 0,
            new_stream: f & NEW_STREAM != 0,
            sqe_type: (f >> SQE_TYPE_SHIFT) as u8,
            req_type: (t & 0xff) as u8,
            buf_type: ((t >> BUF_TYPE_SHIFT) & 0xf) as u8,
            window: ((t >> WINDOW_SHIFT) & 0xf) as u8,
            dest_avail: w[DW_DEST_AVAIL],
            ctx: [w[DW_CTX0], w[DW_CTX1], w[DW_CTX2]],
            src: u64_at(w, DW_SRC),
            dst: u64_at(w, DW_DST),
            ctx_addr: u64_at(w, DW_CTX_ADDR),
            isize: w[DW_ISIZE],
            checksum: w[DW_CHECKSUM],
        }
    }
}

/// What the engine writes back into an SQE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZipResult {
    /// Input bytes consumed.
    pub consumed: u32,
    /// Output bytes produced.
    pub produced: u32,
    /// Status code.
    pub status: u8,
    /// Last block decoded.
    pub last_block: bool,
    /// Output space left.
    pub dest_avail: u32,
    /// ctx_dw0/1/2.
    pub ctx: [u32; 3],
    /// Running ISIZE.
    pub isize: u32,
    /// Running checksum.
    pub checksum: u32,
}

impl ZipResult {
    /// Writes the result fields into `w`, leaving every other word (tags, addresses) alone.
    pub fn encode(&self, w: &mut [u32]) {
        w[DW_CONSUMED] = self.consumed;
        w[DW_PRODUCED] = self.produced;
        w[DW_STATUS] = (w[DW_STATUS] & !(STATUS_MASK | LAST_BLOCK))
            | u32::from(self.status)
            | if self.last_block { LAST_BLOCK } else { 0 };
        w[DW_DEST_AVAIL] = self.dest_avail;
        w[DW_CTX0] = self.ctx[0];
        w[DW_CTX1] = self.ctx[1];
        w[DW_CTX2] = self.ctx[2];
        w[DW_ISIZE] = self.isize;
        w[DW_CHECKSUM] = self.checksum;
    }
}

/// Writes only an error status (consumed = produced = 0), as for a refused request.
pub fn encode_error(w: &mut [u32], status: u8) {
    w[DW_CONSUMED] = 0;
    w[DW_PRODUCED] = 0;
    w[DW_STATUS] = (w[DW_STATUS] & !(STATUS_MASK | LAST_BLOCK)) | u32::from(status);
}

/// The deflate window of dw9 [15:12] in bytes (uadk: 0 = 4K, 1 = 8K, 2 = 16K, 3 = 24K,
/// 4 = 32K); `None` for other values.
pub fn window_bytes(code: u8) -> Option<usize> {
    match code {
        0 => Some(4 << 10),
        1 => Some(8 << 10),
        2 => Some(16 << 10),
        3 => Some(24 << 10),
        4 => Some(32 << 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(w: &[u32; SQE_WORDS]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// Byte `off` of an SQE whose bytes are `b` set to `v`, as words.
    fn with_byte(off: usize, v: u8) -> [u32; SQE_WORDS] {
        let mut b = [0u8; SQE_SIZE];
        b[off] = v;
        let mut w = [0u32; SQE_WORDS];
        for (i, x) in w.iter_mut().enumerate() {
            *x = u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
        }
        w
    }

    #[test]
    fn request_fields_sit_at_hw_spec_offsets() {
        // dw4 at byte 16: input length.
        assert_eq!(ZipSqe::decode(&with_byte(16, 0x7f)).input_len, 0x7f);
        // dw7 at byte 28: bit 25 flush, 26 stream mode, 27 new stream, [31:28] sqe_type.
        let s = ZipSqe::decode(&with_byte(31, 0x02));
        assert!(s.finish && !s.stateful && !s.new_stream);
        let s = ZipSqe::decode(&with_byte(31, 0x04));
        assert!(s.stateful && !s.finish);
        let s = ZipSqe::decode(&with_byte(31, 0x08));
        assert!(s.new_stream);
        assert_eq!(ZipSqe::decode(&with_byte(31, 0x30)).sqe_type, 3);
        // dw9 at byte 36: [7:0] request type, [11:8] buffer type, [15:12] window.
        assert_eq!(ZipSqe::decode(&with_byte(36, 0x03)).req_type, 3);
        let s = ZipSqe::decode(&with_byte(37, 0x41));
        assert_eq!((s.buf_type, s.window), (1, 4));
        // dw14 at byte 56: dest_avail_out.
        assert_eq!(ZipSqe::decode(&with_byte(56, 0xc8)).dest_avail, 200);
        // ctx_dw0/1/2 at dw15, dw28, dw29.
        assert_eq!(ZipSqe::decode(&with_byte(60, 1)).ctx, [1, 0, 0]);
        assert_eq!(ZipSqe::decode(&with_byte(112, 2)).ctx, [0, 2, 0]);
        assert_eq!(ZipSqe::decode(&with_byte(116, 3)).ctx, [0, 0, 3]);
        // Addresses: source dw18-19 (byte 72), destination dw20-21 (80), ctx dw22-23 (88);
        // the high word's first byte is bit 32.
        assert_eq!(ZipSqe::decode(&with_byte(72, 1)).src, 1);
        assert_eq!(ZipSqe::decode(&with_byte(76, 1)).src, 1 << 32);
        assert_eq!(ZipSqe::decode(&with_byte(80, 1)).dst, 1);
        assert_eq!(ZipSqe::decode(&with_byte(84, 1)).dst, 1 << 32);
        assert_eq!(ZipSqe::decode(&with_byte(88, 1)).ctx_addr, 1);
        assert_eq!(ZipSqe::decode(&with_byte(92, 1)).ctx_addr, 1 << 32);
        // isize dw30 (byte 120), checksum dw31 (byte 124).
        assert_eq!(ZipSqe::decode(&with_byte(120, 9)).isize, 9);
        assert_eq!(ZipSqe::decode(&with_byte(124, 9)).checksum, 9);
        // Tags: dw13 (byte 52) for sqe_type 0, dw26 (byte 104) for sqe_type 3.
        assert_eq!(with_byte(52, 1)[DW_TAG_V2], 1);
        assert_eq!(with_byte(104, 1)[DW_TAG_V3], 1);
    }

    #[test]
    fn result_fields_sit_at_hw_spec_offsets_and_spare_the_rest() {
        let mut w = [0xa5a5_a5a5u32; SQE_WORDS];
        let r = ZipResult {
            consumed: 0x0102_0304,
            produced: 0x0506_0708,
            status: ST_DECOMP_END,
            last_block: true,
            dest_avail: 0x11,
            ctx: [0x21, 0x22, 0x23],
            isize: 0x31,
            checksum: 0x41,
        };
        r.encode(&mut w);
        let b = bytes(&w);
        assert_eq!(&b[0..4], &[4, 3, 2, 1]);
        assert_eq!(&b[4..8], &[8, 7, 6, 5]);
        // dw3: status in [7:0], last block at bit 8; the other bits of dw3 untouched.
        assert_eq!(w[3], 0xa5a5_a400 | 0x13 | 0x100);
        assert_eq!(b[56], 0x11);
        assert_eq!(
            (b[60], b[112], b[116], b[120], b[124]),
            (0x21, 0x22, 0x23, 0x31, 0x41)
        );
        for dw in [
            2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
        ] {
            assert_eq!(w[dw], 0xa5a5_a5a5, "dw{dw} changed");
        }
        let mut w = [0u32; SQE_WORDS];
        w[3] = LAST_BLOCK | 0x13;
        encode_error(&mut w, ST_PARAM);
        assert_eq!(w[3], 1);
    }

    #[test]
    fn windows() {
        assert_eq!(window_bytes(4), Some(32768));
        assert_eq!(window_bytes(0), Some(4096));
        assert_eq!(window_bytes(5), None);
    }
}
