//! [`FakeKernel`]: the test twin of the uacce seam. It answers like the kernel's uacce and
//! hisi_qm code (docs/hardware-interface.md §1.3, §2), over a fixture sysfs tree, and its
//! device side (the memory behind the mappings, and whatever computes) is plugged in
//! through [`FakeDeviceSide`]: [`MemorySide`] here (plain memory, records what it is told),
//! the device model in `hisi-model` (`uacce_fake`).
//!
//! Rules enforced (errno as the kernel gives it):
//! - open: `ENOENT` for a node that does not exist; `EBUSY` when the device's instances
//!   are all in use. Each open fd is one queue (state INIT) with a queue number.
//! - mmap: `EBADF`; `ENXIO` unless INIT or STARTED; `EACCES` on a descriptor not opened
//!   read-write; `EINVAL` for an offset that is not a page multiple, a region index ≥ 2, a
//!   DUS length other than `region_dus_size` or an MMIO length above `region_mmio_size`;
//!   `EEXIST` for a region already mapped on the fd (cleared again by its munmap).
//! - ioctl: `ENXIO` after PUT_Q (ZOMBIE); SET_QP_CTX `EINVAL` for qc_type > 2, returns the
//!   queue number; SET_QP_INFO `EINVAL` on kernels without it; START_Q `EINVAL` unless
//!   INIT, latches the qc_type set so far (0 if none, as hisi_qm does); PUT_Q stops and
//!   frees the queue; any other number `EINVAL`. The numbering is the fixture kernel's
//!   (mainline or legacy openEuler), so the wrong one fails.
//! - no-SVA devices (api with openEuler's `_noiommu` suffix, flags without SVA): mmap of
//!   region index 2 (`UACCE_QFRT_SS`) gets static-share memory, `len` a whole number of
//!   64 KiB granules (`EINVAL` otherwise, `ENOMEM` above the fixture's `ss_max`), made by
//!   the device side and given "physical" device addresses: with uadk's header (mainline
//!   numbering) in slices of at most `ss_slice` bytes, not contiguous with each other;
//!   with the legacy openEuler numbering in one piece. GET_SS_DMA answers as those kernels
//!   do (`EINVAL` on an SVA device or before the region is mapped; uadk's header: slice
//!   index in, `dma | size >> 16` out, slices left returned, `EINVAL` past the last;
//!   legacy: the one address out, 0 returned). On an SVA device index 2 is `EINVAL`.
//! - poll: waits on the device side's completion event; nothing (0 events) unless STARTED.
//! - close: like PUT_Q, then frees the fd; mappings stay valid until munmapped. A close in
//!   a forked child only drops the child's reference.
//! - The fake is stricter than Linux where that catches bugs: munmap must name exactly one
//!   whole mapping (`EINVAL` otherwise), and a queue fd used (mmap/ioctl/poll) by another
//!   process incarnation than its opener is recorded as a violation ([`FakeKernel::violations`]).
//!
//! A fixture is a directory with `sys/class/uacce/<dev>/...` (the attributes of
//! hardware-interface §1.2) and a `kernel` file of `key = value` lines: `page_size`
//! (default 4096), `osrelease` (default `6.6.0`), `abi` (`mainline` | `openeuler`),
//! `set_qp_info` (`yes` | `no`), `depth` (default 1024), `ss_slice` and `ss_max` (bytes of
//! one static-share slice and of a whole region; default 16 MiB and 64 MiB). Region sizes are checked against
//! the geometry at load, so a fixture cannot drift from hardware-interface §3.3.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::fork::Epoch;
use crate::region::{MmioHook, Region};
use crate::uacce::ioctl::{
    self, Abi, HisiQpCtx, HisiQpInfo, SsDmaAnswer, UACCE_CMD_QM_SET_QP_CTX,
    UACCE_CMD_QM_SET_QP_INFO, UACCE_GRAN_SIZE, UACCE_QFRT_DUS, UACCE_QFRT_MMIO, UACCE_QFRT_SS,
};
use crate::uacce::kernel::{engine_sqe_size, expected_dus_size, is_no_sva_api};
use crate::uacce::sys::{Fd, IoctlArg, Mapping, RealSys, UacceSys, OSRELEASE};
use crate::uacce::UacceBackend;

/// `QM_MAX_QC_TYPE`.
pub const MAX_QC_TYPE: u16 = 2;
/// First descriptor number the fake hands out (never a real descriptor of the process).
pub const FIRST_FD: Fd = 1 << 20;
/// The first "physical" device address the fake gives static-share memory (far above any
/// address the model could confuse with a host address it was handed by mistake).
pub const SS_DMA_BASE: u64 = 0x80_0000_0000;

