//! Service-discovery mechanisms Prometheus has and ignis does not implement (kubernetes, consul, ec2, …).
//! Their config sections are accepted as opaque YAML so users' prometheus.yml files load unchanged; the scrape
//! manager warns once per job and mechanism and discovers nothing from them, and `ignis check config` reports
//! them as warnings.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every `*_sd_configs` key of Prometheus 2.53 that ignis accepts without implementing, in the order of
/// Prometheus's configuration docs.
pub const UNSUPPORTED_SD_KEYS: [&str; 25] = [
    "azure_sd_configs",
    "consul_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "ec2_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "ionos_sd_configs",
    "kubernetes_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "openstack_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

/// The warning text for one mechanism of one job (logged by the server, printed by `check config`).
pub fn unsupported_sd_warning(owner: &str, key: &str) -> String {
    let mech = key.strip_suffix("_sd_configs").unwrap_or(key);
    format!("{owner}: {mech} service discovery ({key}) is not supported by ignis; no targets from it")
}

/// Any YAML value, kept as written so reload comparison and `/api/v1/status/config` see it (with the values
/// of secret-looking keys shown as `<secret>`, as Prometheus's `Secret` type renders them).
#[derive(Debug, Clone, PartialEq)]
pub enum Opaque {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Opaque>),
    Map(Vec<(Opaque, Opaque)>),
}

/// Keys whose values Prometheus declares as `config.Secret` in the SD configs (token, passwords, keys).
fn is_secret_key(k: &str) -> bool {
    matches!(
        k,
        "password" | "secret_key" | "token" | "client_secret" | "credentials" | "bearer_token" | "key"
            | "application_credential_secret" | "auth_token" | "api_key" | "consumer_key" | "application_secret"
    )
}

impl Serialize for Opaque {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Opaque::Null => s.serialize_unit(),
            Opaque::Bool(b) => s.serialize_bool(*b),
            Opaque::Int(i) => s.serialize_i64(*i),
            Opaque::UInt(u) => s.serialize_u64(*u),
            Opaque::Float(f) => s.serialize_f64(*f),
            Opaque::Str(v) => s.serialize_str(v),
            Opaque::Seq(v) => {
                let mut q = s.serialize_seq(Some(v.len()))?;
                for e in v {
                    q.serialize_element(e)?;
                }
                q.end()
            }
            Opaque::Map(m) => {
                let mut q = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    match (k, v) {
                        (Opaque::Str(name), Opaque::Str(_)) if is_secret_key(name) => q.serialize_entry(k, "<secret>")?,
                        _ => q.serialize_entry(k, v)?,
                    }
                }
                q.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Opaque {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Opaque;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Opaque, E> {
                Ok(Opaque::Null)
            }
            fn visit_none<E>(self) -> Result<Opaque, E> {
                Ok(Opaque::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Opaque, D::Error> {
                Opaque::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Opaque, E> {
                Ok(Opaque::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Opaque, E> {
                Ok(Opaque::Int(i))
            }
            fn visit_u64<E>(self, u: u64) -> Result<Opaque, E> {
                Ok(Opaque::UInt(u))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Opaque, E> {
                Ok(Opaque::Float(f))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Opaque, E> {
                Ok(Opaque::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Opaque, E> {
                Ok(Opaque::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Opaque, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = a.next_element()? {
                    v.push(e);
                }
                Ok(Opaque::Seq(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Opaque, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    v.push(kv);
                }
                Ok(Opaque::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}
