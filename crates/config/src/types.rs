//! Small value types shared by the config sections: durations, byte sizes, secrets, and serde helpers that
//! give YAML `null` Go's meaning ("the zero value").

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A Prometheus duration (`model.Duration`) in milliseconds. Zero means "not set" where Go's `omitempty`
/// would drop the field, so it is only serialized when non-zero (see [`Duration::is_zero`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub i64);

impl Duration {
    pub const fn from_secs(s: i64) -> Duration {
        Duration(s * 1000)
    }
    pub const fn from_millis(ms: i64) -> Duration {
        Duration(ms)
    }
    pub fn as_millis(self) -> i64 {
        self.0
    }
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.max(0) as u64)
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&model::duration::format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        model::duration::parse_duration(&s).map(Duration).map_err(serde::de::Error::custom)
    }
}

/// A byte size in Go's `units.Base2Bytes` spelling (`10MB`, `1GiB`); 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Base2Bytes prints the largest unit that divides exactly, e.g. "10MiB".
        const UNITS: [(&str, u64); 6] =
            [("EiB", 1 << 60), ("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        for (u, n) in UNITS {
            if self.0 >= n && self.0.is_multiple_of(n) {
                return s.serialize_str(&format!("{}{}", self.0 / n, u));
            }
        }
        s.serialize_str(&format!("{}B", self.0))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        model::duration::parse_size(&s).map(ByteSize).map_err(serde::de::Error::custom)
    }
}

/// A secret string: read from YAML as is, printed as `<secret>` (Prometheus's `config.Secret`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Deserializes `null` as `T::default()`, as Go's YAML decoder leaves a field at its zero value.
pub(crate) fn nd<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

pub(crate) fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

pub(crate) fn default_true() -> bool {
    true
}

/// Joins a relative path with the config file's directory (Go's `config.JoinDir`): empty and absolute paths
/// are left alone.
pub(crate) fn join_dir(dir: &std::path::Path, p: &str) -> String {
    if p.is_empty() || std::path::Path::new(p).is_absolute() {
        return p.to_string();
    }
    dir.join(p).to_string_lossy().into_owned()
}

/// Maps a Rust config struct name to the Go type name Prometheus prints in "field X not found in type T".
pub(crate) fn go_type_name(rust: &str) -> &'static str {
    match rust {
        "Config" => "config.plain",
        "GlobalConfig" => "config.plain",
        "RuntimeConfig" => "config.RuntimeConfig",
        "ScrapeConfig" => "config.ScrapeConfig",
        "RawRelabelConfig" => "relabel.plain",
        "StaticConfig" => "struct { Targets []string \"yaml:\\\"targets\\\"\"; Labels model.LabelSet \"yaml:\\\"labels\\\"\" }",
        "FileSdConfig" => "file.plain",
        "HttpSdConfig" => "http.plain",
        "DnsSdConfig" => "dns.plain",
        "TlsConfig" => "config.plain",
        "BasicAuth" => "config.BasicAuth",
        "Authorization" => "config.Authorization",
        "OAuth2" => "config.OAuth2",
        "AlertingConfig" => "config.plain",
        "AlertmanagerConfig" => "config.AlertmanagerConfig",
        "RemoteWriteConfig" => "config.plain",
        "QueueConfig" => "config.QueueConfig",
        "MetadataConfig" => "config.MetadataConfig",
        "RemoteReadConfig" => "config.plain",
        "StorageConfig" => "config.StorageConfig",
        "TsdbConfig" => "config.plain",
        "ExemplarsConfig" => "config.ExemplarsConfig",
        "TracingConfig" => "config.plain",
        _ => "config",
    }
}

/// Captures the `(name, fields)` a derived `Deserialize` impl passes to `deserialize_struct`, so an
/// "unknown field" error can name the struct it happened in.
pub(crate) fn struct_fields<'de, T: Deserialize<'de>>() -> Option<(&'static str, &'static [&'static str])> {
    use serde::de::{self, Visitor};
    struct Capture<'a>(&'a mut Option<(&'static str, &'static [&'static str])>);
    impl<'de> Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("capture"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            fields: &'static [&'static str],
            _v: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some((name, fields));
            Err(de::Error::custom("capture"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut out = None;
    let _ = T::deserialize(Capture(&mut out));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_size_prints_base2() {
        let p = |n: u64| serde_saphyr::to_string(&ByteSize(n)).unwrap().trim().to_string();
        assert_eq!(p(10 << 20), "10MiB");
        assert_eq!(p(1536), "1536B");
        assert_eq!(p(1 << 30), "1GiB");
    }

    #[test]
    fn secrets_are_hidden() {
        assert_eq!(serde_saphyr::to_string(&Secret("hunter2".into())).unwrap().trim(), "<secret>");
        assert_eq!(format!("{:?}", Secret("x".into())), "<secret>");
    }
}
