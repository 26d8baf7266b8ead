//! A fake QM queue for driver unit tests (feature `testing`): plain anonymous regions laid
//! out as the kernel lays out a queue, a backend that hands them out, and device-side
//! helpers the test code uses to play the hardware (read SQEs, post CQEs, set stop words,
//! see every doorbell, reach DMA memory through its IOVA).
//!
//! It is no device model: nothing happens unless the test makes it happen, either directly
//! or from a responder called on each doorbell. The device side here uses raw byte offsets
//! from docs/hardware-interface.md, never the driver's own definitions, so a layout bug in
//! the driver is not mirrored here.

#![forbid(unsafe_code)]

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use wd_core::backend::{Backend, QueueBackend, QueueInfo, QueueRequest};
use wd_core::device::{Device, DeviceInfo};
use wd_core::dma::Iova;
use wd_core::error::StopWord;
use wd_core::region::page_size;
use wd_core::{MmioHook, Queue, Region, Result};

/// Called on every doorbell store with the fake device, the MMIO offset and the word.
pub type Responder = Box<dyn FnMut(&FakeHw, usize, u64) + Send>;

/// First IOVA handed out: far from any host address, so a driver that puts a host pointer
/// into a descriptor is caught.
const IOVA_BASE: u64 = 0x7a00_0000_0000;

struct DevState {
    cq_tail: u16,
    phase: bool,
}

struct Mapping {
    iova: u64,
    region: Region,
}

/// The device side of one fake queue.
pub struct FakeHw {
    api: String,
    info: QueueInfo,
    mmio: Region,
    dus: Region,
    doorbells: Mutex<Vec<(usize, u64)>>,
    responder: Mutex<Option<Responder>>,
    dev: Mutex<DevState>,
    mappings: Mutex<(u64, Vec<Mapping>)>,
    released: AtomicBool,
}

impl std::fmt::Debug for FakeHw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHw")
            .field("api", &self.api)
            .field("info", &self.info)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct DoorbellHook(Weak<FakeHw>);

impl MmioHook for DoorbellHook {
    fn on_write_u64(&self, offset: usize, value: u64) {
        let Some(hw) = self.0.upgrade() else { return };
        lock(&hw.doorbells).push((offset, value));
        let taken = lock(&hw.responder).take();
        if let Some(mut f) = taken {
            f(&hw, offset, value);
            let mut slot = lock(&hw.responder);
            if slot.is_none() {
                *slot = Some(f);
            }
        }
    }
}

/// Region sizes the kernel would report for this geometry (hardware-interface §3.3, §3.4).
pub fn region_sizes(api: &str, info: &QueueInfo) -> (usize, usize) {
    let page = page_size();
    let mmio = if api.trim() == "hisi_qm_v1" {
        page
    } else {
        page * (1 + 0x1000 / page)
    };
    let rings = info.sqe_size as usize * info.sq_depth as usize + 16 * info.cq_depth as usize;
    let dus = rings.div_ceil(page) * page + page;
    (mmio, dus)
}

impl FakeHw {
    /// A fake queue with the given api string and geometry, regions sized as the kernel
    /// sizes them.
    pub fn new(api: &str, info: QueueInfo) -> Arc<FakeHw> {
        let (mmio_len, dus_len) = region_sizes(api, &info);
        Arc::new_cyclic(|weak| FakeHw {
            api: api.to_string(),
            info,
            mmio: Region::anonymous(mmio_len)
                .expect("anonymous MMIO region")
                .with_hook(Arc::new(DoorbellHook(weak.clone()))),
            dus: Region::anonymous(dus_len).expect("anonymous DUS region"),
            doorbells: Mutex::new(Vec::new()),
            responder: Mutex::new(None),
            dev: Mutex::new(DevState {
                cq_tail: 0,
                phase: true,
            }),
            mappings: Mutex::new((IOVA_BASE, Vec::new())),
            released: AtomicBool::new(false),
        })
    }

    /// The api string.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// The geometry.
    pub fn info(&self) -> QueueInfo {
        self.info
    }

