//! SARIF 2.1.0 output for GitHub code scanning: one rule per finding kind,
//! one result per finding, and files that could not be read reported as
//! tool execution notifications (so an unread file never looks clean).

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{json, Value};

use super::{ScanReport, Severity};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub maps `security-severity` to its own critical/high/medium/low bands.
fn security_severity(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
    }
}

/// Relative paths stay relative (GitHub resolves them against the repo);
/// absolute ones become `file://` URIs.
fn uri(path: &str) -> String {
    let enc: String = path
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let enc = enc.trim_start_matches("./").to_string();
    if path.starts_with('/') {
        format!("file://{enc}")
    } else {
        enc
    }
}

pub fn document(reports: &[ScanReport]) -> Value {
    let mut rules: BTreeMap<&str, Severity> = BTreeMap::new();
    for f in reports.iter().flat_map(|r| &r.findings) {
        let e = rules.entry(f.kind.as_str()).or_insert(f.severity);
        *e = (*e).max(f.severity);
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let rule_objs: Vec<Value> = rules
        .iter()
        .map(|(id, sev)| {
            json!({
                "id": id,
                "name": id.split('-').map(|w| { let mut c = w.chars(); c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default() }).collect::<String>(),
                "shortDescription": { "text": format!("sandload scan: {id}") },
                "fullDescription": { "text": format!("Model file finding of kind {id}; see docs/SCAN.md.") },
                "defaultConfiguration": { "level": level(*sev) },
                "properties": { "security-severity": security_severity(*sev), "tags": ["security", "keras", "model"] },
            })
        })
        .collect();
    let mut results = Vec::new();
    let mut notes = Vec::new();
    for r in reports {
        for f in &r.findings {
            results.push(json!({
                "ruleId": f.kind,
                "ruleIndex": index[f.kind.as_str()],
                "level": level(f.severity),
                "message": { "text": format!("{} ({}): {}", f.location, f.severity.as_str(), f.message) },
                "locations": [{
                    "physicalLocation": { "artifactLocation": { "uri": uri(&r.path) }, "region": { "startLine": 1 } },
                    "logicalLocations": [{ "fullyQualifiedName": f.location, "kind": "member" }],
                }],
                "partialFingerprints": { "sandloadFinding/v1": format!("{}|{}|{}", f.kind, f.location, f.message.len()) },
                "properties": { "severity": f.severity.as_str() },
            }));
        }
        for e in &r.errors {
            notes.push(json!({
                "level": "error",
                "message": { "text": format!("{}: {e}", r.path) },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": uri(&r.path) } } }],
            }));
        }
    }
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "sandload",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/sandload/sandload",
                "rules": rule_objs,
            }},
            "invocations": [{ "executionSuccessful": notes.is_empty(), "toolExecutionNotifications": notes }],
            "results": results,
        }],
    })
}

pub fn write(w: &mut impl Write, reports: &[ScanReport]) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &document(reports))?;
    writeln!(w)?;
    Ok(())
}
