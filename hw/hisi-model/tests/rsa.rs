//! RSA through the ring, compared with libcrypto's own results.

mod common;

use common::*;
use openssl::rsa::{Padding, Rsa};

/// Runs one HPRE request and returns (cqe, dw0, output).
fn run_one(r: &mut TestRing, alg: u8, k: usize, key: &[u8], msg: &[u8]) -> (Cqe, u32, Vec<u8>) {
    let kb = r.map(key.len());
    kb.write(0, key);
    let inb = r.map(k);
    inb.write(0, msg);
    let out = r.map(k);
    let slot = r.submit(&hpre_sqe(
        alg,
        k,
        kb.iova,
        inb.iova,
        out.iova,
        0xfeed_0000_0000_0001,
    ));
    let cqe = r.wait_cqe(WAIT).expect("completion");
    assert_eq!(cqe.sq_head, slot);
    assert_eq!(cqe.sq_num, r.qid);
    assert_eq!(r.tag(slot), 0xfeed_0000_0000_0001, "tag preserved");
    (cqe, r.dw0(slot), out.read(0, k))
}

#[test]
fn public_and_crt_private_ops_match_libcrypto_on_v2_and_v3() {
    let rsa = Rsa::generate(2048).unwrap();
    let keys = key_blocks(&rsa);
    let k = keys.k;
    for api in api_versions() {
        let m = model_with(|c| c.api = api);
        let mut r = m.open(0);
        let msg = message(k, 7);

        // Public: out = msg^e mod n.
        let mut want = vec![0u8; k];
        rsa.public_encrypt(&msg, &mut want, Padding::NONE).unwrap();
        let (_, dw0, got) = run_one(&mut r, 0, k, &keys.public, &msg);
        assert_eq!(split_dw0(dw0), (0, 0, 0, 3), "{api:?} public dw0 {dw0:#x}");
        assert_eq!(got, want, "{api:?} public");

        // CRT private: back to the message.
        let (_, dw0, back) = run_one(&mut r, 1, k, &keys.crt, &want);
        assert_eq!(split_dw0(dw0), (1, 0, 0, 3), "{api:?} CRT dw0 {dw0:#x}");
        let mut lib = vec![0u8; k];
        rsa.private_decrypt(&want, &mut lib, Padding::NONE).unwrap();
        assert_eq!(back, lib, "{api:?} CRT vs libcrypto");
        assert_eq!(back, msg);

        // Non-CRT private (d‖n) signs like libcrypto.
        let (_, dw0, sig) = run_one(&mut r, 0, k, &keys.private, &msg);
        assert_eq!(split_dw0(dw0).3, 3);
        let mut lib_sig = vec![0u8; k];
        rsa.private_encrypt(&msg, &mut lib_sig, Padding::NONE)
            .unwrap();
        assert_eq!(sig, lib_sig, "{api:?} non-CRT private");

        let s = m.backend.stats();
        assert_eq!((s.completed_ok, s.completed_error), (3, 0));
        assert_eq!(s.cqes_written, 3);
    }
}

#[test]
fn every_supported_key_size_and_leading_zero_outputs() {
    for bits in [1024u32, 3072, 4096] {
        let rsa = Rsa::generate(bits).unwrap();
        let keys = key_blocks(&rsa);
        let k = keys.k;
        let m = model();
        let mut r = m.open(0);
        // 1^e = 1: the output must come back left-padded with zeros to the key size.
        let mut one = vec![0u8; k];
        one[k - 1] = 1;
        let (_, dw0, got) = run_one(&mut r, 0, k, &keys.public, &one);
        assert_eq!(split_dw0(dw0).1, 0);
        assert_eq!(got, one, "{bits}: 1^e = 1, left-padded to key size");
        let msg = message(k, 3);
        let mut want = vec![0u8; k];
        rsa.private_decrypt(&msg, &mut want, Padding::NONE).unwrap();
        let (_, dw0, got) = run_one(&mut r, 1, k, &keys.crt, &msg);
        assert_eq!(split_dw0(dw0).1, 0);
        assert_eq!(got, want, "{bits} CRT");
    }
}
