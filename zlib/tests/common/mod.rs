//! Shared by the differential tests: the system zlib (`libz.so.1`) and our `libwdz.so`,
//! both dlopen'ed (RTLD_LOCAL) into the test process, called through the same z_stream
//! layout, compared call by call.

#![allow(
    dead_code,
    non_snake_case,
    non_camel_case_types,
    clippy::manual_c_str_literals
)]

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

/// zlib's z_stream (LP64).
#[repr(C)]
#[derive(Debug)]
pub struct ZStream {
    pub next_in: *const u8,
    pub avail_in: c_uint,
    pub total_in: c_ulong,
    pub next_out: *mut u8,
    pub avail_out: c_uint,
    pub total_out: c_ulong,
    pub msg: *const c_char,
    pub state: *mut c_void,
    pub zalloc: *const c_void,
    pub zfree: *const c_void,
    pub opaque: *mut c_void,
    pub data_type: c_int,
    pub adler: c_ulong,
    pub reserved: c_ulong,
}

impl ZStream {
    pub fn new() -> Box<ZStream> {
        // SAFETY: all-zero is zlib's documented initial z_stream (null allocators).
        Box::new(unsafe { std::mem::zeroed() })
    }
}

/// zlib's gz_header.
#[repr(C)]
#[derive(Debug)]
pub struct GzHeader {
    pub text: c_int,
    pub time: c_ulong,
    pub xflags: c_int,
    pub os: c_int,
    pub extra: *mut u8,
    pub extra_len: c_uint,
    pub extra_max: c_uint,
    pub name: *mut u8,
    pub name_max: c_uint,
    pub comment: *mut u8,
    pub comm_max: c_uint,
    pub hcrc: c_int,
    pub done: c_int,
}

pub const Z_NO_FLUSH: c_int = 0;
pub const Z_PARTIAL_FLUSH: c_int = 1;
pub const Z_SYNC_FLUSH: c_int = 2;
pub const Z_FULL_FLUSH: c_int = 3;
pub const Z_FINISH: c_int = 4;
pub const Z_BLOCK: c_int = 5;
pub const Z_OK: c_int = 0;
pub const Z_STREAM_END: c_int = 1;
pub const Z_NEED_DICT: c_int = 2;
pub const Z_STREAM_ERROR: c_int = -2;
pub const Z_DATA_ERROR: c_int = -3;
pub const Z_BUF_ERROR: c_int = -5;

type Strm = *mut ZStream;

