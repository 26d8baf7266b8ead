//! zlib (RFC 1950) and gzip (RFC 1952) headers and trailers: written and parsed in software
//! (docs/hardware-interface.md §4.3: the header is software's job; the engine sees only the
//! deflate payload).

#![forbid(unsafe_code)]

use std::fmt;

/// The zlib header the driver writes: CM 8, 32 KiB window, FLEVEL 2, no dictionary.
pub const ZLIB_HEADER: [u8; 2] = [0x78, 0x9c];
/// gzip magic.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The fixed gzip header: CM 8, FLG 0, MTIME 0, XFL 0, OS 3 (Unix).
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];
/// Bytes of the zlib trailer (Adler-32, big-endian).
pub const ZLIB_TRAILER: usize = 4;
/// Bytes of the gzip trailer (CRC32 and ISIZE, little-endian).
pub const GZIP_TRAILER: usize = 8;

const FTEXT: u8 = 0x01;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

/// Optional fields of a gzip header (RFC 1952 §2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GzHeader {
    /// Modification time (Unix seconds; 0 = none).
    pub mtime: u32,
    /// Original file name (FNAME), without the terminating zero.
    pub name: Option<Vec<u8>>,
    /// Comment (FCOMMENT).
    pub comment: Option<Vec<u8>>,
    /// Extra field (FEXTRA).
    pub extra: Option<Vec<u8>>,
    /// FTEXT flag.
    pub text: bool,
    /// Extra flags (XFL: 2 = best compression, 4 = fastest).
    pub xfl: u8,
    /// Operating system (OS; 3 = Unix, 255 = unknown).
    pub os: u8,
}

/// A header that cannot be right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError(pub String);

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HeaderError {}

fn bad<T>(what: impl Into<String>) -> Result<T, HeaderError> {
    Err(HeaderError(what.into()))
}

impl GzHeader {
    /// The header bytes: the fixed 10 bytes, then FEXTRA, FNAME, FCOMMENT as present, and
    /// FHCRC never (gzip does not write it either).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut flg = 0;
        if self.text {
            flg |= FTEXT;
        }
        if self.extra.is_some() {
            flg |= FEXTRA;
        }
        if self.name.is_some() {
            flg |= FNAME;
        }
        if self.comment.is_some() {
            flg |= FCOMMENT;
        }
        let mut h = vec![0x1f, 0x8b, 8, flg];
        h.extend_from_slice(&self.mtime.to_le_bytes());
        h.push(self.xfl);
        h.push(self.os);
        if let Some(x) = &self.extra {
            let n = x.len().min(u16::MAX as usize);
            h.extend_from_slice(&(n as u16).to_le_bytes());
            h.extend_from_slice(&x[..n]);
        }
        for s in [&self.name, &self.comment].into_iter().flatten() {
            h.extend(s.iter().copied().filter(|&b| b != 0));
            h.push(0);
        }
        h
    }
}

/// Parses a gzip member header at the start of `buf`. `Ok(None)`: more bytes are needed;
/// `Ok(Some((len, header)))`: the header is `len` bytes; `Err`: not a valid header (bad
/// magic, method, reserved flags or header CRC).
pub fn parse_gzip(buf: &[u8]) -> Result<Option<(usize, GzHeader)>, HeaderError> {
    // Check what we have of the fixed part first, so garbage fails at once.
    if !buf.is_empty() && buf[0] != 0x1f || buf.len() >= 2 && buf[1] != 0x8b {
        return bad("not in gzip format (bad magic number)");
    }
    if buf.len() >= 3 && buf[2] != 8 {
        return bad(format!(
            "gzip member uses compression method {} (only 8, deflate, exists)",
            buf[2]
        ));
    }
    if buf.len() >= 4 && buf[3] & FRESERVED != 0 {
        return bad(format!(
            "gzip header has reserved flag bits set ({:#04x})",
            buf[3]
        ));
    }
    if buf.len() < 10 {
        return Ok(None);
    }
    let flg = buf[3];
    let mut h = GzHeader {
        mtime: u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]),
        xfl: buf[8],
        os: buf[9],
        text: flg & FTEXT != 0,
        ..GzHeader::default()
    };
    let mut p = 10;
    if flg & FEXTRA != 0 {
        if buf.len() < p + 2 {
            return Ok(None);
        }
        let xlen = u16::from_le_bytes([buf[p], buf[p + 1]]) as usize;
        p += 2;
        if buf.len() < p + xlen {
            return Ok(None);
        }
        h.extra = Some(buf[p..p + xlen].to_vec());
        p += xlen;
    }
    for (flag, slot) in [(FNAME, &mut h.name), (FCOMMENT, &mut h.comment)] {
        if flg & flag != 0 {
            let Some(z) = buf[p..].iter().position(|&b| b == 0) else {
                return Ok(None);
            };
            *slot = Some(buf[p..p + z].to_vec());
            p += z + 1;
        }
    }
    if flg & FHCRC != 0 {
        if buf.len() < p + 2 {
            return Ok(None);
        }
        let want = u16::from_le_bytes([buf[p], buf[p + 1]]);
        let got = zlib_rs::crc32::crc32(0, &buf[..p]) as u16;
        if want != got {
            return bad(format!(
                "gzip header CRC mismatch (stored {want:#06x}, computed {got:#06x})"
            ));
        }
        p += 2;
    }
    Ok(Some((p, h)))
}