/// A device of the fixture, as its device side needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeDevice {
    /// `hisi_hpre-1`.
    pub name: String,
    /// `hisi_hpre`.
    pub driver: String,
    /// `hisi_qm_v2`.
    pub api: String,
    /// `region_dus_size`.
    pub dus_size: usize,
    /// `region_mmio_size`.
    pub mmio_size: usize,
    /// The fake kernel's page size.
    pub page_size: usize,
    /// Bytes per SQE of the engine.
    pub sqe_size: u32,
    /// SQ and CQ depth.
    pub depth: u16,
    /// True for a no-SVA device (static-share region, physical device addresses).
    pub no_sva: bool,
}

/// One slice of a static-share region as the device sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsPiece {
    /// Device ("physical") address of its first byte.
    pub dma: u64,
    /// Offset in the region's memory.
    pub off: usize,
    /// Bytes.
    pub len: usize,
}

/// One queue's hardware side: its memory and its start/stop.
pub trait FakeHwQueue: Send + Sync + fmt::Debug {
    /// The DUS memory, `dus_size` bytes (SQ, CQ, status page).
    fn dus(&self) -> Region;
    /// The MMIO memory, `mmio_size` bytes.
    fn mmio(&self) -> Region;
    /// What sees stores into the MMIO mapping (the doorbell), if anything.
    fn mmio_hook(&self) -> Option<Arc<dyn MmioHook>>;
    /// START_Q: the queue runs with `qc_type` from now on.
    fn start(&self, qc_type: u16) -> io::Result<()>;
    /// PUT_Q, close or device removal of a started queue.
    fn stop(&self);
    /// Blocks until the queue raises its completion event or `timeout` passes.
    fn wait(&self, timeout: Duration) -> bool;
    /// A no-SVA queue's static-share region: memory of `len` bytes whose pieces the device
    /// reaches at the given device addresses (and nothing else). Made at its mmap.
    fn static_share(&self, len: usize, pieces: &[SsPiece]) -> io::Result<Region>;
}

/// The device behind a fake kernel.
pub trait FakeDeviceSide: Send + Sync + fmt::Debug {
    /// A new queue's memory and state, made at open as the kernel makes the QP: before the
    /// qc_type is known.
    fn create_queue(&self, dev: &FakeDevice, qid: u16) -> io::Result<Arc<dyn FakeHwQueue>>;
}

/// Kernel-wide settings of a fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeKernelConfig {
    /// Page size reported through the seam.
    pub page_size: usize,
    /// `/proc/sys/kernel/osrelease`.
    pub osrelease: String,
    /// The numbering the fake kernel answers to.
    pub abi: Abi,
    /// False for kernels without UACCE_CMD_QM_SET_QP_INFO.
    pub set_qp_info: bool,
    /// SQ and CQ depth of every queue.
    pub depth: u16,
    /// Largest static-share slice (uadk's header kernels), bytes.
    pub ss_slice: usize,
    /// Largest static-share region of one queue, bytes.
    pub ss_max: usize,
}

impl Default for FakeKernelConfig {
    fn default() -> Self {
        FakeKernelConfig {
            page_size: 4096,
            osrelease: "6.6.0".into(),
            abi: Abi::Mainline,
            set_qp_info: true,
            depth: 1024,
            ss_slice: 16 << 20,
            ss_max: 64 << 20,
        }
    }
}

impl FakeKernelConfig {
    /// Parses a fixture's `kernel` file.
    pub fn parse(text: &str) -> io::Result<FakeKernelConfig> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let mut c = FakeKernelConfig::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| bad(format!("kernel file: {line:?} is not key = value")))?;
            let (k, v) = (k.trim(), v.trim());
            match k {
                "page_size" => {
                    c.page_size = v.parse().map_err(|_| bad(format!("page_size {v}")))?
                }
                "osrelease" => c.osrelease = v.to_string(),
                "abi" => c.abi = v.parse().map_err(bad)?,
                "set_qp_info" => c.set_qp_info = matches!(v, "yes" | "true" | "1"),
                "depth" => c.depth = v.parse().map_err(|_| bad(format!("depth {v}")))?,
                "ss_slice" => c.ss_slice = v.parse().map_err(|_| bad(format!("ss_slice {v}")))?,
                "ss_max" => c.ss_max = v.parse().map_err(|_| bad(format!("ss_max {v}")))?,
                _ => return Err(bad(format!("kernel file: unknown key {k:?}"))),
            }
        }
        if !c.page_size.is_power_of_two() || c.page_size < 4096 {
            return Err(bad(format!("page_size {}", c.page_size)));
        }
        let gran = UACCE_GRAN_SIZE as usize;
        if c.ss_slice == 0 || !c.ss_slice.is_multiple_of(gran) || c.ss_max < c.ss_slice {
            return Err(bad(format!(
                "ss_slice {} must be a non-zero multiple of 64 KiB, ss_max {} at least that",
                c.ss_slice, c.ss_max
            )));
        }
        Ok(c)
    }
}

