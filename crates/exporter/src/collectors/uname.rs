//! uname: the uname(2) system call as `node_uname_info` labels (node_exporter uname_linux.go).

use super::prelude::*;

pub struct Uname;

fn field(raw: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Collector for Uname {
    fn update(
        &mut self,
        _cfg: &Config,
        _s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        // SAFETY: utsname is plain old data; uname fills it completely on success.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a properly sized struct.
        if unsafe { libc::uname(&mut u) } != 0 {
            return Err(CollectError::Other(format!(
                "uname: {}",
                std::io::Error::last_os_error()
            )));
        }
        let (sys, rel, ver, mach, node, dom) = (
            field(&u.sysname),
            field(&u.release),
            field(&u.version),
            field(&u.machine),
            field(&u.nodename),
            field(&u.domainname),
        );
        out.emit(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            Gauge,
            &[
                ("sysname", &sys),
                ("release", &rel),
                ("version", &ver),
                ("machine", &mach),
                ("nodename", &node),
                ("domainname", &dom),
            ],
            1.0,
        );
        Ok(())
    }
}
