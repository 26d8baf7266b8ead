//! The uacce backend's one system-call seam.
//!
//! Every open, mmap, munmap, ioctl, poll, read (sysfs attributes, directory listings,
//! the kernel release) and close of the backend goes through [`UacceSys`]. [`RealSys`]
//! makes the system calls with libc; the fake kernel (`uacce::fake::FakeKernel`, feature
//! `fake-kernel`) answers like the kernel's uacce and hisi_qm code, so the unmodified
//! backend runs in tests.
//!
//! Every `unsafe` block of the uacce backend's OS use is in this file.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use crate::region::{MmioHook, Region};

/// A file descriptor number as the seam hands it out.
pub type Fd = i32;

/// Where the running kernel's release string is read (`uname -r`).
pub const OSRELEASE: &str = "/proc/sys/kernel/osrelease";

/// The argument of an ioctl.
#[derive(Debug)]
pub enum IoctlArg<'a> {
    /// No argument (`_IO` commands); 0 is passed.
    None,
    /// A pointer to this buffer, which holds the C struct of the request (in and out).
    Buf(&'a mut [u8]),
}

/// A shared mapping made by [`UacceSys::mmap`].
#[derive(Clone)]
pub struct Mapping {
    /// First byte.
    pub addr: NonNull<u8>,
    /// Length in bytes.
    pub len: usize,
    /// What a store into the mapping reaches besides memory. The real kernel never returns
    /// one (a store to a device page reaches the device by itself); the fake kernel returns
    /// the device model's doorbell hook for the MMIO region, which is how its device sees
    /// a doorbell the way hardware does.
    pub hook: Option<Arc<dyn MmioHook>>,
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("addr", &self.addr)
            .field("len", &self.len)
            .field("hooked", &self.hook.is_some())
            .finish()
    }
}