/// One system call as the fake kernel saw it, with its result (`Err` holds the errno).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `open(path, flags)`.
    Open {
        /// Path opened.
        path: PathBuf,
        /// Flags passed.
        flags: i32,
        /// The fd or errno.
        result: Result<Fd, i32>,
    },
    /// `mmap(len, offset)` on `fd`.
    Mmap {
        /// Descriptor.
        fd: Fd,
        /// Length.
        len: usize,
        /// File offset.
        offset: u64,
        /// Errno on failure.
        result: Result<(), i32>,
    },
    /// `munmap` of a mapping of `fd` (region index) of `len` bytes.
    Munmap {
        /// Descriptor the mapping was made on.
        fd: Fd,
        /// Region index.
        index: u64,
        /// Length.
        len: usize,
    },
    /// `ioctl(fd, request)`.
    Ioctl {
        /// Descriptor.
        fd: Fd,
        /// Request number.
        request: u32,
        /// Return value or errno.
        result: Result<i32, i32>,
    },
    /// `poll(fd)`.
    Poll {
        /// Descriptor.
        fd: Fd,
    },
    /// `close(fd)`.
    Close {
        /// Descriptor.
        fd: Fd,
        /// Errno on failure.
        result: Result<(), i32>,
    },
}

/// A queue's uacce state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    /// Opened, not started.
    Init,
    /// START_Q done.
    Started,
    /// PUT_Q done or the device was removed.
    Zombie,
}

/// A queue as the fake kernel holds it (for test assertions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueView {
    /// Descriptor.
    pub fd: Fd,
    /// Device name.
    pub device: String,
    /// Queue number.
    pub qid: u16,
    /// State.
    pub state: QueueState,
    /// The qc_type latched at START_Q.
    pub latched_qc_type: Option<u16>,
}

struct Dev {
    info: FakeDevice,
    total: u32,
    in_use: BTreeSet<u16>,
    removed: bool,
}

struct File {
    dev: String,
    qid: u16,
    writable: bool,
    state: QueueState,
    mapped: [bool; 3],
    /// The static-share region's pieces, once mapped.
    ss: Option<Vec<SsPiece>>,
    qc_type: u16,
    latched: Option<u16>,
    hw: Arc<dyn FakeHwQueue>,
    epoch: Epoch,
}

struct MapEntry {
    fd: Fd,
    index: u64,
    len: usize,
    // Keeps the memory alive while mapped, as a VMA holds its pages.
    _region: Region,
}

#[derive(Default)]
struct State {
    next_fd: Fd,
    files: HashMap<Fd, File>,
    maps: HashMap<usize, MapEntry>,
    devs: BTreeMap<String, Dev>,
    trace: Vec<Call>,
    violations: Vec<String>,
    next_ss_dma: u64,
}

/// A fake kernel over a fixture (see the module documentation).
pub struct FakeKernel {
    root: PathBuf,
    config: FakeKernelConfig,
    side: Arc<dyn FakeDeviceSide>,
    state: Mutex<State>,
    polls: AtomicU64,
}

