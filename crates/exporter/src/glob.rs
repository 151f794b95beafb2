//! Go's `path/filepath.Glob`, `Match` and `Clean` for Unix paths. node_exporter 1.5 passes
//! --collector.textfile.directory through `filepath.Glob`, so a value like `/var/lib/*/textfile` names
//! several directories; matching must follow Go's rules (no brace expansion, `*` never crosses `/`,
//! dot files are not special, results sorted per directory level).

use std::path::Path;

/// The pattern is malformed (Go's `ErrBadPattern`).
#[derive(Debug, PartialEq, Eq)]
pub struct BadPattern;

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// `filepath.Glob`: every existing path matching `pattern`, or `Err` for a malformed pattern.
pub fn glob(pattern: &str) -> Result<Vec<String>, BadPattern> {
    // Go validates the whole pattern first.
    match_pattern(pattern, "")?;
    if !has_meta(pattern) {
        return Ok(if std::fs::symlink_metadata(pattern).is_ok() {
            vec![pattern.to_string()]
        } else {
            Vec::new()
        });
    }
    let (dir, file) = match pattern.rfind('/') {
        Some(i) => (&pattern[..=i], &pattern[i + 1..]),
        None => ("", pattern),
    };
    let dir = clean_glob_dir(dir);
    if !has_meta(&dir) {
        return glob_in(&dir, file);
    }
    if dir == pattern {
        return Err(BadPattern);
    }
    let mut out = Vec::new();
    for d in glob(&dir)? {
        out.extend(glob_in(&d, file)?);
    }
    Ok(out)
}

fn clean_glob_dir(dir: &str) -> String {
    match dir {
        "" => ".".to_string(),
        "/" => "/".to_string(),
        d => d[..d.len() - 1].to_string(),
    }
}

fn glob_in(dir: &str, pattern: &str) -> Result<Vec<String>, BadPattern> {
    let mut out = Vec::new();
    let Ok(md) = std::fs::metadata(dir) else {
        return Ok(out);
    };
    if !md.is_dir() {
        return Ok(out);
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for n in names {
        if match_pattern(pattern, &n)? {
            out.push(clean(&Path::new(dir).join(&n).to_string_lossy()));
        }
    }
    Ok(out)
}

/// `filepath.Match(pattern, name)` with `/` as the separator.
pub fn match_pattern(mut pattern: &str, mut name: &str) -> Result<bool, BadPattern> {
    'pattern: while !pattern.is_empty() {
        let star = pattern.starts_with('*');
        pattern = pattern.trim_start_matches('*');
        let (chunk, rest) = split_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // Trailing * matches the rest unless it contains a separator.
            return Ok(!name.contains('/'));
        }
        let (t, ok) = match_chunk(chunk, name)?;
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            // Try skipping more characters, never across a separator.
            for (j, c) in name.char_indices() {
                if c == '/' {
                    break;
                }
                let (t, ok) = match_chunk(chunk, &name[j + c.len_utf8()..])?;
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
            }
        }
        // Go keeps checking the rest of the pattern for syntax errors before answering false.
        while !pattern.is_empty() {
            pattern = pattern.trim_start_matches('*');
            let (chunk, rest) = split_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, "")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the pattern up to the next unescaped, unbracketed `*`.
fn split_chunk(p: &str) -> (&str, &str) {
    let b = p.as_bytes();
    let mut in_range = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (&p[..i], &p[i..]),
            _ => {}
        }
        i += 1;
    }
    (p, "")
}

