//! `.keras` zip handling on arbitrary bytes (bombs, traversal, bad headers).
#![no_main]
use std::sync::OnceLock;

fn scratch() -> &'static std::path::Path {
    static P: OnceLock<std::path::PathBuf> = OnceLock::new();
    P.get_or_init(|| std::env::temp_dir().join(format!("sandload-fuzz-{}.keras", std::process::id())))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| sandload_fuzz::scan::fuzzing::keras_zip(data, scratch()));