impl fmt::Debug for FakeKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeKernel")
            .field("root", &self.root)
            .field("config", &self.config)
            .finish()
    }
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl FakeKernel {
    /// A fake kernel over the fixture directory `root` (with `sys/class/uacce` and an
    /// optional `kernel` file), its devices backed by `side`. Fails if a device's region
    /// sizes do not match the geometry of hardware-interface §3.3–3.4.
    pub fn from_fixture(
        root: impl Into<PathBuf>,
        side: Arc<dyn FakeDeviceSide>,
    ) -> io::Result<Arc<FakeKernel>> {
        let root = root.into();
        let config = match std::fs::read_to_string(root.join("kernel")) {
            Ok(t) => FakeKernelConfig::parse(&t)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => FakeKernelConfig::default(),
            Err(e) => return Err(e),
        };
        let k = FakeKernel {
            root,
            config,
            side,
            state: Mutex::new(State {
                next_fd: FIRST_FD,
                next_ss_dma: SS_DMA_BASE,
                ..State::default()
            }),
            polls: AtomicU64::new(0),
        };
        k.load_devices()?;
        Ok(Arc::new(k))
    }

    fn load_devices(&self) -> io::Result<()> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let devs = crate::uacce::sysfs::discover(&self.sysfs_root(), &self.dev_root())
            .map_err(|e| bad(e.to_string()))?;
        let page = self.config.page_size;
        let mut st = self.lock();
        for d in devs {
            let total = crate::uacce::sysfs::available_instances(&self.sysfs_root(), &d.name)
                .map_err(|e| bad(e.to_string()))?;
            let driver = d.driver().to_string();
            let sqe_size = engine_sqe_size(&driver).unwrap_or(64);
            let depth = self.config.depth;
            let dus = expected_dus_size(sqe_size, depth, depth, page);
            if d.dus_size != dus {
                return Err(bad(format!(
                    "fixture {}: region_dus_size {:#x}, but {sqe_size}-byte SQEs at depth \
                     {depth} with {page}-byte pages make {dus:#x}",
                    d.name, d.dus_size
                )));
            }
            let mmio = if d.api.trim() == "hisi_qm_v1" {
                page
            } else {
                (1 + 0x1000 / page) * page
            };
            if d.mmio_size != mmio {
                return Err(bad(format!(
                    "fixture {}: region_mmio_size {:#x}, expected {mmio:#x}",
                    d.name, d.mmio_size
                )));
            }
            st.devs.insert(
                d.name.clone(),
                Dev {
                    info: FakeDevice {
                        name: d.name.clone(),
                        driver,
                        api: d.api.clone(),
                        dus_size: d.dus_size,
                        mmio_size: d.mmio_size,
                        page_size: page,
                        sqe_size,
                        depth,
                        no_sva: is_no_sva_api(&d.api) && self.config.abi.no_sva_flags(d.flags),
                    },
                    total,
                    in_use: BTreeSet::new(),
                    removed: false,
                },
            );
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fixture's `/sys/class/uacce`.
    pub fn sysfs_root(&self) -> PathBuf {
        self.root.join("sys/class/uacce")
    }

    /// Where the device nodes are (they exist only in the fake).
    pub fn dev_root(&self) -> PathBuf {
        PathBuf::from("/dev")
    }

    /// The kernel settings.
    pub fn config(&self) -> &FakeKernelConfig {
        &self.config
    }

    /// A uacce backend whose every system call reaches this fake, with the numbering
    /// configured as `abi` (`None`: detected, as `WD_UACCE_ABI` unset).
    pub fn backend(self: &Arc<Self>, abi: Option<Abi>) -> UacceBackend {
        UacceBackend::with_sys(self.sysfs_root(), self.dev_root(), self.clone(), abi)
    }

    /// The queue system calls so far.
    pub fn trace(&self) -> Vec<Call> {
        self.lock().trace.clone()
    }

    /// Forgets the trace so far.
    pub fn clear_trace(&self) {
        self.lock().trace.clear();
    }

    /// Queue descriptors used by a process other than their opener (must stay empty).
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// The open queue descriptors.
    pub fn queues(&self) -> Vec<QueueView> {
        let st = self.lock();
        let mut v: Vec<QueueView> = st
            .files
            .iter()
            .map(|(fd, f)| QueueView {
                fd: *fd,
                device: f.dev.clone(),
                qid: f.qid,
                state: f.state,
                latched_qc_type: f.latched,
            })
            .collect();
        v.sort_by_key(|q| q.fd);
        v
    }

    /// Live mappings.
    pub fn mappings(&self) -> usize {
        self.lock().maps.len()
    }

    /// Free instances of `dev` now.
    pub fn available(&self, dev: &str) -> Option<u32> {
        let st = self.lock();
        st.devs
            .get(dev)
            .map(|d| d.total.saturating_sub(d.in_use.len() as u32))
    }

    /// Hot-unplugs `dev`: its queues go to ZOMBIE (later ioctl and mmap give ENXIO), its
    /// sysfs directory and node disappear.
    pub fn remove_device(&self, dev: &str) {
        let mut st = self.lock();
        if let Some(d) = st.devs.get_mut(dev) {
            d.removed = true;
        }
        for f in st.files.values_mut().filter(|f| f.dev == dev) {
            if f.state == QueueState::Started {
                f.hw.stop();
            }
            f.state = QueueState::Zombie;
        }
    }

    /// Number of poll calls so far.
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    fn dev_name(&self, path: &Path) -> Option<String> {
        if path.parent() != Some(self.dev_root().as_path()) {
            return None;
        }
        path.file_name()?.to_str().map(str::to_string)
    }

    fn check_owner(st: &mut State, fd: Fd, what: &str) {
        let bad = st
            .files
            .get(&fd)
            .filter(|f| !f.epoch.is_current())
            .map(|f| {
                format!(
                    "{what} on fd {fd} (queue {} of {}) by pid {}, opened by pid {}",
                    f.qid,
                    f.dev,
                    std::process::id(),
                    f.epoch.pid()
                )
            });
        if let Some(v) = bad {
            st.violations.push(v);
        }
    }

    fn release(st: &mut State, fd: Fd) {
        let Some(f) = st.files.get_mut(&fd) else {
            return;
        };
        if f.state == QueueState::Started {
            f.hw.stop();
        }
        f.state = QueueState::Zombie;
        let (dev, qid) = (f.dev.clone(), f.qid);
        // The QP is freed (a zombie made by device removal held it until now).
        if let Some(d) = st.devs.get_mut(&dev) {
            d.in_use.remove(&qid);
        }
    }

    fn do_open(&self, path: &Path, flags: i32) -> Result<Fd, i32> {
        let name = self.dev_name(path).ok_or(libc::ENOENT)?;
        let mut st = self.lock();
        let st = &mut *st;
        let dev = st.devs.get_mut(&name).ok_or(libc::ENOENT)?;
        if dev.removed {
            return Err(libc::ENOENT);
        }
        if dev.in_use.len() as u32 >= dev.total {
            return Err(libc::EBUSY);
        }
        let qid = (0..u16::MAX)
            .find(|q| !dev.in_use.contains(q))
            .ok_or(libc::EBUSY)?;
        let hw = self
            .side
            .create_queue(&dev.info, qid)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOMEM))?;
        if hw.dus().len() != dev.info.dus_size || hw.mmio().len() != dev.info.mmio_size {
            return Err(libc::EIO);
        }
        dev.in_use.insert(qid);
        let fd = st.next_fd;
        st.next_fd += 1;
        st.files.insert(
            fd,
            File {
                dev: name,
                qid,
                writable: flags & libc::O_ACCMODE == libc::O_RDWR,
                state: QueueState::Init,
                mapped: [false; 3],
                ss: None,
                qc_type: 0,
                latched: None,
                hw,
                epoch: Epoch::current(),
            },
        );
        Ok(fd)
    }

    fn do_mmap(&self, fd: Fd, len: usize, offset: u64) -> Result<Mapping, i32> {
        let page = self.config.page_size as u64;
        let mut st = self.lock();
        Self::check_owner(&mut st, fd, "mmap");
        let st = &mut *st;
        let f = st.files.get_mut(&fd).ok_or(libc::EBADF)?;
        let dev = &st.devs[&f.dev].info;
        if f.state == QueueState::Zombie {
            return Err(libc::ENXIO);
        }
        if !f.writable {
            return Err(libc::EACCES);
        }
        if len == 0 || !offset.is_multiple_of(page) {
            return Err(libc::EINVAL);
        }
        let index = offset / page;
        let regions = if dev.no_sva {
            UACCE_QFRT_SS + 1
        } else {
            ioctl::UACCE_MAX_REGION
        };
        if index >= regions {
            return Err(libc::EINVAL);
        }
        if f.mapped[index as usize] {
            return Err(libc::EEXIST);
        }
        let (region, hook) = if index == UACCE_QFRT_SS {
            let gran = UACCE_GRAN_SIZE as usize;
            if !len.is_multiple_of(gran) {
                return Err(libc::EINVAL);
            }
            if len > self.config.ss_max {
                return Err(libc::ENOMEM);
            }
            let slice = match self.config.abi {
                Abi::Mainline => self.config.ss_slice,
                Abi::OpenEuler => len,
            };
            let mut pieces = Vec::new();
            let mut off = 0;
            while off < len {
                let l = slice.min(len - off);
                pieces.push(SsPiece {
                    dma: st.next_ss_dma,
                    off,
                    len: l,
                });
                // A granule of gap: slices are not contiguous in device address space.
                st.next_ss_dma += (l + gran) as u64;
                off += l;
            }
            let region =
                f.hw.static_share(len, &pieces)
                    .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOMEM))?;
            if region.len() != len {
                return Err(libc::EIO);
            }
            f.ss = Some(pieces);
            (region, None)
        } else if index == UACCE_QFRT_DUS {
            if len != dev.dus_size {
                return Err(libc::EINVAL);
            }
            (f.hw.dus(), None)
        } else {
            debug_assert_eq!(index, UACCE_QFRT_MMIO);
            if len > dev.mmio_size {
                return Err(libc::EINVAL);
            }
            (
                f.hw.mmio().slice(0, len).map_err(|_| libc::EINVAL)?,
                f.hw.mmio_hook(),
            )
        };
        f.mapped[index as usize] = true;
        let addr = std::ptr::NonNull::new(region.as_ptr()).ok_or(libc::ENOMEM)?;
        st.maps.insert(
            addr.as_ptr() as usize,
            MapEntry {
                fd,
                index,
                len,
                _region: region,
            },
        );
        Ok(Mapping { addr, len, hook })
    }

    fn do_ioctl(&self, fd: Fd, request: u32, arg: IoctlArg<'_>) -> Result<i32, i32> {
        let abi = self.config.abi;
        let mut st = self.lock();
        Self::check_owner(&mut st, fd, "ioctl");
        let st = &mut *st;
        let f = st.files.get_mut(&fd).ok_or(libc::EBADF)?;
        if f.state == QueueState::Zombie {
            return Err(libc::ENXIO);
        }
        let dev = &st.devs[&f.dev].info;
        fn arg_buf<'a>(arg: IoctlArg<'a>, request: u32, n: usize) -> Result<&'a mut [u8], i32> {
            match arg {
                IoctlArg::Buf(b) if b.len() == n && ioctl::ioc_size(request) == n => Ok(b),
                _ => Err(libc::EFAULT),
            }
        }
        match request {
            UACCE_CMD_QM_SET_QP_CTX => {
                let b = arg_buf(arg, request, HisiQpCtx::SIZE)?;
                let mut raw = [0u8; HisiQpCtx::SIZE];
                raw.copy_from_slice(b);
                let mut ctx = HisiQpCtx::from_bytes(&raw);
                if ctx.qc_type > MAX_QC_TYPE {
                    return Err(libc::EINVAL);
                }
                f.qc_type = ctx.qc_type;
                ctx.id = f.qid;
                b.copy_from_slice(&ctx.to_bytes());
                Ok(0)
            }
            UACCE_CMD_QM_SET_QP_INFO => {
                if !self.config.set_qp_info {
                    return Err(libc::EINVAL);
                }
                let b = arg_buf(arg, request, HisiQpInfo::SIZE)?;
                let info = HisiQpInfo {
                    sqe_size: dev.sqe_size,
                    sq_depth: dev.depth,
                    cq_depth: dev.depth,
                    reserved: 0,
                };
                b.copy_from_slice(&info.to_bytes());
                Ok(0)
            }
            r if r == abi.start_q() => {
                if f.state != QueueState::Init {
                    return Err(libc::EINVAL);
                }
                f.hw.start(f.qc_type)
                    .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
                f.latched = Some(f.qc_type);
                f.state = QueueState::Started;
                Ok(0)
            }
            r if r == abi.put_q() => {
                Self::release(st, fd);
                Ok(0)
            }
            r if r == abi.get_ss_dma() => {
                let b = arg_buf(arg, request, 8)?;
                if !dev.no_sva {
                    return Err(libc::EINVAL);
                }
                let pieces = f.ss.as_ref().ok_or(libc::EINVAL)?;
                let mut raw = [0u8; 8];
                raw.copy_from_slice(b);
                match abi {
                    Abi::Mainline => {
                        let index = u64::from_ne_bytes(raw);
                        let p = usize::try_from(index)
                            .ok()
                            .and_then(|i| pieces.get(i))
                            .ok_or(libc::EINVAL)?;
                        let ans = SsDmaAnswer::encode_slice(p.dma, p.len as u64);
                        b.copy_from_slice(&ans.to_ne_bytes());
                        Ok((pieces.len() - 1 - index as usize) as i32)
                    }
                    Abi::OpenEuler => {
                        b.copy_from_slice(&pieces[0].dma.to_ne_bytes());
                        Ok(0)
                    }
                }
            }
            _ => Err(libc::EINVAL),
        }
    }
}

