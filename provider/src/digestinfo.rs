//! DER prefixes of the PKCS#1 v1.5 DigestInfo for each digest (RFC 8017 §9.2, note 1): the
//! encoding is `prefix || hash`. A fixed table, as OpenSSL's own RSA signature uses.

#![forbid(unsafe_code)]

/// NIDs of the digests (OpenSSL's object numbers).
pub mod nid {
    pub const MD5: i32 = 4;
    pub const SHA1: i32 = 64;
    pub const MD5_SHA1: i32 = 114;
    pub const RIPEMD160: i32 = 117;
    pub const SHA256: i32 = 672;
    pub const SHA384: i32 = 673;
    pub const SHA512: i32 = 674;
    pub const SHA224: i32 = 675;
    pub const SHA512_224: i32 = 1094;
    pub const SHA512_256: i32 = 1095;
    pub const SHA3_224: i32 = 1096;
    pub const SHA3_256: i32 = 1097;
    pub const SHA3_384: i32 = 1098;
    pub const SHA3_512: i32 = 1099;
}

const fn sha2(last: u8, len: u8) -> [u8; 19] {
    [
        0x30,
        len + 17,
        0x30,
        0x0d,
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        last,
        0x05,
        0x00,
        0x04,
        len,
    ]
}

const MD5: [u8; 18] = [
    0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05, 0x05, 0x00,
    0x04, 0x10,
];
const SHA1: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
const RIPEMD160: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x24, 0x03, 0x02, 0x01, 0x05, 0x00, 0x04, 0x14,
];
const SHA256: [u8; 19] = sha2(0x01, 32);
const SHA384: [u8; 19] = sha2(0x02, 48);
const SHA512: [u8; 19] = sha2(0x03, 64);
const SHA224: [u8; 19] = sha2(0x04, 28);
const SHA512_224: [u8; 19] = sha2(0x05, 28);
const SHA512_256: [u8; 19] = sha2(0x06, 32);
const SHA3_224: [u8; 19] = sha2(0x07, 28);
const SHA3_256: [u8; 19] = sha2(0x08, 32);
const SHA3_384: [u8; 19] = sha2(0x09, 48);
const SHA3_512: [u8; 19] = sha2(0x0a, 64);

/// The DigestInfo prefix for digest `nid`: `Some(&[])` for MD5-SHA1 (TLS 1.0/1.1: the
/// bare 36 bytes), `None` for a digest PKCS#1 v1.5 has no encoding for.
pub fn prefix(nid: i32) -> Option<&'static [u8]> {
    Some(match nid {
        nid::MD5 => &MD5,
        nid::SHA1 => &SHA1,
        nid::MD5_SHA1 => &[],
        nid::RIPEMD160 => &RIPEMD160,
        nid::SHA224 => &SHA224,
        nid::SHA256 => &SHA256,
        nid::SHA384 => &SHA384,
        nid::SHA512 => &SHA512,
        nid::SHA512_224 => &SHA512_224,
        nid::SHA512_256 => &SHA512_256,
        nid::SHA3_224 => &SHA3_224,
        nid::SHA3_256 => &SHA3_256,
        nid::SHA3_384 => &SHA3_384,
        nid::SHA3_512 => &SHA3_512,
        _ => return None,
    })
}

/// `prefix || hash`.
pub fn encode(nid: i32, hash: &[u8]) -> Option<Vec<u8>> {
    let p = prefix(nid)?;
    let mut v = Vec::with_capacity(p.len() + hash.len());
    v.extend_from_slice(p);
    v.extend_from_slice(hash);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_prefix_is_the_rfc_one() {
        assert_eq!(
            prefix(nid::SHA256).unwrap(),
            &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20
            ]
        );
        // Declared lengths match the encodings.
        for n in [
            nid::SHA1,
            nid::SHA224,
            nid::SHA384,
            nid::SHA512,
            nid::SHA3_512,
            nid::MD5,
        ] {
            let p = prefix(n).unwrap();
            assert_eq!(p[1] as usize + 2, p.len() + p[p.len() - 1] as usize);
        }
    }
}
