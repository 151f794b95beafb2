//! The three btrfs ioctls node_exporter 1.5 uses (through github.com/dennwc/btrfs) for per-device
//! statistics: BTRFS_IOC_FS_INFO, BTRFS_IOC_DEV_INFO and BTRFS_IOC_GET_DEV_STATS.
//!
//! Argument layouts are the kernel's uapi structs (include/uapi/linux/btrfs.h); their sizes are part of
//! the ioctl numbers, so they are checked at compile time. Only the fields node_exporter reads are named,
//! the rest is padding the kernel may fill.

use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

const BTRFS_IOCTL_MAGIC: u32 = 0x94;
/// statfs f_type of btrfs.
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;
/// Inode number of a subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID).
const FIRST_FREE_OBJECTID: u64 = 256;
const DEV_STAT_VALUES_MAX: usize = 5;

#[repr(C)]
struct FsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    nodesize: u32,
    sectorsize: u32,
    clone_alignment: u32,
    // Newer kernels put csum type/size, flags, generation and metadata_uuid here; zero flags ask for none.
    _rest: [u8; 980],
}

#[repr(C)]
struct DevInfoArgs {
    devid: u64,
    uuid: [u8; 16],
    bytes_used: u64,
    total_bytes: u64,
    _unused: [u64; 379],
    path: [u8; 1024],
}

#[repr(C)]
struct GetDevStatsArgs {
    devid: u64,
    nr_items: u64,
    flags: u64,
    values: [u64; DEV_STAT_VALUES_MAX],
    _unused: [u64; 128 - 2 - DEV_STAT_VALUES_MAX],
}

const _: () = assert!(std::mem::size_of::<FsInfoArgs>() == 1024);
const _: () = assert!(std::mem::size_of::<DevInfoArgs>() == 4096);
const _: () = assert!(std::mem::size_of::<GetDevStatsArgs>() == 1032);

/// The generic Linux _IOC encoding (x86, arm, riscv, s390, loongarch). powerpc, mips and sparc use a
/// different one; there the ioctls are not attempted and the collector uses the sysfs fallback, as
/// node_exporter does whenever the ioctls fail.
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "s390x",
    target_arch = "loongarch64"
))]
const fn ioc(dir: u32, nr: u32, size: usize) -> Option<u32> {
    Some((dir << 30) | ((size as u32) << 16) | (BTRFS_IOCTL_MAGIC << 8) | nr)
}
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "s390x",
    target_arch = "loongarch64"
)))]
const fn ioc(_dir: u32, _nr: u32, _size: usize) -> Option<u32> {
    None
}

const IOC_READ: u32 = 2;
const IOC_READ_WRITE: u32 = 3;
const IOC_FS_INFO: Option<u32> = ioc(IOC_READ, 31, std::mem::size_of::<FsInfoArgs>());
const IOC_DEV_INFO: Option<u32> = ioc(IOC_READ_WRITE, 30, std::mem::size_of::<DevInfoArgs>());
const IOC_GET_DEV_STATS: Option<u32> =
    ioc(IOC_READ_WRITE, 52, std::mem::size_of::<GetDevStatsArgs>());

/// Filesystem-wide facts from BTRFS_IOC_FS_INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsInfo {
    pub max_id: u64,
    pub num_devices: u64,
    /// Lowercase hex without dashes, as dennwc/btrfs's FSID.String().
    pub fsid: String,
}

/// One device: BTRFS_IOC_DEV_INFO plus BTRFS_IOC_GET_DEV_STATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevStats {
    /// Device path as the kernel knows it, e.g. `/dev/loop0`.
    pub path: String,
    /// Dashed lowercase UUID, as dennwc/btrfs's UUID.String().
    pub uuid: String,
    pub bytes_used: u64,
    pub total_bytes: u64,
    /// write, read, flush, corruption, generation errors (the kernel's btrfs_dev_stat_values order).
    pub errors: [u64; DEV_STAT_VALUES_MAX],
}

/// An open btrfs mount point (read-only directory handle).
pub struct BtrfsFs {
    f: File,
}

fn do_ioctl<T>(f: &File, req: Option<u32>, arg: &mut T) -> io::Result<()> {
    let Some(req) = req else {
        return Err(io::Error::from(io::ErrorKind::Unsupported));
    };
    // SAFETY: `arg` is a repr(C) struct whose size is encoded in `req`, exactly the uapi layout the
    // kernel reads and writes; the fd is open for the duration of the call.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), req as _, arg as *mut T) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn hex(out: &mut String, b: &[u8]) {
    use std::fmt::Write as _;
    for x in b {
        let _ = write!(out, "{x:02x}");
    }
}