impl UacceSys for FakeKernel {
    fn page_size(&self) -> usize {
        self.config.page_size
    }

    fn read_file(&self, path: &Path) -> io::Result<String> {
        if path == Path::new(OSRELEASE) {
            return Ok(format!("{}\n", self.config.osrelease));
        }
        if let Ok(rest) = path.strip_prefix(self.sysfs_root()) {
            let mut parts = rest.components();
            if let Some(dev) = parts.next().and_then(|c| c.as_os_str().to_str()) {
                let st = self.lock();
                if let Some(d) = st.devs.get(dev) {
                    if d.removed {
                        return Err(errno(libc::ENOENT));
                    }
                    if rest.ends_with("available_instances") && rest.components().count() == 2 {
                        let free = d.total.saturating_sub(d.in_use.len() as u32);
                        return Ok(format!("{free}\n"));
                    }
                }
            }
        }
        RealSys.read_file(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut v = RealSys.read_dir(path)?;
        if path == self.sysfs_root() {
            let st = self.lock();
            v.retain(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !st.devs.get(name).is_some_and(|d| d.removed)
            });
        }
        Ok(v)
    }

    fn open(&self, path: &Path, flags: i32) -> io::Result<Fd> {
        let result = self.do_open(path, flags);
        self.lock().trace.push(Call::Open {
            path: path.to_path_buf(),
            flags,
            result,
        });
        result.map_err(errno)
    }

