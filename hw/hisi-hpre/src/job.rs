//! `RsaJob`: one RSA modular exponentiation, its operands laid out in one DMA block.

#![forbid(unsafe_code)]

use wd_core::dma::strip_leading_zeros;
use wd_core::{DmaBuf, Error, Result};

use crate::driver::Hpre;
use crate::key::{Field, KeyKind, RsaKey, IN_OFF, KEY_OFF, OUT_OFF};
use crate::sqe::{self, HpreSqe, DONE_INIT, DONE_TASK};

/// How a job ended, kept so [`RsaJob::result`] can report it any number of times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Built, not (yet) completed.
    Pending,
    /// The device finished it successfully; the result is in the block.
    Done,
    /// The device left `done` at 1: it never processed the request.
    NotProcessed,
    /// The device reported an error.
    Failed { done: u8, etype: u16, etype1: u16 },
}

/// One RSA operation (`in^exp mod n`) for an [`Hpre`] queue: key block, input and output in
/// one DMA block of that queue's pool. A private key's block is wiped when the job is
/// dropped; a public key job zeroes its operands.
#[derive(Debug)]
pub struct RsaJob {
    buf: DmaBuf,
    owner: u64,
    kind: KeyKind,
    alg: u8,
    key_bytes: usize,
    user_data: u64,
    state: State,
}

impl RsaJob {
    /// Lays `key` and `input` out in a DMA block of `hpre`'s pool: every number big-endian,
    /// right-aligned in its zeroed field.
    ///
    /// [`Error::Unsupported`] for a key size the engine does not do (or CRT primes of
    /// unequal size); [`Error::InvalidArgument`] for an input (or exponent) wider than the
    /// modulus. Leading zero bytes do not count towards a width. An input numerically ≥ n
    /// is left to the device.
    pub fn new(hpre: &Hpre, key: &RsaKey<'_>, input: &[u8]) -> Result<RsaJob> {
        let kb = key.check()?;
        let in_len = strip_leading_zeros(input).len();
        if in_len > kb {
            return Err(Error::InvalidArgument(format!(
                "RSA-{} input of {in_len} bytes is wider than the modulus",
                kb * 8
            )));
        }
        let mut buf = hpre.pool().alloc()?;
        if key.is_private() {
            // Before the first secret byte goes in: the key's fields are wiped on release
            // (the operands are not secret).
            let end = key.fields(kb).map(|f| f.off + f.width).max().unwrap_or(0);
            buf.set_sensitive(KEY_OFF, end);
        }
        for Field {
            off, width, value, ..
        } in key.fields(kb)
        {
            buf.write_be_padded(KEY_OFF + off, width, value)?;
        }
        buf.write_be_padded(IN_OFF, kb, input)?;
        buf.zero(OUT_OFF, kb);
        Ok(RsaJob {
            buf,
            owner: hpre.id(),
            kind: key.kind(),
            alg: key.alg(),
            key_bytes: kb,
            user_data: 0,
            state: State::Pending,
        })
    }

    /// Modulus bytes (and the width of the result).
    pub fn key_bytes(&self) -> usize {
        self.key_bytes
    }

    /// After completion: the result, `key_bytes` big-endian bytes with leading zeros kept;
    /// or the device's error ([`Error::Device`]). [`Error::InvalidArgument`] for a job that
    /// has not completed.
    pub fn result(&self) -> Result<Vec<u8>> {
        match self.state {
            State::Done => {
                let mut out = vec![0u8; self.key_bytes];
                self.buf.read(OUT_OFF, &mut out);
                Ok(out)
            }
            State::Pending => Err(Error::InvalidArgument("RSA job has not completed".into())),
            State::NotProcessed => Err(Error::Device(format!(
                "HPRE did not process the RSA-{} request (done still {DONE_INIT})",
                self.key_bytes * 8
            ))),
            State::Failed {
                done,
                etype,
                etype1,
            } => Err(Error::Device(format!(
                "HPRE RSA-{} request failed: done {done}, etype {etype:#x}, etype1 {etype1:#x}",
                self.key_bytes * 8
            ))),
        }
    }

    /// True once the device answered (successfully or not).
    pub fn is_complete(&self) -> bool {
        self.state != State::Pending
    }

    /// Attaches a caller value (matched up after an asynchronous `recv`).
    pub fn set_user_data(&mut self, v: u64) {
        self.user_data = v;
    }

    /// The caller value.
    pub fn user_data(&self) -> u64 {
        self.user_data
    }

    /// Service-time class: key kind (public, private, CRT) × key size, 0..12.
    pub(crate) fn class(&self) -> usize {
        let size = crate::key::SUPPORTED_KEY_BYTES
            .iter()
            .position(|&b| b == self.key_bytes)
            .unwrap_or(0);
        self.kind as usize * crate::key::SUPPORTED_KEY_BYTES.len() + size
    }

    /// The queue (driver instance) whose pool holds the block.
    pub(crate) fn owner(&self) -> u64 {
        self.owner
    }

    /// The SQE for this job with `tag`: zeroed, alg, done = 1, etype = 0, task_len1 and the
    /// block's device addresses.
    pub(crate) fn sqe(&self, tag: u16) -> HpreSqe {
        let base = self.buf.iova();
        let mut s = HpreSqe::default();
        s.set_alg(self.alg);
        s.set_done(DONE_INIT);
        s.set_etype(0);
        s.set_etype1(0);
        s.set_task_len1(sqe::task_len1(self.key_bytes));
        s.set_key(base.offset(KEY_OFF).0);
        s.set_input(base.offset(IN_OFF).0);
        s.set_output(base.offset(OUT_OFF).0);
        s.set_tag(tag);
        s
    }

    /// Checks that the SQE read back is this job's (same addresses and algorithm); the tag
    /// and slot were already matched.
    pub(crate) fn matches(&self, s: &HpreSqe) -> bool {
        let base = self.buf.iova();
        s.alg() == self.alg
            && s.key() == base.offset(KEY_OFF).0
            && s.input() == base.offset(IN_OFF).0
            && s.output() == base.offset(OUT_OFF).0
    }

    /// Records the device's verdict from the SQE read back (hardware-interface §5.5):
    /// success only for `done == 3 && etype == 0 && etype1 == 0`.
    pub(crate) fn finish(&mut self, s: &HpreSqe) {
        let (done, etype, etype1) = (s.done(), s.etype(), s.etype1());
        self.state = if done == DONE_TASK && etype == 0 && etype1 == 0 {
            State::Done
        } else if done == DONE_INIT {
            State::NotProcessed
        } else {
            State::Failed {
                done,
                etype,
                etype1,
            }
        };
    }

    /// The DMA block (tests read the layout back).
    #[cfg(test)]
    pub(crate) fn block(&self) -> &DmaBuf {
        &self.buf
    }
}

impl Drop for RsaJob {
    fn drop(&mut self) {
        // A private key's fields are wiped by the block itself (marked sensitive); the
        // operands may be a plaintext and its ciphertext, whichever the key: clear them.
        self.buf.zero(IN_OFF, self.key_bytes);
        self.buf.zero(OUT_OFF, self.key_bytes);
    }
}