/// The entry points the tests call, from one library.
pub struct Lib {
    pub name: &'static str,
    pub deflateInit2_: unsafe extern "C" fn(
        Strm,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        *const c_char,
        c_int,
    ) -> c_int,
    pub deflate: unsafe extern "C" fn(Strm, c_int) -> c_int,
    pub deflateEnd: unsafe extern "C" fn(Strm) -> c_int,
    pub deflateReset: unsafe extern "C" fn(Strm) -> c_int,
    pub deflateParams: unsafe extern "C" fn(Strm, c_int, c_int) -> c_int,
    pub deflateSetDictionary: unsafe extern "C" fn(Strm, *const u8, c_uint) -> c_int,
    pub deflateBound: unsafe extern "C" fn(Strm, c_ulong) -> c_ulong,
    pub deflateCopy: unsafe extern "C" fn(Strm, Strm) -> c_int,
    pub deflatePrime: unsafe extern "C" fn(Strm, c_int, c_int) -> c_int,
    pub deflateSetHeader: unsafe extern "C" fn(Strm, *mut GzHeader) -> c_int,
    pub inflateInit2_: unsafe extern "C" fn(Strm, c_int, *const c_char, c_int) -> c_int,
    pub inflate: unsafe extern "C" fn(Strm, c_int) -> c_int,
    pub inflateEnd: unsafe extern "C" fn(Strm) -> c_int,
    pub inflateReset: unsafe extern "C" fn(Strm) -> c_int,
    pub inflateReset2: unsafe extern "C" fn(Strm, c_int) -> c_int,
    pub inflateSetDictionary: unsafe extern "C" fn(Strm, *const u8, c_uint) -> c_int,
    pub inflateGetHeader: unsafe extern "C" fn(Strm, *mut GzHeader) -> c_int,
    pub inflateSync: unsafe extern "C" fn(Strm) -> c_int,
    pub inflateCopy: unsafe extern "C" fn(Strm, Strm) -> c_int,
    pub inflatePrime: unsafe extern "C" fn(Strm, c_int, c_int) -> c_int,
    pub compress2: unsafe extern "C" fn(*mut u8, *mut c_ulong, *const u8, c_ulong, c_int) -> c_int,
    pub compress: unsafe extern "C" fn(*mut u8, *mut c_ulong, *const u8, c_ulong) -> c_int,
    pub compressBound: unsafe extern "C" fn(c_ulong) -> c_ulong,
    pub uncompress: unsafe extern "C" fn(*mut u8, *mut c_ulong, *const u8, c_ulong) -> c_int,
    pub uncompress2: unsafe extern "C" fn(*mut u8, *mut c_ulong, *const u8, *mut c_ulong) -> c_int,
    pub crc32: unsafe extern "C" fn(c_ulong, *const u8, c_uint) -> c_ulong,
    pub crc32_z: unsafe extern "C" fn(c_ulong, *const u8, usize) -> c_ulong,
    pub adler32: unsafe extern "C" fn(c_ulong, *const u8, c_uint) -> c_ulong,
    pub adler32_z: unsafe extern "C" fn(c_ulong, *const u8, usize) -> c_ulong,
    pub crc32_combine: unsafe extern "C" fn(c_ulong, c_ulong, i64) -> c_ulong,
    pub crc32_combine_gen: unsafe extern "C" fn(i64) -> c_ulong,
    pub crc32_combine_op: unsafe extern "C" fn(c_ulong, c_ulong, c_ulong) -> c_ulong,
    pub adler32_combine: unsafe extern "C" fn(c_ulong, c_ulong, i64) -> c_ulong,
    pub get_crc_table: unsafe extern "C" fn() -> *const u32,
    pub zError: unsafe extern "C" fn(c_int) -> *const c_char,
    pub zlibVersion: unsafe extern "C" fn() -> *const c_char,
    pub zlibCompileFlags: unsafe extern "C" fn() -> c_ulong,
    pub gzopen: unsafe extern "C" fn(*const c_char, *const c_char) -> *mut c_void,
    pub gzwrite: unsafe extern "C" fn(*mut c_void, *const c_void, c_uint) -> c_int,
    pub gzread: unsafe extern "C" fn(*mut c_void, *mut c_void, c_uint) -> c_int,
    pub gzclose: unsafe extern "C" fn(*mut c_void) -> c_int,
    pub gzprintf: unsafe extern "C" fn(*mut c_void, *const c_char, ...) -> c_int,
    pub gzputs: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
    pub gzgets: unsafe extern "C" fn(*mut c_void, *mut c_char, c_int) -> *mut c_char,
    pub gzseek: unsafe extern "C" fn(*mut c_void, i64, c_int) -> i64,
    pub gztell: unsafe extern "C" fn(*mut c_void) -> i64,
    pub gzeof: unsafe extern "C" fn(*mut c_void) -> c_int,
}

unsafe fn sym<T: Copy>(h: *mut c_void, name: &str) -> T {
    let c = CString::new(name).unwrap();
    // SAFETY: h is a dlopen handle; the symbol's type is zlib's prototype for `name`.
    let p = unsafe { libc::dlsym(h, c.as_ptr()) };
    assert!(!p.is_null(), "{name} missing");
    // SAFETY: T is a function pointer type of pointer size.
    unsafe { std::mem::transmute_copy(&p) }
}

fn open(name: &'static str, path: &str) -> Lib {
    let c = CString::new(path).unwrap();
    // SAFETY: dlopen of a shared library path.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!h.is_null(), "dlopen {path}");
    macro_rules! s {
        ($($f:ident),*) => {
            // SAFETY: each field is typed as zlib's prototype.
            unsafe { Lib { name, $($f: sym(h, stringify!($f))),* } }
        };
    }
    s!(
        deflateInit2_,
        deflate,
        deflateEnd,
        deflateReset,
        deflateParams,
        deflateSetDictionary,
        deflateBound,
        deflateCopy,
        deflatePrime,
        deflateSetHeader,
        inflateInit2_,
        inflate,
        inflateEnd,
        inflateReset,
        inflateReset2,
        inflateSetDictionary,
        inflateGetHeader,
        inflateSync,
        inflateCopy,
        inflatePrime,
        compress2,
        compress,
        compressBound,
        uncompress,
        uncompress2,
        crc32,
        crc32_z,
        adler32,
        adler32_z,
        crc32_combine,
        crc32_combine_gen,
        crc32_combine_op,
        adler32_combine,
        get_crc_table,
        zError,
        zlibVersion,
        zlibCompileFlags,
        gzopen,
        gzwrite,
        gzread,
        gzclose,
        gzprintf,
        gzputs,
        gzgets,
        gzseek,
        gztell,
        gzeof
    )
}