/// Matches `chunk` (no `*`) at the start of `s`; returns the rest of `s` and whether it matched. Syntax
/// errors are reported even when `s` is exhausted, as Go does.
fn match_chunk<'a>(mut chunk: &str, mut s: &'a str) -> Result<(&'a str, bool), BadPattern> {
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        let c0 = chunk.as_bytes()[0];
        match c0 {
            b'[' => {
                let mut r = None;
                if !failed {
                    let c = s.chars().next().unwrap_or('\0');
                    s = &s[c.len_utf8()..];
                    r = Some(c);
                }
                chunk = &chunk[1..];
                let negated = chunk.starts_with('^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut n = 0;
                loop {
                    if !chunk.is_empty() && chunk.as_bytes()[0] == b']' && n > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.starts_with('-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if let Some(r) = r {
                        if lo <= r && r <= hi {
                            matched = true;
                        }
                    }
                    n += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    let c = s.chars().next().unwrap_or('\0');
                    if c == '/' {
                        failed = true;
                    }
                    s = &s[c.len_utf8().min(s.len())..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c0 == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                let c = chunk.chars().next().unwrap_or('\0');
                if !failed {
                    if s.starts_with(c) {
                        s = &s[c.len_utf8()..];
                    } else {
                        failed = true;
                    }
                }
                chunk = &chunk[c.len_utf8()..];
            }
        }
    }
    if failed {
        return Ok(("", false));
    }
    Ok((s, true))
}

fn get_esc(chunk: &str) -> Result<(char, &str), BadPattern> {
    if chunk.is_empty() || chunk.starts_with('-') || chunk.starts_with(']') {
        return Err(BadPattern);
    }
    let mut chunk = chunk;
    if chunk.starts_with('\\') {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err(BadPattern);
        }
    }
    let c = chunk.chars().next().ok_or(BadPattern)?;
    let rest = &chunk[c.len_utf8()..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((c, rest))
}

/// `filepath.Clean` for Unix paths: collapses `//`, removes `.` and resolves `..` lexically.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_cases_from_go() {
        // A selection of Go's path/filepath matchTests.
        let cases: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("*x", "xxx", Ok(true)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("[^bc", "a", Err(BadPattern)),
            ("a[", "a", Err(BadPattern)),
            ("a[", "ab", Err(BadPattern)),
            ("a[", "x", Err(BadPattern)),
            ("a/b[", "x", Err(BadPattern)),
            ("*x", "xxx", Ok(true)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("\\", "a", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("[", "", Err(BadPattern)),
            ("a*", "", Ok(false)),
            ("*", "", Ok(true)),
        ];
        for (p, n, want) in cases {
            assert_eq!(&match_pattern(p, n), want, "Match({p:?}, {n:?})");
        }
    }

    #[test]
    fn clean_paths() {
        for (i, o) in [
            ("", "."),
            ("/", "/"),
            ("a//b/./c/", "a/b/c"),
            ("/../a", "/a"),
            ("../a/..", ".."),
            ("/x/y/../z", "/x/z"),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
    }

    #[test]
    fn glob_directories() {
        let d = tempfile::tempdir().expect("tempdir");
        for sub in ["b1", "a1", "c2", ".h1"] {
            std::fs::create_dir(d.path().join(sub)).expect("mkdir");
        }
        std::fs::write(d.path().join("f1"), "").expect("write");
        let base = d.path().to_string_lossy().into_owned();
        let got = glob(&format!("{base}/*1")).expect("glob");
        let names: Vec<&str> = got.iter().map(|p| &p[base.len() + 1..]).collect();
        assert_eq!(names, [".h1", "a1", "b1", "f1"]);
        assert_eq!(
            glob(&format!("{base}/a1")).expect("plain"),
            [format!("{base}/a1")]
        );
        assert!(glob(&format!("{base}/zz")).expect("absent").is_empty());
        assert_eq!(glob(&format!("{base}/[")), Err(BadPattern));
        std::fs::write(d.path().join("b1/xb"), "").expect("write");
        std::fs::write(d.path().join("a1/xa"), "").expect("write");
        let nested = glob(&format!("{base}/?1/x*")).expect("nested");
        assert_eq!(nested, [format!("{base}/a1/xa"), format!("{base}/b1/xb")]);
        // Like Go, ".." is not a directory entry, so it never matches a pattern component.
        assert!(glob(&format!("{base}/*/..")).expect("dotdot").is_empty());
    }
}
