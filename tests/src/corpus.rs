//! Test data for the compression tests: reproducible text-like and random bytes.

/// `n` bytes of text-like data (words of the domain, a few binary bytes), compressible
/// about 3:1, the same for the same `seed`.
pub fn text(n: usize, seed: u64) -> Vec<u8> {
    let words: [&[u8]; 10] = [
        b"accelerator ",
        b"queue ",
        b"deflate ",
        b"zlib ",
        b"gzip ",
        b"window\n",
        b"kunpeng ",
        b"0123456789 ",
        b"doorbell ",
        b"\x00\x01\x02\x03",
    ];
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 16);
    while v.len() < n {
        x = xorshift(x);
        v.extend_from_slice(words[(x % words.len() as u64) as usize]);
    }
    v.truncate(n);
    v
}

/// `n` incompressible bytes, the same for the same `seed`.
pub fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = vec![0u8; n];
    for c in v.chunks_mut(8) {
        x = xorshift(x);
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
    v
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}
