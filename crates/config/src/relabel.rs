//! Relabeling exactly as Prometheus's `model/relabel`: every action, anchored RE2-style regexes
//! (`^(?:regex)$`, no implicit `(?s)`), `$1`/`${name}` expansion with Go's `Regexp.Expand` rules, source
//! labels joined by `separator`, and the same validation messages.
//!
//! Rust's `regex` treats `\w`, `\d`, `\s`, `\b` as Unicode classes where Go's RE2 uses ASCII; patterns are
//! translated to Go's meaning first (`goregex`, shared with `model`'s matchers).

use model::labels::is_valid_label_name;
use model::{Labels, LabelsBuilder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::OnceLock;

/// A relabel action. YAML accepts any letter case, as Prometheus does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A regex anchored on both ends the way Prometheus anchors relabel regexes: `^(?:src)$`.
#[derive(Clone)]
pub struct Regex {
    src: String,
    re: regex::Regex,
}

impl Regex {
    pub fn new(src: &str) -> Result<Regex, regex::Error> {
        let re = regex::Regex::new(&format!("^(?:{})$", crate::goregex::translate(src)))?;
        Ok(Regex { src: src.to_string(), re })
    }

    /// The pattern as written in the config (without the anchoring).
    pub fn as_str(&self) -> &str {
        &self.src
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    pub fn inner(&self) -> &regex::Regex {
        &self.re
    }
}

impl Default for Regex {
    fn default() -> Self {
        default_regex().clone()
    }
}

fn default_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| match Regex::new("(.*)") {
        Ok(r) => r,
        Err(e) => panic!("BUG: default relabel regex does not compile: {e}"),
    })
}

impl PartialEq for Regex {
    fn eq(&self, o: &Self) -> bool {
        self.src == o.src
    }
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.src)
    }
}

impl Serialize for Regex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.src)
    }
}

/// One relabel rule with Prometheus's defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelabelConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: Regex,
    #[serde(skip_serializing_if = "crate::types::is_zero_u64")]
    pub modulus: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: ";".into(),
            regex: Regex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: "$1".into(),
            action: Action::Replace,
        }
    }
}

/// The YAML shape; validated into [`RelabelConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelabelConfig {
    #[serde(default, deserialize_with = "crate::types::nd")]
    source_labels: Vec<String>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default, deserialize_with = "some")]
    regex: Option<Option<String>>,
    #[serde(default)]
    modulus: Option<u64>,
    #[serde(default)]
    target_label: Option<String>,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

/// Distinguishes "absent" (outer None, via `default`) from "null" (Some(None)).
fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl<'de> Deserialize<'de> for RelabelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawRelabelConfig::deserialize(d)?;
        RelabelConfig::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

fn relabel_target_re() -> &'static regex::Regex {
    static R: OnceLock<regex::Regex> = OnceLock::new();
    R.get_or_init(|| match regex::Regex::new(&crate::goregex::translate(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$")) {
        Ok(r) => r,
        Err(e) => panic!("BUG: relabel target regex does not compile: {e}"),
    })
}

impl RelabelConfig {
    fn from_raw(raw: RawRelabelConfig) -> Result<RelabelConfig, String> {
        let def = RelabelConfig::default();
        let action = match raw.action {
            None => def.action,
            Some(a) if a.is_empty() => return Err("relabel action cannot be empty".into()),
            Some(a) => Action::parse(&a).ok_or_else(|| format!("unknown relabel action {a:?}"))?,
        };
        let regex = match raw.regex {
            None => def.regex.clone(),
            Some(r) => {
                let src = r.unwrap_or_default();
                Regex::new(&src).map_err(|e| format!("error parsing regexp: {e}"))?
            }
        };
        let c = RelabelConfig {
            source_labels: raw.source_labels,
            separator: raw.separator.unwrap_or(def.separator),
            regex,
            modulus: raw.modulus.unwrap_or(0),
            target_label: raw.target_label.unwrap_or_default(),
            replacement: raw.replacement.unwrap_or(def.replacement),
            action,
        };
        c.validate()?;
        Ok(c)
    }