/// The system calls of the uacce backend. Errors are the OS errors (errno) the kernel
/// gives; the backend maps them to typed errors.
pub trait UacceSys: Send + Sync + fmt::Debug {
    /// The kernel's page size (`sysconf(_SC_PAGESIZE)`): region offsets are counted in it.
    fn page_size(&self) -> usize;
    /// Reads a whole (sysfs or procfs) file.
    fn read_file(&self, path: &Path) -> io::Result<String>;
    /// The entries of a directory (full paths).
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
    /// `open(path, flags)`.
    fn open(&self, path: &Path, flags: i32) -> io::Result<Fd>;
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, offset)`.
    fn mmap(&self, fd: Fd, len: usize, offset: u64) -> io::Result<Mapping>;
    /// `munmap(addr, len)`.
    ///
    /// # Safety
    /// `addr..addr+len` must be a mapping made by [`UacceSys::mmap`] of this seam that no
    /// one uses any more.
    unsafe fn munmap(&self, addr: NonNull<u8>, len: usize) -> io::Result<()>;
    /// `ioctl(fd, request, arg)`; the return value on success.
    fn ioctl(&self, fd: Fd, request: u32, arg: IoctlArg<'_>) -> io::Result<i32>;
    /// `poll(fd, POLLIN)` for at most `timeout`: true if the queue has completions.
    fn poll(&self, fd: Fd, timeout: Duration) -> io::Result<bool>;
    /// `close(fd)`.
    fn close(&self, fd: Fd) -> io::Result<()>;
    /// True when the descriptors [`UacceSys::open`] returns are the process's own, which
    /// another event loop may poll (a test twin's are numbers of its own).
    fn descriptors_are_real(&self) -> bool {
        false
    }
}

/// The real system calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealSys;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl UacceSys for RealSys {
    fn descriptors_are_real(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        crate::region::page_size()
    }

    fn read_file(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect()
    }

    fn open(&self, path: &Path, flags: i32) -> io::Result<Fd> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `c` is a NUL-terminated string alive for the call; no mode is needed
        // because O_CREAT is never passed by the backend (it is masked out here).
        cvt(unsafe { libc::open(c.as_ptr(), flags & !libc::O_CREAT) })
    }

    fn mmap(&self, fd: Fd, len: usize, offset: u64) -> io::Result<Mapping> {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a new shared mapping at an address the kernel chooses (NULL hint, no
        // MAP_FIXED) cannot overlap memory the program uses; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let addr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap at 0"))?;
        Ok(Mapping {
            addr,
            len,
            hook: None,
        })
    }

    unsafe fn munmap(&self, addr: NonNull<u8>, len: usize) -> io::Result<()> {
        // SAFETY: the caller guarantees the range is our mapping and unused.
        cvt(unsafe { libc::munmap(addr.as_ptr().cast(), len) }).map(|_| ())
    }

    fn ioctl(&self, fd: Fd, request: u32, arg: IoctlArg<'_>) -> io::Result<i32> {
        let r = match arg {
            // SAFETY: an `_IO` request reads no argument; 0 is what uadk passes.
            IoctlArg::None => unsafe { libc::ioctl(fd, request as _, 0usize) },
            IoctlArg::Buf(b) => {
                if b.len() != super::ioctl::ioc_size(request) {
                    return Err(io::Error::from_raw_os_error(libc::EINVAL));
                }
                // SAFETY: the buffer is exactly the size encoded in the request number,
                // so the kernel reads and writes only inside it; it lives for the call.
                unsafe { libc::ioctl(fd, request as _, b.as_mut_ptr()) }
            }
        };
        cvt(r)
    }

    fn poll(&self, fd: Fd, timeout: Duration) -> io::Result<bool> {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd, alive for the call.
        match cvt(unsafe { libc::poll(&mut p, 1, ms) }) {
            Ok(0) => Ok(false),
            Ok(_) => {
                if p.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
                    return Err(io::Error::from_raw_os_error(libc::ENXIO));
                }
                Ok(p.revents & libc::POLLIN != 0)
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn close(&self, fd: Fd) -> io::Result<()> {
        // SAFETY: closing a descriptor the backend opened and owns; it is not used after.
        cvt(unsafe { libc::close(fd) }).map(|_| ())
    }
}

/// A descriptor opened through a seam, closed once: by [`SeamFd::close_now`] or on drop.
#[derive(Debug)]
pub struct SeamFd {
    sys: Arc<dyn UacceSys>,
    fd: std::sync::atomic::AtomicI32,
}

impl SeamFd {
    /// Takes ownership of `fd`, opened through `sys`.
    pub fn new(sys: Arc<dyn UacceSys>, fd: Fd) -> Arc<SeamFd> {
        Arc::new(SeamFd {
            sys,
            fd: std::sync::atomic::AtomicI32::new(fd),
        })
    }

    /// The descriptor, unless closed.
    pub fn get(&self) -> Option<Fd> {
        let fd = self.fd.load(std::sync::atomic::Ordering::Acquire);
        (fd >= 0).then_some(fd)
    }

    /// Closes the descriptor now (idempotent).
    pub fn close_now(&self) {
        let fd = self.fd.swap(-1, std::sync::atomic::Ordering::AcqRel);
        if fd >= 0 {
            if let Err(e) = self.sys.close(fd) {
                crate::wd_log!(Warn, "uacce: close({fd}): {e}");
            }
        }
    }
}

impl Drop for SeamFd {
    fn drop(&mut self) {
        self.close_now();
    }
}

/// Keeps a seam mapping alive; unmaps it when the last [`Region`] over it goes, but only in
/// the process that mapped it (uacce mappings are `VM_DONTCOPY`: a forked child has none,
/// and unmapping there could hit whatever the child mapped at that address since).
struct MapOwner {
    sys: Arc<dyn UacceSys>,
    addr: usize,
    len: usize,
    epoch: crate::fork::Epoch,
    // Held so the descriptor is closed only after its mappings are gone.
    _fd: Arc<SeamFd>,
}

impl Drop for MapOwner {
    fn drop(&mut self) {
        if !self.epoch.is_current() {
            return;
        }
        let Some(addr) = NonNull::new(self.addr as *mut u8) else {
            return;
        };
        // SAFETY: the range is the seam mapping this owner was made for, and the owner is
        // dropped only when the last Region over it is gone, so nothing uses it any more.
        if let Err(e) = unsafe { self.sys.munmap(addr, self.len) } {
            crate::wd_log!(
                Warn,
                "uacce: munmap of {:#x}+{:#x}: {e}",
                self.addr,
                self.len
            );
        }
    }
}

/// A [`Region`] over a mapping made by `sys.mmap` on `fd`, carrying the mapping's hook.
/// The mapping is unmapped through `sys` when the last clone of the region goes.
pub fn mapped_region(sys: Arc<dyn UacceSys>, fd: Arc<SeamFd>, m: Mapping) -> Region {
    let owner = Arc::new(MapOwner {
        sys,
        addr: m.addr.as_ptr() as usize,
        len: m.len,
        epoch: crate::fork::Epoch::current(),
        _fd: fd,
    });
    // SAFETY: `m` is a live readable and writable shared mapping of `m.len` bytes made by
    // the seam; only `owner` unmaps it, when the last Region holding it is dropped.
    let r = unsafe { Region::from_raw(m.addr, m.len, owner) };
    match m.hook {
        Some(h) => r.with_hook(h),
        None => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_sys_on_ordinary_files() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("attr");
        std::fs::write(&p, "hisi_qm_v2\n").unwrap();
        let s = RealSys;
        assert_eq!(s.page_size(), crate::region::page_size());
        assert_eq!(s.read_file(&p).unwrap(), "hisi_qm_v2\n");
        assert_eq!(s.read_dir(t.path()).unwrap(), vec![p.clone()]);
        let fd = s.open(&p, libc::O_RDWR | libc::O_CLOEXEC).unwrap();
        // A regular file has no such ioctl: the kernel says ENOTTY.
        let e = s.ioctl(fd, super::super::ioctl::UACCE_CMD_START_Q, IoctlArg::None);
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::ENOTTY));
        // The buffer must match the size in the request number.
        let mut small = [0u8; 2];
        let e = s.ioctl(
            fd,
            super::super::ioctl::UACCE_CMD_QM_SET_QP_CTX,
            IoctlArg::Buf(&mut small),
        );
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        // A regular file polls readable at once.
        assert!(s.poll(fd, Duration::from_millis(10)).unwrap());
        s.close(fd).unwrap();
        let e = s.open(&t.path().join("none"), libc::O_RDWR).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }
}
