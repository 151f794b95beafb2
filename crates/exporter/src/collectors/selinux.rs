//! selinux: enforcement state (node_exporter selinux_linux.go via opencontainers/selinux).

use super::prelude::*;

pub struct Selinux;

/// Finds the selinuxfs mount point in a mountinfo file.
fn selinuxfs_mount(mountinfo: &str) -> Option<String> {
    for line in mountinfo.lines() {
        let (pre, post) = line.split_once(" - ")?;
        if post.split_ascii_whitespace().next() == Some("selinuxfs") {
            return pre.split_ascii_whitespace().nth(4).map(str::to_string);
        }
    }
    None
}

/// SELINUX= in /etc/selinux/config: enforcing 1, permissive 0, disabled/absent -1.
fn config_mode(text: &str) -> f64 {
    for line in text.lines() {
        if let Some(v) = line.trim().strip_prefix("SELINUX=") {
            return match v.trim().trim_matches('"') {
                "enforcing" => 1.0,
                "permissive" => 0.0,
                _ => -1.0,
            };
        }
    }
    -1.0
}

impl Collector for Selinux {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let mnt = read_str(&cfg.proc("self/mountinfo"), &mut s.buf)
            .ok()
            .and_then(selinuxfs_mount);
        let enforce = mnt
            .as_deref()
            .and_then(|m| read_attr(&crate::util::under(&cfg.rootfs, m).join("enforce")));
        let Some(enforce) = enforce else {
            out.emit(
                "node_selinux_enabled",
                "SELinux is enabled, 1 is true, 0 is false",
                Gauge,
                &[],
                0.0,
            );
            return Ok(());
        };
        out.emit(
            "node_selinux_enabled",
            "SELinux is enabled, 1 is true, 0 is false",
            Gauge,
            &[],
            1.0,
        );
        let conf = read_str(&cfg.root("etc/selinux/config"), &mut s.buf)
            .map(config_mode)
            .unwrap_or(-1.0);
        out.emit(
            "node_selinux_config_mode",
            "Configured SELinux enforcement mode",
            Gauge,
            &[],
            conf,
        );
        let cur = if enforce.trim() == "1" { 1.0 } else { 0.0 };
        out.emit(
            "node_selinux_current_mode",
            "Current SELinux enforcement mode",
            Gauge,
            &[],
            cur,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_selinuxfs() {
        let mi = "22 1 0:21 / /sys/fs/selinux rw,relatime shared:7 - selinuxfs selinuxfs rw\n";
        assert_eq!(
            super::selinuxfs_mount(mi).as_deref(),
            Some("/sys/fs/selinux")
        );
        assert_eq!(super::config_mode("SELINUX=permissive\n"), 0.0);
    }
}