    /// The MMIO region (hooked: 64-bit stores are recorded).
    pub fn mmio(&self) -> &Region {
        &self.mmio
    }

    /// The DUS region: SQ, CQ, status page.
    pub fn dus(&self) -> &Region {
        &self.dus
    }

    /// Every doorbell store so far: (MMIO offset, word).
    pub fn doorbells(&self) -> Vec<(usize, u64)> {
        lock(&self.doorbells).clone()
    }

    /// Takes the doorbell stores recorded so far.
    pub fn take_doorbells(&self) -> Vec<(usize, u64)> {
        std::mem::take(&mut *lock(&self.doorbells))
    }

    /// Calls `f` on every later doorbell store (from the storing thread).
    pub fn on_doorbell(&self, f: impl FnMut(&FakeHw, usize, u64) + Send + 'static) {
        *lock(&self.responder) = Some(Box::new(f));
    }

    /// Raw words of the SQE in `slot`.
    pub fn sqe(&self, slot: u16) -> Vec<u32> {
        let size = self.info.sqe_size as usize;
        let mut w = vec![0u32; size / 4];
        self.dus.read_words(slot as usize * size, &mut w);
        w
    }

    /// Overwrites the SQE in `slot` (results are written back there).
    pub fn write_sqe(&self, slot: u16, words: &[u32]) {
        self.dus
            .write_words(slot as usize * self.info.sqe_size as usize, words);
    }

    fn cq_base(&self) -> usize {
        self.info.sqe_size as usize * self.info.sq_depth as usize
    }

    /// Writes a CQE naming `sq_head` at the device's CQ tail with the device's phase, then
    /// advances the tail (flipping the phase on wrap). The phase word is written last.
    pub fn post_cqe(&self, sq_head: u16) {
        let mut d = lock(&self.dev);
        let off = self.cq_base() + d.cq_tail as usize * 16;
        self.write_cqe_at(off, sq_head, self.info.qid, d.phase);
        d.cq_tail += 1;
        if d.cq_tail == self.info.cq_depth {
            d.cq_tail = 0;
            d.phase = !d.phase;
        }
    }

    /// Writes a CQE at CQ entry `index` with explicit fields, leaving the device's own tail
    /// alone (for corrupted or stray completions).
    pub fn write_raw_cqe(&self, index: u16, sq_head: u16, phase: bool) {
        let off = self.cq_base() + index as usize * 16;
        self.write_cqe_at(off, sq_head, self.info.qid, phase);
    }

    fn write_cqe_at(&self, off: usize, sq_head: u16, sq_num: u16, phase: bool) {
        let mut b = [0u8; 14];
        b[8..10].copy_from_slice(&sq_head.to_le_bytes());
        b[10..12].copy_from_slice(&sq_num.to_le_bytes());
        self.dus.write_bytes(off, &b);
        fence(Ordering::SeqCst);
        self.dus
            .write_bytes(off + 14, &(phase as u16).to_le_bytes());
    }

    /// Sets or clears a stop word in the status page (TX at `size-4`, RX at `size-8`).
    pub fn set_stop(&self, which: StopWord, on: bool) {
        let off = match which {
            StopWord::Tx => self.dus.len() - 4,
            StopWord::Rx => self.dus.len() - 8,
        };
        self.dus.write_u32(off, on as u32);
    }

    /// The registered memory holding `iova..iova+len`, and the offset of `iova` in it; `None`
    /// for an address the device must not touch.
    pub fn dma(&self, iova: u64, len: usize) -> Option<(Region, usize)> {
        let m = lock(&self.mappings);
        m.1.iter().find_map(|map| {
            let off = iova.checked_sub(map.iova)? as usize;
            (off.checked_add(len)? <= map.region.len()).then(|| (map.region.clone(), off))
        })
    }

    /// Reads device memory at `iova`; false (and `out` untouched) for an unshared address.
    pub fn read_dma(&self, iova: u64, out: &mut [u8]) -> bool {
        match self.dma(iova, out.len()) {
            Some((r, off)) => {
                r.read_bytes(off, out);
                true
            }
            None => false,
        }
    }