    /// Prometheus's `relabel.Config.Validate`, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        use Action::*;
        let a = self.action;
        let def = RelabelConfig::default();
        if self.modulus == 0 && a == HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(a, Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual) && self.target_label.is_empty() {
            return Err(format!("relabel configuration for {a} action requires 'target_label' value"));
        }
        let tl = &self.target_label;
        if a == Replace && !tl.contains('$') && !is_valid_label_name(tl) {
            return Err(format!("{tl:?} is invalid 'target_label' for {a} action"));
        }
        if a == Replace && tl.contains('$') && !relabel_target_re().is_match(tl) {
            return Err(format!("{tl:?} is invalid 'target_label' for {a} action"));
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual) && !is_valid_label_name(tl) {
            return Err(format!("{tl:?} is invalid 'target_label' for {a} action"));
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual) && self.replacement != def.replacement {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == LabelMap && !relabel_target_re().is_match(&self.replacement) {
            return Err(format!("{:?} is invalid 'replacement' for {a} action", self.replacement));
        }
        if a == HashMod && !is_valid_label_name(tl) {
            return Err(format!("{tl:?} is invalid 'target_label' for {a} action"));
        }
        if matches!(a, DropEqual | KeepEqual)
            && (self.regex != def.regex
                || self.modulus != def.modulus
                || self.separator != def.separator
                || self.replacement != def.replacement)
        {
            return Err(format!("{a} action requires only 'source_labels' and `target_label`, and no other fields"));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != def.modulus
                || self.separator != def.separator
                || self.replacement != def.replacement)
        {
            return Err(format!("{a} action requires only 'regex', and no other fields"));
        }
        Ok(())
    }
}

/// Applies `cfgs` in order. `None` means the set was dropped (by keep/drop/keepequal/dropequal).
pub fn relabel(lset: &Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    if cfgs.is_empty() {
        return Some(lset.clone());
    }
    let mut lb = LabelsBuilder::from(lset);
    if relabel_builder(&mut lb, cfgs) {
        Some(lb.build())
    } else {
        None
    }
}

/// [`relabel`] on a builder, so callers that build target labels avoid a round trip through `Labels`.
/// Returns false when the set is dropped.
pub fn relabel_builder(lb: &mut LabelsBuilder, cfgs: &[RelabelConfig]) -> bool {
    let mut val = String::new();
    let mut scratch = String::new();
    cfgs.iter().all(|c| apply(c, lb, &mut val, &mut scratch))
}

fn apply(cfg: &RelabelConfig, lb: &mut LabelsBuilder, val: &mut String, scratch: &mut String) -> bool {
    val.clear();
    for (i, ln) in cfg.source_labels.iter().enumerate() {
        if i > 0 {
            val.push_str(&cfg.separator);
        }
        val.push_str(lb.get(ln).unwrap_or(""));
    }
    let val = val.as_str();
    match cfg.action {
        Action::Drop => {
            if cfg.regex.is_match(val) {
                return false;
            }
        }
        Action::Keep => {
            if !cfg.regex.is_match(val) {
                return false;
            }
        }
        Action::DropEqual => {
            if lb.get(&cfg.target_label).unwrap_or("") == val {
                return false;
            }
        }
        Action::KeepEqual => {
            if lb.get(&cfg.target_label).unwrap_or("") != val {
                return false;
            }
        }
        Action::Replace => {
            let Some(caps) = cfg.regex.inner().captures(val) else { return true };
            scratch.clear();
            caps.expand(&cfg.target_label, scratch);
            if !is_valid_label_name(scratch) {
                return true;
            }
            let target = std::mem::take(scratch);
            caps.expand(&cfg.replacement, scratch);
            // An empty result deletes the label (LabelsBuilder::set does that for empty values).
            lb.set(&target, scratch);
            *scratch = target;
        }
        Action::Lowercase => {
            scratch.clear();
            go_to_lower(val, scratch);
            lb.set(&cfg.target_label, scratch);
        }
        Action::Uppercase => {
            scratch.clear();
            go_to_upper(val, scratch);
            lb.set(&cfg.target_label, scratch);
        }
        Action::HashMod => {
            let d = md5::compute(val.as_bytes()).0;
            let mut hi = [0u8; 8];
            hi.copy_from_slice(&d[8..]);
            let m = u64::from_be_bytes(hi) % cfg.modulus;
            lb.set(&cfg.target_label, &m.to_string());
        }
        Action::LabelMap => {
            // Iterate over a snapshot: Prometheus's Builder.Range does the same so rules can't see their own
            // output.
            let snapshot: Vec<(String, String)> = lb.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            for (n, v) in &snapshot {
                if let Some(caps) = cfg.regex.inner().captures(n) {
                    scratch.clear();
                    caps.expand(&cfg.replacement, scratch);
                    lb.set(scratch, v);
                }
            }
        }
        Action::LabelDrop => {
            lb.retain(|n, _| !cfg.regex.is_match(n));
        }
        Action::LabelKeep => {
            lb.retain(|n, _| cfg.regex.is_match(n));
        }
    }
    true
}