    fn mmap(&self, fd: Fd, len: usize, offset: u64) -> io::Result<Mapping> {
        let r = self.do_mmap(fd, len, offset);
        self.lock().trace.push(Call::Mmap {
            fd,
            len,
            offset,
            result: r.as_ref().map(|_| ()).map_err(|e| *e),
        });
        r.map_err(errno)
    }

    unsafe fn munmap(&self, addr: std::ptr::NonNull<u8>, len: usize) -> io::Result<()> {
        let mut st = self.lock();
        let key = addr.as_ptr() as usize;
        match st.maps.get(&key) {
            Some(m) if m.len == len => {}
            _ => return Err(errno(libc::EINVAL)),
        }
        let m = st.maps.remove(&key).expect("checked above");
        if let Some(f) = st.files.get_mut(&m.fd) {
            f.mapped[m.index as usize] = false;
            if m.index == UACCE_QFRT_SS {
                f.ss = None;
            }
        }
        st.trace.push(Call::Munmap {
            fd: m.fd,
            index: m.index,
            len,
        });
        Ok(())
    }

    fn ioctl(&self, fd: Fd, request: u32, arg: IoctlArg<'_>) -> io::Result<i32> {
        let result = self.do_ioctl(fd, request, arg);
        self.lock().trace.push(Call::Ioctl {
            fd,
            request,
            result,
        });
        result.map_err(errno)
    }

