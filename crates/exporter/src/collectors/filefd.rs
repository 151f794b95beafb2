//! filefd: /proc/sys/fs/file-nr (node_exporter filefd_linux.go).

use super::prelude::*;

pub struct Filefd;

impl Collector for Filefd {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let path = cfg.proc("sys/fs/file-nr");
        let text = read_str(&path, &mut s.buf)?;
        let parts: Vec<&str> = text.trim().split('\t').collect();
        if parts.len() < 3 {
            return Err(CollectError::parse(
                &path,
                "unexpected number of file stats",
            ));
        }
        let p = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| CollectError::parse(&path, format!("invalid value {v}")))
        };
        let (alloc, max) = (p(parts[0])?, p(parts[2])?);
        out.emit(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            Gauge,
            &[],
            alloc,
        );
        out.emit(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            Gauge,
            &[],
            max,
        );
        Ok(())
    }
}
