//! Marshal decoder and Lambda judgement on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sandload_fuzz::scan::fuzzing::marshal(data));