    fn poll(&self, fd: Fd, timeout: Duration) -> io::Result<bool> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        let hw = {
            let mut st = self.lock();
            Self::check_owner(&mut st, fd, "poll");
            st.trace.push(Call::Poll { fd });
            let f = st.files.get(&fd).ok_or_else(|| errno(libc::EBADF))?;
            (f.state == QueueState::Started).then(|| f.hw.clone())
        };
        match hw {
            Some(hw) => Ok(hw.wait(timeout)),
            None => {
                // No event will come: poll sleeps out its timeout.
                std::thread::sleep(timeout.min(Duration::from_millis(50)));
                Ok(false)
            }
        }
    }

    fn close(&self, fd: Fd) -> io::Result<()> {
        let mut st = self.lock();
        let result = match st.files.get(&fd) {
            None => Err(libc::EBADF),
            Some(f) if f.epoch.is_current() => {
                Self::release(&mut st, fd);
                st.files.remove(&fd);
                Ok(())
            }
            Some(_) => {
                // A forked child drops its reference to the parent's open file; the queue
                // and its memory are the parent's: forget them, touch nothing.
                if let Some(f) = st.files.remove(&fd) {
                    std::mem::forget(f);
                }
                Ok(())
            }
        };
        st.trace.push(Call::Close { fd, result });
        result.map_err(errno)
    }
}

/// A device side of plain memory: no engine, records what the kernel told it. For tests
/// of the kernel rules and the backend's bring-up.
#[derive(Debug, Default)]
pub struct MemorySide {
    queues: Mutex<Vec<Arc<MemoryQueue>>>,
}

/// A queue of [`MemorySide`].
#[derive(Debug)]
pub struct MemoryQueue {
    /// Queue number.
    pub qid: u16,
    dus: Region,
    mmio: Region,
    /// qc_type of START_Q.
    pub started: Mutex<Option<u16>>,
    /// Stopped (PUT_Q, close, removal).
    pub stopped: std::sync::atomic::AtomicBool,
    /// Doorbell stores seen: (offset, value).
    pub doorbells: Arc<DoorbellLog>,
    /// The static-share pieces the kernel made, if any.
    pub static_share: Mutex<Option<Vec<SsPiece>>>,
}

/// Stores into a [`MemoryQueue`]'s MMIO mapping.
#[derive(Debug, Default)]
pub struct DoorbellLog(pub Mutex<Vec<(usize, u64)>>);

impl MmioHook for DoorbellLog {
    fn on_write_u64(&self, offset: usize, value: u64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((offset, value));
    }
}