/// Our library, next to the test binary (target/<profile>/libwdz.so).
pub fn wdz_path() -> PathBuf {
    // `cargo test` builds the cdylib next to the test binaries (deps/); `cargo build`
    // puts it one level up.
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let fresh = deps.join("libwdz.so");
    if fresh.is_file() {
        return fresh;
    }
    deps.parent().unwrap().join("libwdz.so")
}

/// (system zlib, ours).
pub fn libs() -> &'static (Lib, Lib) {
    static L: OnceLock<(Lib, Lib)> = OnceLock::new();
    L.get_or_init(|| {
        (
            open("zlib", "libz.so.1"),
            open("wdz", wdz_path().to_str().unwrap()),
        )
    })
}

pub const VERSION: &[u8] = b"1.2.13\0";
pub const SIZE: c_int = std::mem::size_of::<ZStream>() as c_int;

/// Compressible test data of `n` bytes with some incompressible stretches.
pub fn corpus(n: usize, seed: u64) -> Vec<u8> {
    let mut r = fastrand::Rng::with_seed(seed);
    let words: [&[u8]; 8] = [
        b"deflate ",
        b"stream ",
        b"the ",
        b"zip engine ",
        b"of ",
        b"a\n",
        b"1234 ",
        b"nginx ",
    ];
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        if r.u8(..) < 8 {
            for _ in 0..r.usize(1..300) {
                v.push(r.u8(..));
            }
        } else {
            v.extend_from_slice(words[r.usize(..8)]);
        }
    }
    v.truncate(n);
    v
}

/// One call's observable result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub ret: c_int,
    pub avail_in: c_uint,
    pub avail_out: c_uint,
    pub total_in: c_ulong,
    pub total_out: c_ulong,
    pub adler: c_ulong,
}

/// A deflate stream of `lib` with these parameters (`deflateInit2`, checked).
pub fn deflate_init(
    lib: &Lib,
    (level, wbits, mem, strategy): (c_int, c_int, c_int, c_int),
) -> Box<ZStream> {
    let mut s = ZStream::new();
    // SAFETY: a zeroed stream, zlib's prototype and version.
    let r = unsafe {
        (lib.deflateInit2_)(
            &mut *s,
            level,
            8,
            wbits,
            mem,
            strategy,
            VERSION.as_ptr().cast(),
            SIZE,
        )
    };
    assert_eq!(r, Z_OK, "{}", lib.name);
    s
}

/// A temporary directory for this test process's counter files (`WD_ZLIB_STATS_DIR`).
pub fn stats_dir() -> &'static std::path::Path {
    static D: OnceLock<tempfile::TempDir> = OnceLock::new();
    D.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// Deflates `data` with `lib`: input in chunks from `in_sizes` (cycled), output windows
/// of `out_size`, the flush of each input chunk from `flushes` (cycled), then Z_FINISH.
/// Returns the output, the byte offsets (input, output) after each sync/full flush, and
/// the final adler.
pub fn deflate_with(
    lib: &Lib,
    data: &[u8],
    (level, wbits, mem, strategy): (c_int, c_int, c_int, c_int),
    in_sizes: &[usize],
    out_size: usize,
    flushes: &[c_int],
) -> (Vec<u8>, Vec<(usize, usize)>, c_ulong) {
    let mut s = deflate_init(lib, (level, wbits, mem, strategy));
    // SAFETY: zlib's prototypes on an initialised stream, buffers that outlive each call.
    unsafe {
        let mut out = Vec::new();
        let mut marks = Vec::new();
        let mut buf = vec![0u8; out_size];
        let mut pos = 0;
        let mut k = 0;
        loop {
            let n = in_sizes[k % in_sizes.len()].min(data.len() - pos);
            let flush = if pos + n == data.len() {
                Z_FINISH
            } else {
                flushes[k % flushes.len()]
            };
            k += 1;
            s.next_in = data[pos..].as_ptr();
            s.avail_in = n as c_uint;
            loop {
                s.next_out = buf.as_mut_ptr();
                s.avail_out = out_size as c_uint;
                let before_in = s.avail_in;
                let r = (lib.deflate)(&mut *s, flush);
                let got = out_size - s.avail_out as usize;
                out.extend_from_slice(&buf[..got]);
                assert!(
                    r == Z_OK || r == Z_STREAM_END || r == Z_BUF_ERROR,
                    "{}: deflate {r}",
                    lib.name
                );
                if r == Z_BUF_ERROR {
                    assert!(
                        got == 0 && before_in == s.avail_in,
                        "{}: Z_BUF_ERROR with progress",
                        lib.name
                    );
                    assert!(
                        flush != Z_FINISH,
                        "{}: Z_BUF_ERROR at Z_FINISH with room",
                        lib.name
                    );
                    break;
                }
                assert!(
                    out.len() <= 2 * data.len() + (1 << 20),
                    "{}: runaway output (flush {flush})",
                    lib.name
                );
                if r == Z_STREAM_END {
                    break;
                }
                if s.avail_out != 0 && s.avail_in == 0 {
                    break;
                }
            }
            pos += n - s.avail_in as usize;
            assert_eq!(s.avail_in, 0);
            assert_eq!(s.total_in as usize, pos, "{}: total_in", lib.name);
            assert_eq!(s.total_out as usize, out.len(), "{}: total_out", lib.name);
            if flush == Z_SYNC_FLUSH || flush == Z_FULL_FLUSH {
                marks.push((pos, out.len()));
            }
            if flush == Z_FINISH {
                break;
            }
        }
        let adler = s.adler;
        assert_eq!((lib.deflateEnd)(&mut *s), Z_OK, "{}: deflateEnd", lib.name);
        (out, marks, adler)
    }
}

