//! gzip as independent members, several requests in flight: the fast path of the `wd`
//! command for large files.
//!
//! The input is cut into pieces of up to 8 MiB; each becomes one stateless gzip request
//! (new stream, finish: the device appends that member's trailer) and one gzip member.
//! Up to [`IN_FLIGHT`] requests are on the queue at once, so every engine of the device
//! works while this thread reads input and writes output; completions may come out of
//! order and are written in input order. RFC 1952 allows any number of members; gzip and
//! zlib's gunzip read them as one file. A piece the device cannot take (incompressible
//! data larger than the output cap, a device error) becomes a member made in software.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use wd_core::{DriverQueue, Error};

use crate::codec::{compress_with, Format, Offload};
use crate::driver::{Zip, MAX_REQUEST};
use crate::header::{gzip_trailer, GzHeader, GZIP_HEADER};
use crate::job::{JobParams, ZipJob};
use crate::sqe::req;
use crate::stats::{self, Reason};

/// Requests in flight at once.
pub const IN_FLIGHT: usize = 4;

/// What [`compress_members`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MembersReport {
    /// Input bytes.
    pub bytes_in: u64,
    /// Output bytes.
    pub bytes_out: u64,
    /// Members written.
    pub members: u64,
    /// Members made in software.
    pub software_members: u64,
    /// True if the device was used at all.
    pub offloaded: bool,
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A finished member waiting for its turn to be written.
enum Done {
    Device(Box<ZipJob>, usize),
    Software(Vec<u8>),
}

/// Compresses all of `r` into `w` as gzip members (the first carrying `first_header`),
/// on the device when there is one; `progress` is told the input bytes done so far.
/// Without a device, or at a level the device does not do, one software member is made.
pub fn compress_members(
    mut r: impl Read,
    mut w: impl Write,
    level: u32,
    first_header: &GzHeader,
    mut progress: impl FnMut(u64),
) -> io::Result<MembersReport> {
    let pools = if (1..=crate::codec::MAX_DEVICE_LEVEL).contains(&level) {
        crate::pool::pools().ok()
    } else {
        None
    };
    let mut rep = MembersReport::default();
    let Some(pools) = pools else {
        let mut e = crate::io::WdEncoder::with_options(
            &mut w,
            Format::Gzip,
            level,
            Offload::Auto,
            Some(first_header.clone()),
        )?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = read_full(&mut r, &mut buf)?;
            if n == 0 {
                break;
            }
            e.write_all(&buf[..n])?;
            rep.bytes_in += n as u64;
            progress(rep.bytes_in);
        }
        e.finish()?;
        rep.members = 1;
        rep.software_members = 1;
        return Ok(rep);
    };
    stats::offloaded();
    rep.offloaded = true;
    let header = first_header.to_bytes();
    let result = pools.comp.with(|q| {
        Ok(run(
            q,
            &mut r,
            &mut w,
            level,
            &header,
            &mut rep,
            &mut progress,
        ))
    });
    match result {
        Ok(r) => r.map(|()| rep),
        Err(e) => Err(io::Error::other(e)),
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    q: &mut DriverQueue<Zip>,
    r: &mut impl Read,
    w: &mut impl Write,
    level: u32,
    first_header: &[u8],
    rep: &mut MembersReport,
    progress: &mut impl FnMut(u64),
) -> io::Result<()> {
    let wd = |e: Error| io::Error::other(e);
    let mut free: Vec<ZipJob> = Vec::new();
    let mut host = vec![0u8; MAX_REQUEST];
    let mut next_seq = 0u64; // next piece to read
    let mut write_seq = 0u64; // next member to write
    let mut in_flight: BTreeMap<u64, usize> = BTreeMap::new(); // seq -> piece length
    let mut done: BTreeMap<u64, Done> = BTreeMap::new();
    let mut eof = false;
    loop {
        // Fill the queue.
        while !eof && in_flight.len() < IN_FLIGHT {
            let n = read_full(r, &mut host)?;
            if n == 0 {
                eof = true;
                break;
            }
            let mut job = match free.pop() {
                Some(j) => j,
                None => ZipJob::new(q.driver()).map_err(wd)?,
            };
            job.write_input(0, &host[..n]).map_err(wd)?;
            let params = JobParams {
                req: req::GZIP,
                input_len: n,
                dest_len: MAX_REQUEST,
                finish: true,
                stateful: false,
                new_stream: true,
                ctx_words: [0; 3],
                isize: 0,
                checksum: 0,
            };
            job.prepare(params, None).map_err(wd)?;
            let seq = next_seq;
            next_seq += 1;
            job.set_user_data(seq);
            in_flight.insert(seq, n);
            match q.send(job) {
                Ok(()) => {}
                Err(e) => {
                    // Ring full cannot happen with IN_FLIGHT below the depth; anything
                    // else: this piece goes to software.
                    in_flight.remove(&seq);
                    free.push(e.msg);
                    done.insert(seq, Done::Software(software_member(&host[..n], level)?));
                }
            }
            rep.bytes_in += n as u64;
        }
        // Write what is ready, in order.
        while let Some(d) = done.remove(&write_seq) {
            let hdr: &[u8] = if write_seq == 0 {
                first_header
            } else {
                &GZIP_HEADER
            };
            w.write_all(hdr)?;
            rep.bytes_out += hdr.len() as u64;
            match d {
                Done::Device(job, produced) => {
                    let mut out = vec![0u8; produced];
                    job.read_output(0, &mut out);
                    w.write_all(&out)?;
                    rep.bytes_out += produced as u64;
                    free.push(*job);
                }
                Done::Software(m) => {
                    w.write_all(&m)?;
                    rep.bytes_out += m.len() as u64;
                    rep.software_members += 1;
                }
            }
            rep.members += 1;
            write_seq += 1;
            progress(rep.bytes_in);
        }
        if q.in_flight() == 0 {
            if eof && done.is_empty() {
                break;
            }
            continue;
        }
        let job = q.recv_sync().map_err(wd)?;
        let res = job
            .result()
            .copied()
            .ok_or_else(|| io::Error::other("ZIP job without a result"))?;
        let seq = job.user_data();
        let Some(len) = in_flight.remove(&seq) else {
            return Err(io::Error::other(
                "ZIP completion matches no piece in flight",
            ));
        };
        if res.is_ok() && res.consumed == len {
            stats::request(res.consumed, res.produced);
            done.insert(seq, Done::Device(Box::new(job), res.produced));
        } else {
            if res.status != crate::sqe::status::DEST_TOO_SMALL {
                stats::device_error();
            }
            stats::fallback(Reason::DeviceError);
            let mut piece = vec![0u8; len];
            job.read_input(0, &mut piece);
            free.push(job);
            done.insert(seq, Done::Software(software_member(&piece, level)?));
        }
    }
    Ok(())
}

/// A gzip member body (deflate payload and trailer, no header) made in software.
fn software_member(piece: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let raw = compress_with(Format::Deflate, level, piece, Offload::Never)?;
    let mut m = raw;
    m.extend_from_slice(&gzip_trailer(
        zlib_rs::crc32::crc32(0, piece),
        piece.len() as u32,
    ));
    Ok(m)
}
