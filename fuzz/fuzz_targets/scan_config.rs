//! Keras config walker on arbitrary (mostly invalid) JSON.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sandload_fuzz::scan::fuzzing::config(data));
