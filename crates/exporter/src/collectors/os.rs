//! os: /etc/os-release (or /usr/lib/os-release) under --path.rootfs (node_exporter os_release.go).

use std::collections::HashMap;
use std::time::SystemTime;

use super::prelude::*;

#[derive(Default)]
pub struct Os {
    /// Cached parse keyed by (path, mtime), as node_exporter caches it.
    cache: Option<(
        std::path::PathBuf,
        Option<SystemTime>,
        HashMap<String, String>,
    )>,
}

/// Parses an os-release env file: KEY=value with optional single/double quotes and backslash escapes.
pub fn parse_os_release(text: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let val = if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            inner.to_string()
        } else {
            v.to_string()
        };
        m.insert(k.trim().to_string(), val);
    }
    m
}

/// The leading `major[.minor]` of VERSION_ID as a number (regex `^[0-9]+\.?[0-9]*`).
pub fn major_minor(version_id: &str) -> f64 {
    let b = version_id.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == 0 {
        return 0.0;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    version_id[..i].trim_end_matches('.').parse().unwrap_or(0.0)
}

impl Collector for Os {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError> {
        let mut last_err = None;
        let mut found = None;
        for f in ["etc/os-release", "usr/lib/os-release"] {
            let p = cfg.root(f);
            match std::fs::metadata(&p) {
                Ok(md) => {
                    found = Some((p, md.modified().ok()));
                    break;
                }
                Err(e) => last_err = Some(CollectError::io(&p, e)),
            }
        }
        let Some((path, mtime)) = found else {
            return Err(last_err.unwrap_or_else(|| CollectError::Other("no os-release".into())));
        };
        let fresh =
            matches!(&self.cache, Some((p, t, _)) if *p == path && *t == mtime && mtime.is_some());
        if !fresh {
            let text = read_str(&path, &mut s.buf)?;
            self.cache = Some((path, mtime, parse_os_release(text)));
        }
        let Some((_, _, env)) = &self.cache else {
            return Ok(());
        };
        let g = |k: &str| env.get(k).map(String::as_str).unwrap_or("");
        out.emit(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
            Gauge,
            &[
                ("build_id", g("BUILD_ID")),
                ("id", g("ID")),
                ("id_like", g("ID_LIKE")),
                ("image_id", g("IMAGE_ID")),
                ("image_version", g("IMAGE_VERSION")),
                ("name", g("NAME")),
                ("pretty_name", g("PRETTY_NAME")),
                ("variant", g("VARIANT")),
                ("variant_id", g("VARIANT_ID")),
                ("version", g("VERSION")),
                ("version_codename", g("VERSION_CODENAME")),
                ("version_id", g("VERSION_ID")),
            ],
            1.0,
        );
        let v = major_minor(g("VERSION_ID"));
        if v > 0.0 {
            out.emit(
                "node_os_version",
                "Metric containing the major.minor part of the OS version.",
                Gauge,
                &[
                    ("id", g("ID")),
                    ("id_like", g("ID_LIKE")),
                    ("name", g("NAME")),
                ],
                v,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_parsing() {
        let m = parse_os_release(
            "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n# c\nX='a b'\n",
        );
        assert_eq!(m["NAME"], "Debian GNU/Linux");
        assert_eq!(m["ID"], "debian");
        assert_eq!(m["X"], "a b");
        assert_eq!(major_minor("22.04.3"), 22.04);
        assert_eq!(major_minor("12"), 12.0);
        assert_eq!(major_minor("rolling"), 0.0);
    }
}
