//! filesystem: statfs(2) of every mount in <procfs>/1/mounts (node_exporter filesystem_linux.go).
//!
//! A statfs on a dead NFS server blocks forever. As node_exporter does, each statfs gets
//! --collector.filesystem.mount-timeout; a mount that exceeds it is reported with device_error 1 and
//! skipped until its pending statfs finally returns. statfs runs on a worker thread so the scrape can stop
//! waiting; a worker stuck in the kernel is abandoned and a fresh one started.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use super::prelude::*;

/// (request id, mount point, statfs result) from the worker thread.
type Answer = (u64, String, Option<FsStats>);

#[derive(Default)]
pub struct Filesystem {
    seen: Vec<(String, String, String)>,
    worker: Option<mpsc::Sender<(u64, String, PathBuf)>>,
    results: Option<(mpsc::Sender<Answer>, mpsc::Receiver<Answer>)>,
    stuck: HashSet<String>,
    next_id: u64,
}

impl Filesystem {
    /// statfs with a deadline; `None` when it failed or timed out (then the mount is marked stuck).
    fn statfs_timed(
        &mut self,
        mount_point: &str,
        path: PathBuf,
        timeout: Duration,
    ) -> Option<FsStats> {
        let (res_tx, _) = self.results.get_or_insert_with(mpsc::channel);
        let res_tx = res_tx.clone();
        let worker = self.worker.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<(u64, String, PathBuf)>();
            let res_tx = res_tx.clone();
            let spawned = std::thread::Builder::new()
                .name("statfs".into())
                .spawn(move || {
                    for (id, mp, p) in rx {
                        if res_tx.send((id, mp, statfs(&p))).is_err() {
                            break;
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start statfs worker");
            }
            tx
        });
        self.next_id += 1;
        let id = self.next_id;
        if worker.send((id, mount_point.to_string(), path)).is_err() {
            self.worker = None;
            return None;
        }
        let deadline = std::time::Instant::now() + timeout;
        let (_, rx) = self.results.as_ref()?;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok((rid, _, st)) if rid == id => return st,
                // A late answer from an abandoned worker: that mount has recovered.
                Ok((_, mp, _)) => {
                    self.stuck.remove(&mp);
                }
                Err(_) => {
                    tracing::debug!(
                        mountpoint = mount_point,
                        "statfs timed out; marking mount stuck"
                    );
                    self.stuck.insert(mount_point.to_string());
                    self.worker = None;
                    return None;
                }
            }
        }
    }

    /// Unmarks mounts whose abandoned statfs has returned since the last scrape.
    fn drain_late_answers(&mut self) {
        if let Some((_, rx)) = &self.results {
            while let Ok((_, mp, _)) = rx.try_recv() {
                self.stuck.remove(&mp);
            }
        }
    }
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

pub struct FsStats {
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
        self.drain_late_answers();
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
            let st = if self.stuck.contains(&mp) {
                None
            } else {
                self.statfs_timed(
                    &mp,
                    crate::util::under(&cfg.rootfs, &mp),
                    cfg.fs_mount_timeout,
                )
            };
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
    fn timed_out_statfs_marks_mount_stuck_until_it_answers() {
        let mut fs = super::Filesystem::default();
        assert!(fs
            .statfs_timed("/", "/".into(), std::time::Duration::from_secs(5))
            .is_some());
        // A zero deadline usually expires before the worker answers; retry until it does.
        let mut stuck = false;
        for _ in 0..100 {
            if fs
                .statfs_timed("/", "/".into(), std::time::Duration::ZERO)
                .is_none()
            {
                stuck = true;
                break;
            }
        }
        assert!(stuck, "zero timeout never expired");
        assert!(fs.stuck.contains("/"));
        // The abandoned worker's answer arrives later and clears the mark.
        for _ in 0..200 {
            fs.drain_late_answers();
            if !fs.stuck.contains("/") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!fs.stuck.contains("/"));
        assert!(fs
            .statfs_timed("/", "/".into(), std::time::Duration::from_secs(5))
            .is_some());
    }

    #[test]
    fn mounts_unescape() {
        let m = super::parse_mounts("/dev/sda1 /mnt/a\\040b ext4 rw,relatime 0 0\n").unwrap();
        assert_eq!(m[0].mount_point, "/mnt/a b");
        assert!(super::parse_mounts("x y\n").is_err());
    }
}