    /// Writes device memory at `iova`; false (nothing written) for an unshared address.
    pub fn write_dma(&self, iova: u64, data: &[u8]) -> bool {
        match self.dma(iova, data.len()) {
            Some((r, off)) => {
                r.write_bytes(off, data);
                true
            }
            None => false,
        }
    }

    /// Bytes of memory registered for DMA now.
    pub fn mapped_bytes(&self) -> usize {
        lock(&self.mappings).1.iter().map(|m| m.region.len()).sum()
    }

    /// True once the queue was released.
    pub fn released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }
}

/// A backend offering one device whose one queue is the fake.
#[derive(Debug)]
pub struct FakeBackend {
    name: String,
    hw: Arc<FakeHw>,
}

#[derive(Debug)]
struct FakeQueue(Arc<FakeHw>);

impl FakeBackend {
    /// A backend for `hw`; its device is named `<driver>-0`.
    pub fn new(driver: &str, hw: Arc<FakeHw>) -> Arc<FakeBackend> {
        Arc::new(FakeBackend {
            name: format!("{driver}-0"),
            hw,
        })
    }

    /// The device, as discovery would find it.
    pub fn device_info(&self, algorithms: &[&str]) -> DeviceInfo {
        DeviceInfo {
            name: self.name.clone(),
            api: self.hw.api.clone(),
            algorithms: algorithms.iter().map(|s| s.to_string()).collect(),
            flags: 0,
            numa_node: 0,
            mmio_size: self.hw.mmio.len(),
            dus_size: self.hw.dus.len(),
            isolated: false,
            dev_path: None,
        }
    }
}

impl Backend for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>> {
        Ok(vec![self.device_info(&[])])
    }

    fn available_instances(&self, _dev: &DeviceInfo) -> Result<u32> {
        Ok(1)
    }

    fn open_queue(&self, _dev: &DeviceInfo, _req: QueueRequest) -> Result<Box<dyn QueueBackend>> {
        Ok(Box::new(FakeQueue(self.hw.clone())))
    }
}

impl QueueBackend for FakeQueue {
    fn info(&self) -> QueueInfo {
        self.0.info
    }

    fn mmio(&self) -> &Region {
        &self.0.mmio
    }

    fn dus(&self) -> &Region {
        &self.0.dus
    }

    fn map_dma(&self, mem: &Region) -> Result<Iova> {
        let mut m = lock(&self.0.mappings);
        let iova = m.0;
        m.0 += (mem.len() as u64).div_ceil(0x1_0000) * 0x1_0000 + 0x1_0000;
        m.1.push(Mapping {
            iova,
            region: mem.clone(),
        });
        Ok(Iova(iova))
    }

    fn unmap_dma(&self, iova: Iova, _len: usize) -> Result<()> {
        lock(&self.0.mappings).1.retain(|m| m.iova != iova.0);
        Ok(())
    }

    fn wait(&self, timeout: Duration) -> Result<bool> {
        std::thread::sleep(timeout.min(Duration::from_micros(200)));
        Ok(false)
    }

    fn release(&self) -> Result<()> {
        self.0.released.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn abandon(&self) {}
}

/// A device on a fresh fake queue: the device handle a driver opens, and the fake hardware
/// the test plays.
pub fn fake_device(
    driver: &str,
    api: &str,
    info: QueueInfo,
    algorithms: &[&str],
) -> (Device, Arc<FakeHw>) {
    let hw = FakeHw::new(api, info);
    let backend = FakeBackend::new(driver, hw.clone());
    let dev = Device::new(backend.device_info(algorithms), backend);
    (dev, hw)
}

/// An opened queue on a fresh fake device.
pub fn fake_queue(api: &str, info: QueueInfo, qc_type: u16) -> (Queue, Arc<FakeHw>) {
    let (dev, hw) = fake_device("hisi_fake", api, info, &[]);
    let q = Queue::request(&dev, QueueRequest { qc_type }).expect("fake queue opens");
    (q, hw)
}