/// Go's `strings.ToLower`: each character through `unicode.ToLower`, the *simple* (one-to-one) case mapping
/// of UnicodeData.txt. Rust's `str::to_lowercase` uses the full mapping instead, which differs for `İ`
/// (U+0130 becomes `i` + U+0307) and for a final `Σ` (becomes `ς`); Go gives `i` and `σ`.
fn go_to_lower(s: &str, out: &mut String) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| b.to_ascii_lowercase() as char));
        return;
    }
    for c in s.chars() {
        let mut l = c.to_lowercase();
        match (l.next(), l.next()) {
            (Some(one), None) => out.push(one),
            // The only unconditional multi-character lowercase mapping is U+0130; its simple mapping is `i`.
            _ => out.push(if c == '\u{130}' { 'i' } else { c }),
        }
    }
}

/// Go's `strings.ToUpper` (simple mapping, see [`go_to_lower`]). Where Rust's full mapping expands a character
/// (`ß` → `SS`, `ŉ` → `ʼN`, Greek with ypogegrammeni, ligatures), Go keeps the character unless
/// UnicodeData.txt gives it a one-to-one uppercase: only the Greek iota-subscript letters below have one.
fn go_to_upper(s: &str, out: &mut String) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| b.to_ascii_uppercase() as char));
        return;
    }
    for c in s.chars() {
        let mut u = c.to_uppercase();
        match (u.next(), u.next()) {
            (Some(one), None) => out.push(one),
            _ => {
                let simple = match c as u32 {
                    // ᾀ..ᾇ, ᾐ..ᾗ, ᾠ..ᾧ → ᾈ..ᾏ, ᾘ..ᾟ, ᾨ..ᾯ (the titlecase forms).
                    0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => char::from_u32(c as u32 + 8),
                    0x1FB3 => Some('\u{1FBC}'),
                    0x1FC3 => Some('\u{1FCC}'),
                    0x1FF3 => Some('\u{1FFC}'),
                    _ => None,
                };
                out.push(simple.unwrap_or(c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::labels;
    use proptest::prelude::*;

    fn cfg(yaml: &str) -> RelabelConfig {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    fn cfg_err(yaml: &str) -> String {
        match serde_saphyr::from_str::<RelabelConfig>(yaml) {
            Ok(c) => panic!("expected error for {yaml}, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// Go's simple case mapping, not Rust's full one (values checked against Prometheus 2.42 by the
    /// interop_targets test).
    #[test]
    fn case_mapping_is_gos() {
        let f = |g: fn(&str, &mut String), s: &str| {
            let mut o = String::new();
            g(s, &mut o);
            o
        };
        assert_eq!(f(go_to_lower, "ÄbC ΣΑΣ İx ǅ"), "äbc σασ ix ǆ");
        assert_eq!(f(go_to_upper, "ßŉ ǅ ᾳ ᾀ ᾈ ﬀ straße ǰ"), "ßŉ Ǆ ᾼ ᾈ ᾈ ﬀ STRAßE ǰ");
        assert_eq!(f(go_to_lower, "AbC-09"), "abc-09");
        assert_eq!(f(go_to_upper, "AbC-09"), "ABC-09");
        let r = cfg("source_labels: [a]\ntarget_label: b\naction: uppercase\n");
        assert_eq!(relabel(&labels! {"a" => "maß"}, &[r]), Some(labels! {"a" => "maß", "b" => "MAß"}));
    }

    /// Table tests modelled on Prometheus's relabel_test.go cases.
    #[test]
    fn table() {
        struct Case {
            input: Labels,
            rules: &'static str,
            output: Option<Labels>,
        }
        let cases = vec![
            Case {
                input: labels! {"a" => "foo", "b" => "bar", "c" => "baz"},
                rules: "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  separator: ';'\n  replacement: ch${1}-ch${1}\n  action: replace\n",
                output: Some(labels! {"a" => "foo", "b" => "bar", "c" => "baz", "d" => "choo-choo"}),
            },
            Case {
                input: labels! {"a" => "foo", "b" => "bar", "c" => "baz"},
                rules: "- source_labels: [a, b]\n  regex: f(.*);(.*)r\n  target_label: a\n  separator: ';'\n  replacement: b${1}${2}m\n- source_labels: [c, a]\n  regex: (b).*b(.*)ba(.*)\n  target_label: d\n  separator: ';'\n  replacement: $1$2$2$3\n  action: replace\n",
                output: Some(labels! {"a" => "boobam", "b" => "bar", "c" => "baz", "d" => "boooom"}),
            },
            Case {
                input: labels! {"a" => "foo"},
                rules: "- source_labels: [a]\n  regex: .*o.*\n  action: drop\n",
                output: None,
            },
            Case {
                input: labels! {"a" => "foo", "b" => "bar"},
                rules: "- source_labels: [a]\n  regex: .*o.*\n  action: drop\n",
                output: None,
            },
            Case {
                input: labels! {"a" => "abc"},
                rules: "- source_labels: [a]\n  regex: .*(b).*\n  target_label: d\n  replacement: $1\n",
                output: Some(labels! {"a" => "abc", "d" => "b"}),
            },
            Case {
                input: labels! {"a" => "foo"},
                rules: "- source_labels: [a]\n  regex: no-match\n  action: drop\n",
                output: Some(labels! {"a" => "foo"}),
            },
            Case {
                input: labels! {"a" => "foo"},
                rules: "- source_labels: [a]\n  regex: f|o\n  action: drop\n",
                output: Some(labels! {"a" => "foo"}),
            },
            Case {
                input: labels! {"a" => "foo"},
                rules: "- source_labels: [a]\n  regex: no-match\n  action: keep\n",
                output: None,
            },
            Case {
                input: labels! {"a" => "foo"},
                rules: "- source_labels: [a]\n  regex: f.*\n  action: keep\n",
                output: Some(labels! {"a" => "foo"}),
            },
            // No replacement must be applied if there is no match.
            Case {
                input: labels! {"a" => "boo"},
                rules: "- source_labels: [a]\n  regex: f\n  target_label: b\n  replacement: bar\n",
                output: Some(labels! {"a" => "boo"}),
            },
            // Blank replacement deletes the label.
            Case {
                input: labels! {"a" => "foo", "f" => "baz"},
                rules: "- source_labels: [a]\n  regex: (f).*\n  target_label: $1\n  replacement: $2\n",
                output: Some(labels! {"a" => "foo"}),
            },
            Case {
                input: labels! {"a" => "foo", "b" => "bar", "c" => "baz"},
                rules: "- source_labels: [c]\n  target_label: d\n  separator: ';'\n  action: hashmod\n  modulus: 1000\n",
                output: Some(labels! {"a" => "foo", "b" => "bar", "c" => "baz", "d" => "976"}),
            },
            Case {
                input: labels! {"a" => "foo\nbar"},
                rules: "- source_labels: [a]\n  target_label: b\n  separator: ';'\n  action: hashmod\n  modulus: 1000\n",
                output: Some(labels! {"a" => "foo\nbar", "b" => "734"}),
            },
            Case {
                input: labels! {"a" => "foo", "b1" => "bar", "b2" => "baz"},
                rules: "- regex: (b.*)\n  replacement: bar_${1}\n  action: labelmap\n",
                output: Some(labels! {"a" => "foo", "b1" => "bar", "b2" => "baz", "bar_b1" => "bar", "bar_b2" => "baz"}),
            },
            Case {
                input: labels! {"a" => "foo", "__meta_my_bar" => "aaa", "__meta_my_baz" => "bbb", "__meta_other" => "ccc"},
                rules: "- regex: __meta_(my.*)\n  replacement: ${1}\n  action: labelmap\n",
                output: Some(labels! {"a" => "foo", "__meta_my_bar" => "aaa", "__meta_my_baz" => "bbb", "__meta_other" => "ccc", "my_bar" => "aaa", "my_baz" => "bbb"}),
            },
            // Multiple-character target label templates.
            Case {
                input: labels! {"a" => "some-name-value"},
                rules: "- source_labels: [a]\n  regex: some-([^-]+)-([^,]+)\n  action: replace\n  replacement: ${2}\n  target_label: ${1}\n",
                output: Some(labels! {"a" => "some-name-value", "name" => "value"}),
            },
            // Invalid target label after expansion is ignored.
            Case {
                input: labels! {"a" => "some-name-0"},
                rules: "- source_labels: [a]\n  regex: some-([^-]+)-([^,]+)\n  action: replace\n  replacement: ${1}\n  target_label: ${3}\n",
                output: Some(labels! {"a" => "some-name-0"}),
            },
            Case {
                input: labels! {"a" => "foo", "b" => "bar", "c" => "baz"},
                rules: "- regex: (b)\n  action: labeldrop\n",
                output: Some(labels! {"a" => "foo", "c" => "baz"}),
            },
            Case {
                input: labels! {"a" => "foo", "b" => "bar", "c" => "baz"},
                rules: "- regex: (b|c)\n  action: labelkeep\n",
                output: Some(labels! {"b" => "bar", "c" => "baz"}),
            },
            Case {
                input: labels! {"foo" => "bAr123Foo"},
                rules: "- source_labels: [foo]\n  action: uppercase\n  target_label: foo_uppercase\n- source_labels: [foo]\n  action: lowercase\n  target_label: foo_lowercase\n",
                output: Some(labels! {"foo" => "bAr123Foo", "foo_lowercase" => "bar123foo", "foo_uppercase" => "BAR123FOO"}),
            },
            Case {
                input: labels! {"__tmp_port" => "1234", "__port1" => "1234", "__port2" => "5678"},
                rules: "- source_labels: [__tmp_port]\n  action: keepequal\n  target_label: __port1\n",
                output: Some(labels! {"__tmp_port" => "1234", "__port1" => "1234", "__port2" => "5678"}),
            },
            Case {
                input: labels! {"__tmp_port" => "1234", "__port1" => "1234", "__port2" => "5678"},
                rules: "- source_labels: [__tmp_port]\n  action: dropequal\n  target_label: __port1\n",
                output: None,
            },
            Case {
                input: labels! {"__tmp_port" => "1234", "__port1" => "1234", "__port2" => "5678"},
                rules: "- source_labels: [__tmp_port]\n  action: keepequal\n  target_label: __port2\n",
                output: None,
            },
            // `.` does not match newlines (no implicit (?s)), and the regex is anchored.
            Case {
                input: labels! {"a" => "foo\nbar"},
                rules: "- source_labels: [a]\n  regex: foo.*\n  action: keep\n",
                output: None,
            },
            Case {
                input: labels! {"a" => "xfoo"},
                rules: "- source_labels: [a]\n  regex: foo\n  action: keep\n",
                output: None,
            },
            // Missing source labels join as empty strings.
            Case {
                input: labels! {"a" => "x"},
                rules: "- source_labels: [a, missing]\n  regex: 'x;'\n  target_label: joined\n  replacement: ok\n",
                output: Some(labels! {"a" => "x", "joined" => "ok"}),
            },
            // `$$` is a literal dollar; an unknown group expands to nothing.
            Case {
                input: labels! {"a" => "v"},
                rules: "- source_labels: [a]\n  regex: (v)\n  target_label: b\n  replacement: $$${1}${nope}\n",
                output: Some(labels! {"a" => "v", "b" => "$v"}),
            },
            // Action names are case-insensitive.
            Case {
                input: labels! {"a" => "foo"},
                rules: "- source_labels: [a]\n  regex: foo\n  action: DROP\n",
                output: None,
            },
        ];
        for (i, c) in cases.into_iter().enumerate() {
            let rules: Vec<RelabelConfig> =
                serde_saphyr::from_str(c.rules).unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(relabel(&c.input, &rules), c.output, "case {i}: {}", c.rules);
        }
    }

    #[test]
    fn defaults() {
        let c = cfg("target_label: x\n");
        assert_eq!(c.separator, ";");
        assert_eq!(c.regex.as_str(), "(.*)");
        assert_eq!(c.replacement, "$1");
        assert_eq!(c.action, Action::Replace);
        let null_regex = cfg("target_label: x\nregex:\n");
        assert_eq!(null_regex.regex.as_str(), "");
    }

    #[test]
    fn validation_messages() {
        let cases = [
            ("action: hashmod\ntarget_label: x\n", "relabel configuration for hashmod requires non-zero modulus"),
            ("action: replace\n", "relabel configuration for replace action requires 'target_label' value"),
            ("action: lowercase\n", "relabel configuration for lowercase action requires 'target_label' value"),
            ("target_label: 1abc\n", "\"1abc\" is invalid 'target_label' for replace action"),
            ("target_label: a$\n", "\"a$\" is invalid 'target_label' for replace action"),
            ("action: uppercase\ntarget_label: x\nreplacement: y\n", "'replacement' can not be set for uppercase action"),
            ("action: labelmap\nreplacement: 1x\n", "\"1x\" is invalid 'replacement' for labelmap action"),
            (
                "action: keepequal\ntarget_label: x\nregex: a\n",
                "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
            ),
            ("action: labeldrop\nsource_labels: [a]\n", "labeldrop action requires only 'regex', and no other fields"),
            ("action: labelkeep\ntarget_label: a\n", "labelkeep action requires only 'regex', and no other fields"),
            ("action: bogus\n", "unknown relabel action \"bogus\""),
            ("action: ''\n", "relabel action cannot be empty"),
            ("regex: '('\ntarget_label: x\n", "error parsing regexp"),
            ("target_label: x\nfoo: 1\n", "unknown field `foo`"),
        ];
        for (y, want) in cases {
            let e = cfg_err(y);
            assert!(e.contains(want), "{y}: got {e}");
        }
        // Valid templated target label.
        cfg("target_label: ${1}_x\n");
        cfg("action: labelmap\nreplacement: ${1}\n");
    }

    #[test]
    fn serializes_like_prometheus() {
        let c = cfg("source_labels: [a]\ntarget_label: b\n");
        let s = serde_saphyr::to_string(&c).unwrap();
        assert!(s.contains("separator: ;") || s.contains("separator: ';'") || s.contains("separator: \";\""), "{s}");
        assert!(s.contains("action: replace"), "{s}");
        assert!(!s.contains("modulus"), "{s}");
    }

    /// Naive oracle for replace: compute with a fresh regex and plain string ops.
    fn oracle_replace(lset: &Labels, src: &[String], re: &str, target: &str, repl: &str) -> Labels {
        let joined: Vec<&str> = src.iter().map(|s| lset.get(s).unwrap_or("")).collect();
        let val = joined.join(";");
        let r = regex::Regex::new(&format!("^(?:{re})$")).unwrap();
        let mut b = lset.builder();
        if let Some(c) = r.captures(&val) {
            let mut t = String::new();
            c.expand(target, &mut t);
            if is_valid_label_name(&t) {
                let mut v = String::new();
                c.expand(repl, &mut v);
                b.set(&t, &v);
            }
        }
        b.build()
    }

    proptest! {
        #[test]
        fn replace_agrees_with_oracle(
            vals in proptest::collection::btree_map("[a-c]", "[a-c0-9]{0,4}", 0..4),
            src in proptest::collection::vec("[a-d]", 1..3),
            re in prop_oneof![Just("(.*)"), Just("a(.*)"), Just("([a-c]+)([0-9]*)"), Just("b|c")],
            target in prop_oneof![Just("t"), Just("a"), Just("${1}x")],
            repl in prop_oneof![Just("$1"), Just("${2}-${1}"), Just(""), Just("lit")],
        ) {
            let pairs: Vec<(String, String)> = vals.into_iter().collect();
            let lset = Labels::from_pairs(&pairs);
            let y = format!("source_labels: [{}]\nregex: '{re}'\ntarget_label: '{target}'\nreplacement: '{repl}'\n", src.join(", "));
            let c: RelabelConfig = serde_saphyr::from_str(&y).unwrap();
            let got = relabel(&lset, std::slice::from_ref(&c)).unwrap();
            prop_assert_eq!(got, oracle_replace(&lset, &src, re, target, repl));
        }

        #[test]
        fn keep_drop_are_complements(v in "[a-z]{0,5}", re in "[a-z.*|]{1,4}") {
            prop_assume!(regex::Regex::new(&re).is_ok());
            let lset = labels! {"x" => v.as_str()};
            let keep: RelabelConfig = serde_saphyr::from_str(&format!("source_labels: [x]\nregex: '{re}'\naction: keep\n")).unwrap();
            let drop: RelabelConfig = serde_saphyr::from_str(&format!("source_labels: [x]\nregex: '{re}'\naction: drop\n")).unwrap();
            let k = relabel(&lset, std::slice::from_ref(&keep)).is_some();
            let d = relabel(&lset, std::slice::from_ref(&drop)).is_some();
            prop_assert!(k != d);
        }
    }
}
