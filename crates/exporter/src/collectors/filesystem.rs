//! filesystem: statfs(2) of every mount in <procfs>/1/mounts (node_exporter filesystem_linux.go).
//!
//! Difference: node_exporter watches each statfs with a timer and marks a mount "stuck" after
//! --collector.filesystem.mount-timeout; we call statfs inline (a hung NFS mount would block a scrape).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use super::prelude::*;

#[derive(Default)]
pub struct Filesystem {
    seen: Vec<(String, String, String)>,
}

/// One mount from /proc/<pid>/mounts.
#[derive(Debug, PartialEq, Eq)]
pub struct Mount<'a> {
    pub device: &'a str,
    pub mount_point: String,
    pub fs_type: &'a str,
    pub options: &'a str,
}

/// Parses a mounts file, unescaping `\040` and `\011` in mount points as node_exporter does.
pub fn parse_mounts(text: &str) -> Result<Vec<Mount<'_>>, String> {
    let mut v = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        if parts.len() < 4 {
            return Err(format!("malformed mount point information: {line:?}"));
        }
        v.push(Mount {
            device: parts[0],
            mount_point: parts[1].replace("\\040", " ").replace("\\011", "\t"),
            fs_type: parts[2],
            options: parts[3],
        });
    }
    Ok(v)
}

struct FsStats {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

fn statfs(path: &std::path::Path) -> Option<FsStats> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs is plain old data, filled on success.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a valid out pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let bsize = st.f_bsize as f64;
    Some(FsStats {
        size: st.f_blocks as f64 * bsize,
        free: st.f_bfree as f64 * bsize,
        avail: st.f_bavail as f64 * bsize,
        files: st.f_files as f64,
        files_free: st.f_ffree as f64,
    })
}

impl Collector for Filesystem {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let p1 = cfg.proc("1/mounts");
        let text = match read_str(&p1, &mut s.buf) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => read_str(&cfg.proc("mounts"), &mut s.buf)?,
            Err(e) => return Err(e),
        };
        let mounts = parse_mounts(text).map_err(|m| CollectError::parse(&p1, m))?;
        let root_is_slash = cfg.rootfs.as_os_str() == "/";
        let root_str = cfg.rootfs.to_string_lossy();
        self.seen.clear();
        for m in mounts {
            // rootfsStripPrefix: with --path.rootfs, report mount points relative to it.
            let mp = if root_is_slash {
                m.mount_point.clone()
            } else {
                match m.mount_point.strip_prefix(root_str.as_ref()) {
                    Some("") => "/".to_string(),
                    Some(rest) => rest.to_string(),
                    None => m.mount_point.clone(),
                }
            };
            if cfg.fs_mount_points_exclude.is_match(&mp) || cfg.fs_types_exclude.is_match(m.fs_type)
            {
                continue;
            }
            if self
                .seen
                .iter()
                .any(|(d, p, t)| d == m.device && *p == mp && t == m.fs_type)
            {
                continue;
            }
            self.seen
                .push((m.device.to_string(), mp.clone(), m.fs_type.to_string()));
            let labels = [
                ("device", m.device),
                ("mountpoint", mp.as_str()),
                ("fstype", m.fs_type),
            ];
            let st = statfs(&crate::util::under(&cfg.rootfs, &mp));
            out.emit(
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
                Gauge,
                &labels,
                if st.is_some() { 0.0 } else { 1.0 },
            );
            let Some(st) = st else { continue };
            let ro = if m.options.split(',').any(|o| o == "ro") {
                1.0
            } else {
                0.0
            };
            out.emit(
                "node_filesystem_size_bytes",
                "Filesystem size in bytes.",
                Gauge,
                &labels,
                st.size,
            );
            out.emit(
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
                Gauge,
                &labels,
                st.free,
            );
            out.emit(
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                Gauge,
                &labels,
                st.avail,
            );
            out.emit(
                "node_filesystem_files",
                "Filesystem total file nodes.",
                Gauge,
                &labels,
                st.files,
            );
            out.emit(
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
                Gauge,
                &labels,
                st.files_free,
            );
            out.emit(
                "node_filesystem_readonly",
                "Filesystem read-only status.",
                Gauge,
                &labels,
                ro,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mounts_unescape() {
        let m = super::parse_mounts("/dev/sda1 /mnt/a\\040b ext4 rw,relatime 0 0\n").unwrap();
        assert_eq!(m[0].mount_point, "/mnt/a b");
        assert!(super::parse_mounts("x y\n").is_err());
    }
}
