//! HDF5 reader on arbitrary bytes: no panic, bounded memory (-rss_limit_mb).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sandload_fuzz::scan::fuzzing::hdf5(data));
