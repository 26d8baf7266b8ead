//! The compression round trips the device-mode tests run on whatever devices the process
//! selected (no-SVA uacce queues, VFIO queues): one-shot and streaming through the public
//! hisi-zip API, checked against the data and against the driver's counters.

use hisi_zip::{compress, decompress, Compressor, Decompressor, Format};

use crate::corpus::text;

/// Each of `one_shot` compressed and decompressed in one call, gzip and zlib; then a
/// 5 MiB gzip stream written in 100,003-byte pieces with a flush after the eighth, read
/// back in 77,777-byte pieces. Both directions must run on the device (`is_offloaded`), and
/// the counters must show the work offloaded, with no device error and no fallback.
pub fn round_trips_offloaded(one_shot: &[Vec<u8>]) {
    let before = hisi_zip::stats();
    for data in one_shot {
        for f in [Format::Gzip, Format::Zlib] {
            let z = compress(f, 6, data).unwrap();
            assert_eq!(
                decompress(f, &z).unwrap(),
                *data,
                "{f:?} one-shot, {} bytes",
                data.len()
            );
        }
    }
    let data = text(5 << 20, 9);
    let mut c = Compressor::new(Format::Gzip, 6).unwrap();
    assert!(c.is_offloaded(), "{:?}", c.fallback_reason());
    let mut z = Vec::new();
    for (i, piece) in data.chunks(100_003).enumerate() {
        c.compress(piece, &mut z).unwrap();
        if i == 7 {
            c.flush(&mut z).unwrap();
        }
    }
    c.finish(&mut z).unwrap();
    let mut d = Decompressor::new(Format::Gzip).unwrap();
    assert!(d.is_offloaded(), "{:?}", d.fallback_reason());
    let mut back = Vec::new();
    for piece in z.chunks(77_777) {
        d.decompress(piece, &mut back).unwrap();
    }
    assert!(d.is_complete());
    assert!(back == data, "stream round trip");
    let after = hisi_zip::stats();
    assert!(
        after.offloaded > before.offloaded && after.requests > before.requests + 10,
        "{after:?}"
    );
    assert_eq!(after.device_errors, before.device_errors, "{after:?}");
    assert_eq!(after.fallback_total(), before.fallback_total(), "{after:?}");
}