/// Parses a zlib header: `Ok(None)` if fewer than 2 bytes; `Ok(Some(2))` if valid; `Err`
/// for a wrong method, window, check bits, or a preset dictionary (not supported).
pub fn parse_zlib(buf: &[u8]) -> Result<Option<usize>, HeaderError> {
    if !buf.is_empty() && buf[0] & 0x0f != 8 {
        return bad(format!(
            "zlib header has compression method {} (only 8, deflate, exists)",
            buf[0] & 0x0f
        ));
    }
    if !buf.is_empty() && buf[0] >> 4 > 7 {
        return bad(format!(
            "zlib header announces a window of 2^{} bytes (at most 2^15)",
            (buf[0] >> 4) + 8
        ));
    }
    if buf.len() < 2 {
        return Ok(None);
    }
    if (u16::from(buf[0]) << 8 | u16::from(buf[1])) % 31 != 0 {
        return bad("zlib header check bits are wrong (not a zlib stream)");
    }
    if buf[1] & 0x20 != 0 {
        return bad("zlib stream needs a preset dictionary (not supported)");
    }
    Ok(Some(2))
}

/// The zlib trailer for `adler`.
pub fn zlib_trailer(adler: u32) -> [u8; 4] {
    adler.to_be_bytes()
}

/// The gzip trailer for `crc` and `isize`.
pub fn gzip_trailer(crc: u32, isize: u32) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&isize.to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_headers() {
        assert_eq!(parse_gzip(&GZIP_HEADER).unwrap().unwrap().0, 10);
        assert_eq!(parse_zlib(&ZLIB_HEADER).unwrap(), Some(2));
        assert_eq!(
            GzHeader {
                os: 3,
                ..Default::default()
            }
            .to_bytes(),
            GZIP_HEADER
        );
    }

    #[test]
    fn every_optional_field_round_trips_and_needs_all_its_bytes() {
        let h = GzHeader {
            mtime: 0x5e00_0001,
            name: Some(b"file.txt".to_vec()),
            comment: Some(b"a comment".to_vec()),
            extra: Some(vec![b'A', b'P', 2, 0, 1, 2]),
            text: true,
            xfl: 2,
            os: 3,
        };
        let mut b = h.to_bytes();
        // Add FHCRC by hand (we never write it).
        b[3] |= FHCRC;
        let crc = zlib_rs::crc32::crc32(0, &b) as u16;
        b.extend_from_slice(&crc.to_le_bytes());
        for cut in 0..b.len() {
            assert_eq!(parse_gzip(&b[..cut]).unwrap(), None, "cut at {cut}");
        }
        b.extend_from_slice(b"payload");
        let (n, got) = parse_gzip(&b).unwrap().unwrap();
        assert_eq!(n, b.len() - 7);
        assert_eq!(got, h);
        // A wrong header CRC is caught.
        b[n - 1] ^= 1;
        assert!(parse_gzip(&b).unwrap_err().0.contains("CRC"));
    }

    #[test]
    fn garbage_is_refused_early() {
        assert!(parse_gzip(b"PK").is_err());
        assert!(parse_gzip(&[0x1f]).unwrap().is_none());
        assert!(parse_gzip(&[0x1f, 0x8b, 7]).is_err());
        assert!(parse_gzip(&[0x1f, 0x8b, 8, 0x20]).is_err());
        assert!(parse_zlib(&[0x78, 0x9d]).is_err());
        assert!(parse_zlib(&[0x79]).is_err());
        assert!(parse_zlib(&[0x88]).is_err());
        // FDICT
        let mut f = 0x20u8;
        while !(0x7800u16 | u16::from(f)).is_multiple_of(31) {
            f += 1;
        }
        assert!(parse_zlib(&[0x78, f]).unwrap_err().0.contains("dictionary"));
        for lvl in [0x01u8, 0x5e, 0x9c, 0xda] {
            assert_eq!(parse_zlib(&[0x78, lvl]).unwrap(), Some(2));
        }
    }

    #[test]
    fn trailers() {
        assert_eq!(zlib_trailer(0x0102_0304), [1, 2, 3, 4]);
        assert_eq!(gzip_trailer(0x0102_0304, 5), [4, 3, 2, 1, 5, 0, 0, 0]);
    }
}