/// dennwc/btrfs's UUID.String(): 8-4-4-4-12 lowercase hex, `<zero>` for the all-zero UUID.
pub fn uuid_string(id: &[u8; 16]) -> String {
    if id.iter().all(|&b| b == 0) {
        return "<zero>".to_string();
    }
    let mut s = String::with_capacity(36);
    for (i, part) in [&id[0..4], &id[4..6], &id[6..8], &id[8..10], &id[10..16]]
        .iter()
        .enumerate()
    {
        if i > 0 {
            s.push('-');
        }
        hex(&mut s, part);
    }
    s
}

impl BtrfsFs {
    /// Opens `path` if it is the root of a btrfs subvolume (dennwc's Open(path, ro=true)): a directory
    /// with inode 256 on a filesystem with btrfs's statfs magic. O_NOATIME is tried first and dropped when
    /// not permitted.
    pub fn open(path: &Path) -> io::Result<BtrfsFs> {
        let md = std::fs::metadata(path)?;
        if !md.is_dir() || md.ino() != FIRST_FREE_OBJECTID {
            return Err(io::Error::other(format!(
                "not a btrfs subvolume: {}",
                path.display()
            )));
        }
        let f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(path)
        {
            Ok(f) => f,
            Err(_) => File::open(path)?,
        };
        // SAFETY: statfs is plain old data, filled on success.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and out pointer.
        if unsafe { libc::fstatfs(f.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
        if st.f_type as i64 != BTRFS_SUPER_MAGIC {
            return Err(io::Error::other(format!(
                "not a btrfs filesystem: {}",
                path.display()
            )));
        }
        Ok(BtrfsFs { f })
    }

    pub fn info(&self) -> io::Result<FsInfo> {
        // SAFETY: all-integer struct; zero is a valid value.
        let mut a: FsInfoArgs = unsafe { std::mem::zeroed() };
        do_ioctl(&self.f, IOC_FS_INFO, &mut a)?;
        let mut fsid = String::with_capacity(32);
        hex(&mut fsid, &a.fsid);
        Ok(FsInfo {
            max_id: a.max_id,
            num_devices: a.num_devices,
            fsid,
        })
    }

    /// Device `devid`; `Ok(None)` when no device has that id (ENODEV: ids need not be contiguous).
    pub fn dev_stats(&self, devid: u64) -> io::Result<Option<DevStats>> {
        // SAFETY: all-integer struct; zero is a valid value. Boxed: 4 KiB.
        let mut info: Box<DevInfoArgs> = Box::new(unsafe { std::mem::zeroed() });
        info.devid = devid;
        match do_ioctl(&self.f, IOC_DEV_INFO, &mut *info) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        }
        // SAFETY: as above.
        let mut st: GetDevStatsArgs = unsafe { std::mem::zeroed() };
        st.devid = devid;
        st.nr_items = DEV_STAT_VALUES_MAX as u64;
        do_ioctl(&self.f, IOC_GET_DEV_STATS, &mut st)?;
        let end = info
            .path
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(info.path.len());
        Ok(Some(DevStats {
            path: String::from_utf8_lossy(&info.path[..end]).into_owned(),
            uuid: uuid_string(&info.uuid),
            bytes_used: info.bytes_used,
            total_bytes: info.total_bytes,
            errors: st.values,
        }))
    }

    /// Every device of the filesystem, as node_exporter's getIoctlDeviceStats: ids 0..=max_id, skipping
    /// absent ids, stopping once num_devices were found; any other error fails the whole filesystem.
    pub fn all_devices(&self, info: &FsInfo) -> io::Result<Vec<DevStats>> {
        let mut v = Vec::with_capacity(info.num_devices.min(64) as usize);
        for id in 0..=info.max_id {
            if let Some(d) = self.dev_stats(id)? {
                v.push(d);
            }
            if v.len() as u64 == info.num_devices {
                break;
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // Values of BTRFS_IOC_FS_INFO / DEV_INFO / GET_DEV_STATS on x86_64 (from <linux/btrfs.h>).
        if cfg!(target_arch = "x86_64") {
            assert_eq!(IOC_FS_INFO, Some(0x8400_941F));
            assert_eq!(IOC_DEV_INFO, Some(0xD000_941E));
            assert_eq!(IOC_GET_DEV_STATS, Some(0xC408_9434));
        }
    }

    #[test]
    fn uuid_formats() {
        let mut id = [0u8; 16];
        assert_eq!(uuid_string(&id), "<zero>");
        for (i, b) in id.iter_mut().enumerate() {
            *b = (i as u8) * 17;
        }
        assert_eq!(uuid_string(&id), "00112233-4455-6677-8899-aabbccddeeff");
    }

    #[test]
    fn open_refuses_non_btrfs() {
        let d = tempfile::tempdir().expect("tempdir");
        assert!(BtrfsFs::open(d.path()).is_err());
        assert!(BtrfsFs::open(&d.path().join("missing")).is_err());
    }
}
