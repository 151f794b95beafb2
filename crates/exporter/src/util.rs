//! Small file readers shared by collectors. Everything reads into caller-owned buffers so a scrape does
//! not allocate per file once the buffers have grown.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::collectors::CollectError;

/// Reads the whole file at `path` into `buf` (cleared first). /proc files report size 0, so this cannot
/// use the metadata length; `read_to_end` on a reused buffer is the cheapest way.
pub fn read_into(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    File::open(path)?.read_to_end(buf)?;
    Ok(())
}

/// Reads a file as UTF-8 text into `buf`.
pub fn read_str<'a>(path: &Path, buf: &'a mut Vec<u8>) -> Result<&'a str, CollectError> {
    read_into(path, buf).map_err(|e| CollectError::io(path, e))?;
    std::str::from_utf8(buf).map_err(|_| CollectError::parse(path, "not UTF-8"))
}

/// Reads a file containing one unsigned integer (sysfs attribute style).
pub fn read_u64(path: &Path) -> Result<u64, CollectError> {
    let mut b = [0u8; 64];
    let s = read_small(path, &mut b)?;
    s.trim()
        .parse()
        .map_err(|_| CollectError::parse(path, "expected unsigned integer"))
}

/// Reads a file containing one signed integer.
pub fn read_i64(path: &Path) -> Result<i64, CollectError> {
    let mut b = [0u8; 64];
    let s = read_small(path, &mut b)?;
    s.trim()
        .parse()
        .map_err(|_| CollectError::parse(path, "expected integer"))
}

/// Reads a short sysfs attribute (≤ 4 KiB) into a stack buffer; returns it without the trailing newline.
pub fn read_small<'a, const N: usize>(
    path: &Path,
    b: &'a mut [u8; N],
) -> Result<&'a str, CollectError> {
    let mut f = File::open(path).map_err(|e| CollectError::io(path, e))?;
    let mut n = 0;
    loop {
        match f.read(&mut b[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if n == N {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CollectError::io(path, e)),
        }
    }
    let s = std::str::from_utf8(&b[..n]).map_err(|_| CollectError::parse(path, "not UTF-8"))?;
    Ok(s.trim_end_matches('\n'))
}

/// Reads a sysfs attribute as an owned trimmed string; `None` when absent or unreadable (many attributes
/// return EINVAL when the device does not support them, which node_exporter treats as absent).
pub fn read_attr(path: &Path) -> Option<String> {
    let mut b = [0u8; 4096];
    read_small(path, &mut b).ok().map(|s| s.trim().to_string())
}

/// Directory entry names sorted, as Go's `os.ReadDir` returns them.
pub fn sorted_dir(path: &Path) -> Result<Vec<String>, CollectError> {
    let rd = std::fs::read_dir(path).map_err(|e| CollectError::io(path, e))?;
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Joins like Go's `filepath.Join(root, name)` for absolute `name` under a configurable root.
pub fn under(root: &Path, name: &str) -> PathBuf {
    root.join(name.trim_start_matches('/'))
}

/// Replaces runs of characters outside `[0-9A-Za-z_]` (with surrounding underscores) by one `_`, like
/// node_exporter's SanitizeMetricName (regex `_*[^0-9A-Za-z_]+_*`).
pub fn sanitize_metric_name(s: &str, out: &mut String) {
    out.clear();
    let b = s.as_bytes();
    let ok = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        if ok(b[i]) && b[i] != b'_' {
            out.push(b[i] as char);
            i += 1;
            continue;
        }
        // A run of underscores becomes a separator only if a non-word byte is inside it.
        let start = i;
        while i < b.len() && b[i] == b'_' {
            i += 1;
        }
        let mut bad = false;
        while i < b.len() && !ok(b[i]) {
            bad = true;
            // Skip the whole UTF-8 sequence.
            i += 1;
        }
        if bad {
            while i < b.len() && b[i] == b'_' {
                i += 1;
            }
            out.push('_');
        } else {
            for _ in start..i {
                out.push('_');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_like_node_exporter() {
        let mut s = String::new();
        for (input, want) in [
            ("fan1_input", "fan1_input"),
            ("a-b", "a_b"),
            ("a__-__b", "a_b"),
            ("a__b", "a__b"),
            ("a.b.c", "a_b_c"),
            ("x(y)", "x_y_"),
            ("a é b", "a_b"),
        ] {
            sanitize_metric_name(input, &mut s);
            assert_eq!(s, want, "{input}");
        }
    }
}
