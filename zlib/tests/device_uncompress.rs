//! uncompress and uncompress2 on the device model, alone in their process so that the
//! offload counter they are checked by moves for them only.

mod common;
use common::*;

use std::ffi::c_ulong;

/// uncompress and uncompress2 decode on the device (counted), with zlib's results: the
/// whole stream, a destination too small (zlib's code, bytes written and consumed count),
/// a truncated stream, and a zero-length destination.
#[test]
fn uncompress_on_the_device() {
    setup();
    let (sys, wdz) = libs();
    let data = corpus(1 << 20, 11);
    let (z, _, _) = deflate_with(
        sys,
        &data,
        (6, 15, 8, 0),
        &[1 << 20],
        1 << 16,
        &[Z_NO_FLUSH],
    );
    let before = counter_or_zero();
    let run = |lib: &Lib, src: &[u8], cap: usize| {
        let mut out = vec![0u8; cap.max(1)];
        let (mut dl, mut sl) = (cap as c_ulong, src.len() as c_ulong);
        // SAFETY: zlib's prototype; `out` has `cap` bytes (at least one), `src` is live.
        let r = unsafe { (lib.uncompress2)(out.as_mut_ptr(), &mut dl, src.as_ptr(), &mut sl) };
        out.truncate(dl as usize);
        let mut dl1 = cap as c_ulong;
        let mut out1 = vec![0u8; cap.max(1)];
        // SAFETY: as above.
        let r1 =
            unsafe { (lib.uncompress)(out1.as_mut_ptr(), &mut dl1, src.as_ptr(), src.len() as _) };
        out1.truncate(dl1 as usize);
        (r, dl, sl, out, r1, out1)
    };
    for (src, cap) in [
        (&z[..], data.len()),
        (&z[..], data.len() / 3),
        (&z[..z.len() - 9], data.len()),
        (&z[..], 0),
    ] {
        let a = run(sys, src, cap);
        let b = run(wdz, src, cap);
        assert!(
            a == b,
            "uncompress of {} bytes into {cap}: {:?} vs {:?}",
            src.len(),
            (a.0, a.1, a.2, a.4),
            (b.0, b.1, b.2, b.4)
        );
    }
    assert_eq!(run(wdz, &z, data.len()).3, data);
    assert!(
        counter_in(&dir(), "inflate_offloaded") > before,
        "uncompress did not use the device"
    );
}

fn dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("wdz-uncompress-{}", std::process::id()))
}

fn setup() {
    std::fs::create_dir_all(dir()).unwrap();
    std::env::set_var("WD_DEVICES", "model");
    std::env::set_var("WD_MODEL_ENGINES", "2");
    std::env::set_var("WD_ZLIB_STATS_DIR", dir());
}

fn counter_or_zero() -> u64 {
    std::panic::catch_unwind(|| counter_in(&dir(), "inflate_offloaded")).unwrap_or(0)
}