/// Inflates `data` with `lib` in input chunks of `in_size` and output windows of
/// `out_size`; returns the output, every call's observables and the final code.
pub fn inflate_with(
    lib: &Lib,
    data: &[u8],
    wbits: c_int,
    in_size: usize,
    out_size: usize,
) -> (Vec<u8>, Vec<Call>, c_int) {
    let mut s = ZStream::new();
    let mut calls = Vec::new();
    // SAFETY: as deflate_with.
    unsafe {
        assert_eq!(
            (lib.inflateInit2_)(&mut *s, wbits, VERSION.as_ptr().cast(), SIZE),
            Z_OK
        );
        let mut out = Vec::new();
        let mut buf = vec![0u8; out_size];
        let mut pos = 0;
        let ret = loop {
            let n = in_size.min(data.len() - pos);
            s.next_in = data[pos..].as_ptr();
            s.avail_in = n as c_uint;
            s.next_out = buf.as_mut_ptr();
            s.avail_out = out_size as c_uint;
            let r = (lib.inflate)(&mut *s, Z_NO_FLUSH);
            out.extend_from_slice(&buf[..out_size - s.avail_out as usize]);
            pos += n - s.avail_in as usize;
            calls.push(Call {
                ret: r,
                avail_in: s.avail_in,
                avail_out: s.avail_out,
                total_in: s.total_in,
                total_out: s.total_out,
                adler: s.adler,
            });
            if r != Z_OK && !(r == Z_BUF_ERROR && pos < data.len()) {
                if r < 0 && r != Z_BUF_ERROR {
                    assert!(!s.msg.is_null(), "{}: error {r} without msg", lib.name);
                }
                break r;
            }
            if r == Z_BUF_ERROR && pos >= data.len() {
                break r;
            }
            if pos >= data.len() && s.avail_out != 0 {
                break r;
            }
        };
        (lib.inflateEnd)(&mut *s);
        (out, calls, ret)
    }
}

/// The system zlib's inflate of `data` (whole), which must end the stream.
pub fn sys_inflate(data: &[u8], wbits: c_int) -> Vec<u8> {
    let (out, _, r) = inflate_with(&libs().0, data, wbits, data.len().max(1), 1 << 16);
    assert_eq!(r, Z_STREAM_END, "system inflate of our output");
    out
}

/// The system zlib inflates a prefix (a sync-flushed stream so far) to `want` exactly.
pub fn sys_inflate_prefix(data: &[u8], wbits: c_int) -> Vec<u8> {
    let (out, _, r) = inflate_with(&libs().0, data, wbits, data.len().max(1), 1 << 16);
    assert!(
        r == Z_OK || r == Z_BUF_ERROR,
        "prefix inflate ended with {r}"
    );
    out
}

pub fn cstr(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: a NUL-terminated string from zlib.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// A counter of this process's stats file in `dir` (the library's `WD_ZLIB_STATS_DIR`).
pub fn counter_in(dir: &std::path::Path, name: &str) -> u64 {
    counter_of(dir, std::process::id(), name)
}

/// A counter of process `pid`'s stats file in `dir`.
pub fn counter_of(dir: &std::path::Path, pid: u32, name: &str) -> u64 {
    let f = std::fs::read(dir.join(format!("{pid}.zlib"))).expect("stats file");
    let w: Vec<u64> = f
        .chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    let names = wd_core::counters::zlib::NAMES;
    w[4 + names.iter().position(|n| *n == name).unwrap()]
}
