//! JSON for `/api/v1/targets`, `/api/v1/targets/metadata` and `/api/v1/metadata`, from the scrape manager.

use crate::json::push_str;
use scrape::{ScrapeManager, TargetInfo};
use std::collections::BTreeMap;

pub fn push_active(out: &mut String, t: &TargetInfo) {
    // Field names and shapes come from TargetInfo's serde attributes (the API's camelCase).
    out.push_str(&serde_json::to_string(t).unwrap_or_else(|_| "{}".into()));
}

pub fn push_dropped(out: &mut String, t: &TargetInfo) {
    out.push_str(r#"{"discoveredLabels":"#);
    out.push_str(&serde_json::to_string(&t.discovered_labels).unwrap_or_else(|_| "{}".into()));
    out.push('}');
}

/// `/api/v1/metadata`: metric name → unique (type, help, unit) entries, at most `limit` metrics (-1 = all).
pub fn metadata_json(m: &ScrapeManager, metric: &str, limit: i64) -> String {
    let mut by_metric: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for md in m.metadata() {
        if !metric.is_empty() && md.metric != metric {
            continue;
        }
        let e = by_metric.entry(md.metric.clone()).or_default();
        let item = (md.kind.clone(), md.help.clone(), md.unit.clone());
        if !e.contains(&item) {
            e.push(item);
        }
    }
    let mut out = String::from("{");
    for (i, (name, items)) in by_metric.iter().enumerate() {
        if limit >= 0 && i as i64 >= limit {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, name);
        out.push_str(":[");
        for (j, (k, h, u)) in items.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(r#"{"type":"#);
            push_str(&mut out, k);
            out.push_str(r#","help":"#);
            push_str(&mut out, h);
            out.push_str(r#","unit":"#);
            push_str(&mut out, u);
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// `/api/v1/targets/metadata`: per-target entries, filtered by `metric` and by a `match_target` selector.
pub fn targets_metadata_json(m: &ScrapeManager, metric: &str, target_matchers: &[model::Matcher], limit: i64) -> String {
    let mut out = String::from("[");
    let mut n = 0i64;
    for md in m.metadata() {
        if !metric.is_empty() && md.metric != metric {
            continue;
        }
        if !target_matchers.iter().all(|mt| mt.matches(md.target.get(&mt.name).map(String::as_str).unwrap_or(""))) {
            continue;
        }
        if limit >= 0 && n >= limit {
            break;
        }
        if n > 0 {
            out.push(',');
        }
        n += 1;
        out.push_str(&serde_json::to_string(&md).unwrap_or_else(|_| "{}".into()));
    }
    out.push(']');
    out
}
