//! Build step: the default seccomp rule sets (`policies/seccomp-*.toml`, the source of truth)
//! are re-encoded as JSON into OUT_DIR, so every run parses ~14 KB of JSON (~30 µs) instead of
//! TOML (~250 µs) per file. Only the syntax changes: at run time the same serde types (unknown
//! fields rejected) and the same validation read the JSON, and a unit test checks that both
//! encodings give identical rules and filters. `--policy` files are still read as TOML.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in ["seccomp-phase1", "seccomp-phase2"] {
        let src = format!("policies/{name}.toml");
        println!("cargo:rerun-if-changed={src}");
        let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{src}: {e}"));
        let json = serde_json::to_string(&value).unwrap_or_else(|e| panic!("{src} as JSON: {e}"));
        let dst = out.join(format!("{name}.json"));
        std::fs::write(&dst, json).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
    }
}