impl MemorySide {
    /// The queues made so far.
    pub fn queues(&self) -> Vec<Arc<MemoryQueue>> {
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl FakeDeviceSide for MemorySide {
    fn create_queue(&self, dev: &FakeDevice, qid: u16) -> io::Result<Arc<dyn FakeHwQueue>> {
        let map = |e: crate::Error| io::Error::other(e.to_string());
        let q = Arc::new(MemoryQueue {
            qid,
            dus: Region::anonymous(dev.dus_size).map_err(map)?,
            mmio: Region::anonymous(dev.mmio_size).map_err(map)?,
            started: Mutex::new(None),
            stopped: Default::default(),
            doorbells: Arc::default(),
            static_share: Mutex::new(None),
        });
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(q.clone());
        Ok(q)
    }
}

impl FakeHwQueue for MemoryQueue {
    fn dus(&self) -> Region {
        self.dus.clone()
    }

    fn mmio(&self) -> Region {
        self.mmio.clone()
    }

    fn mmio_hook(&self) -> Option<Arc<dyn MmioHook>> {
        Some(self.doorbells.clone())
    }

    fn start(&self, qc_type: u16) -> io::Result<()> {
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(qc_type);
        Ok(())
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    fn wait(&self, timeout: Duration) -> bool {
        std::thread::sleep(timeout.min(Duration::from_millis(5)));
        false
    }

    fn static_share(&self, len: usize, pieces: &[SsPiece]) -> io::Result<Region> {
        *self.static_share.lock().unwrap_or_else(|e| e.into_inner()) = Some(pieces.to_vec());
        Region::anonymous(len).map_err(|e| io::Error::other(e.to_string()))
    }
}

/// Writes a fixture tree (for tests that build their own): one device directory with the
/// attributes of hardware-interface §1.2.
#[derive(Debug, Clone)]
pub struct FixtureDevice {
    /// `hisi_hpre-1`.
    pub name: String,
    /// api string.
    pub api: String,
    /// flags.
    pub flags: u32,
    /// algorithms, one per line.
    pub algorithms: Vec<String>,
    /// available_instances.
    pub instances: u32,
    /// `device/numa_node`.
    pub numa_node: i32,
    /// `isolate` (absent if `None`).
    pub isolate: Option<u32>,
    /// Extra attributes (`node_id`...).
    pub extra: Vec<(String, String)>,
}

impl FixtureDevice {
    /// A mainline HPRE device (`hisi_qm_v2`, SVA, 4 instances).
    pub fn hpre(name: &str) -> FixtureDevice {
        FixtureDevice {
            name: name.into(),
            api: "hisi_qm_v2".into(),
            flags: 1,
            algorithms: vec!["rsa".into(), "dh".into()],
            instances: 4,
            numa_node: 0,
            isolate: Some(0),
            extra: Vec::new(),
        }
    }

    /// Writes the device under `root/sys/class/uacce` with region sizes for `config`.
    pub fn write(&self, root: &Path, config: &FakeKernelConfig) -> io::Result<()> {
        let dir = root.join("sys/class/uacce").join(&self.name);
        std::fs::create_dir_all(dir.join("device"))?;
        let driver = self
            .name
            .rsplit_once('-')
            .map(|p| p.0)
            .unwrap_or(&self.name);
        let sqe = engine_sqe_size(driver).unwrap_or(64);
        let page = config.page_size;
        let dus = expected_dus_size(sqe, config.depth, config.depth, page);
        let mmio = if self.api == "hisi_qm_v1" {
            page
        } else {
            (1 + 0x1000 / page) * page
        };
        let w = |n: &str, v: String| std::fs::write(dir.join(n), v);
        w("api", format!("{}\n", self.api))?;
        w("flags", format!("{}\n", self.flags))?;
        w("algorithms", format!("{}\n", self.algorithms.join("\n")))?;
        w("available_instances", format!("{}\n", self.instances))?;
        w("region_dus_size", format!("{dus}\n"))?;
        w("region_mmio_size", format!("{mmio}\n"))?;
        if let Some(i) = self.isolate {
            w("isolate", format!("{i}\n"))?;
        }
        for (k, v) in &self.extra {
            w(k, format!("{v}\n"))?;
        }
        std::fs::write(
            dir.join("device/numa_node"),
            format!("{}\n", self.numa_node),
        )?;
        Ok(())
    }
}

/// Writes a fixture's `kernel` file.
pub fn write_kernel_file(root: &Path, config: &FakeKernelConfig) -> io::Result<()> {
    std::fs::create_dir_all(root)?;
    std::fs::write(
        root.join("kernel"),
        format!(
            "page_size = {}\nosrelease = {}\nabi = {}\nset_qp_info = {}\ndepth = {}\n\
             ss_slice = {}\nss_max = {}\n",
            config.page_size,
            config.osrelease,
            config.abi,
            if config.set_qp_info { "yes" } else { "no" },
            config.depth,
            config.ss_slice,
            config.ss_max
        ),
    )
}
