//! Human and JSON renderings of scan reports, and the stderr progress line.
//! Colour and progress only when the stream is a terminal (and NO_COLOR is
//! unset), so pipes and CI logs get plain text.

use std::io::{IsTerminal, Write};
use std::path::Path;

use super::{ExitCode, ScanReport, Severity};

/// Version of the `--format json` document; bumped on breaking changes.
pub const JSON_SCHEMA_VERSION: u32 = 1;
/// Progress is shown only for at least this many files.
const PROGRESS_MIN_FILES: usize = 20;

fn colour(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => "\x1b[1;31m",
        Severity::High => "\x1b[31m",
        Severity::Medium => "\x1b[33m",
        Severity::Low => "\x1b[36m",
    }
}

pub fn human(w: &mut impl Write, reports: &[ScanReport], fail_on: Severity) -> std::io::Result<()> {
    let tty = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let paint =
        |sev: Severity, text: &str| if tty { format!("{}{text}\x1b[0m", colour(sev)) } else { text.to_string() };
    let (mut skipped, mut findings, mut errors) = (0usize, 0usize, 0usize);
    for r in reports {
        if !r.scannable() && r.errors.is_empty() {
            skipped += 1;
            continue;
        }
        let status = match (r.findings.is_empty(), r.errors.is_empty()) {
            (true, true) => "no findings".to_string(),
            (false, true) => format!("{} finding(s)", r.findings.len()),
            (true, false) => "NOT SCANNED COMPLETELY".to_string(),
            (false, false) => format!("{} finding(s), NOT SCANNED COMPLETELY", r.findings.len()),
        };
        writeln!(w, "{} [{}]: {status}", r.path, r.format)?;
        for f in &r.findings {
            let tag = paint(f.severity, &format!("{:<8}", f.severity.as_str().to_uppercase()));
            writeln!(w, "  {tag} {} ({}): {}", f.location, f.kind, f.message)?;
        }
        for e in &r.errors {
            writeln!(w, "  ERROR    {e}")?;
        }
        findings += r.findings.len();
        errors += r.errors.len();
    }
    let scanned = reports.iter().filter(|r| r.scannable()).count();
    writeln!(w, "\nscanned {scanned} model(s), skipped {skipped} other file(s); {findings} finding(s), {errors} error(s); failing at >= {}", fail_on.as_str())?;
    if scanned == 0 {
        writeln!(w, "nothing scannable found")?;
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct JsonDoc<'a> {
    schema_version: u32,
    tool: &'static str,
    tool_version: &'static str,
    exit_code: i32,
    summary: Summary,
    reports: &'a [ScanReport],
}

#[derive(serde::Serialize)]
struct Summary {
    files: usize,
    scanned: usize,
    findings: usize,
    errors: usize,
    highest: Option<Severity>,
}

pub fn json(w: &mut impl Write, reports: &[ScanReport], code: ExitCode) -> anyhow::Result<()> {
    let doc = JsonDoc {
        schema_version: JSON_SCHEMA_VERSION,
        tool: "sandload",
        tool_version: env!("CARGO_PKG_VERSION"),
        exit_code: code as i32,
        summary: Summary {
            files: reports.len(),
            scanned: reports.iter().filter(|r| r.scannable()).count(),
            findings: reports.iter().map(|r| r.findings.len()).sum(),
            errors: reports.iter().map(|r| r.errors.len()).sum(),
            highest: reports.iter().filter_map(ScanReport::worst).max(),
        },
        reports,
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)?;
    Ok(())
}

/// A one-line progress counter on stderr, redrawn in place.
pub struct Progress {
    total: usize,
    on: bool,
}

impl Progress {
    pub fn new(total: usize) -> Self {
        Self { total, on: total >= PROGRESS_MIN_FILES && std::io::stderr().is_terminal() }
    }
    pub fn tick(&self, i: usize, path: &Path) {
        if self.on {
            let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            let name: String = name.chars().take(50).collect();
            eprint!("\r\x1b[2K[{}/{}] {name}", i + 1, self.total);
        }
    }
    pub fn done(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}
