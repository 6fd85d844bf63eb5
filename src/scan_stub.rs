//! Temporary stand-in while src/scan is being written.
use std::path::PathBuf;
#[derive(clap::Args, Debug, Clone)]
pub struct ScanArgs {
    pub paths: Vec<PathBuf>,
}
pub fn run(_a: &ScanArgs) -> anyhow::Result<i32> {
    anyhow::bail!("scan is not built yet")
}
#[derive(serde::Serialize, Debug, Clone)]
pub struct ScanReport {
    pub path: String,
    pub format: String,
    pub findings: Vec<Finding>,
    pub errors: Vec<String>,
}
#[derive(serde::Serialize, Debug, Clone)]
pub struct Finding {
    pub severity: String,
    pub location: String,
    pub kind: String,
    pub message: String,
}
pub fn scan_model(p: &std::path::Path) -> ScanReport {
    ScanReport { path: p.display().to_string(), format: String::new(), findings: vec![], errors: vec![] }
}
