//! A user's `.npz` input on arbitrary bytes, through `load_all` (the archive reader is
//! private). Asserts no panic outside npyz, bounded heap (headers are capped at 1 MiB; entry
//! data is never read), and the contract of input.rs — "every file is checked completely before
//! the sandbox starts": each accepted entry can then be streamed exactly as
//! `session::write_tensor` does (header re-parsed, `byte_len` bytes copied), so nothing the
//! check accepted fails after the child is running.
//!
//! `SANDLOAD_FUZZ_KNOWN_BUGS` (docs/FUZZING.md): `npy-nesting` skips archives holding a header
//! nested deeper than 8; `npz-size-wrap` tolerates entries accepted because
//! `header_len + need` wrapped; `npz-data-unchecked` tolerates accepted entries whose data
//! then fails to stream (short, corrupt deflate, bad CRC). Unset, each is a crash.
#![no_main]
use std::io::Read;

use sandload_fuzz::support;
use sandload_fuzz::tensors::input::{load_all, parse_npy_header, Source};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    support::tolerate_caught_npyz_panics();
    if support::known_bug("npy-nesting") && deepest_entry_header(data) > 8 {
        return;
    }
    let path = support::scratch("input.npz");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let p = path.to_string_lossy().into_owned();
    // Unnamed loads every `*.npy` entry; `x=PATH` only the entry `x.npy`.
    for spec in [p.clone(), format!("x={p}")] {
        support::reset();
        let loaded = load_all(&[spec]);
        // At most one 1 MiB npy header at a time, plus the zip crate's central directory: it
        // reserves `number_of_files` entries of 208 bytes before reading any. The zip32 count
        // is a u16 (<= 13.6 MB whatever the file size); zip 2.6 checks a zip64 count against
        // the file (46 bytes per entry), so ~4.5x the file size.
        let zip_dir = (65_535 * 208).max(8 * data.len());
        support::check("load_all(.npz)", data.len(), zip_dir + (8 << 20), zip_dir + (2 << 20));
        let Ok(inputs) = loaded else { continue };
        assert!(inputs.len() <= 1024);
        for i in &inputs {
            let Source::Npz { index, .. } = i.source else { panic!("a .npz gave {:?}", i.source) };
            let dtype = i.dtype.expect(".npz inputs carry their dtype");
            let need = i.byte_len(dtype).expect("checked by read_npz");
            // read_npz accepts when declared == header_len + need, so need < declared unless
            // that sum wrapped.
            let declared = declared_size(&path, index);
            if need >= declared && !support::known_bug("npz-size-wrap") {
                panic!("entry {index} ({:?}, shape {:?}) needs {need} bytes, declares {declared}", i.name, i.shape);
            }
            if let Err(e) = stream_like_write_tensor(&path, index, need) {
                if !support::known_bug("npz-data-unchecked") {
                    panic!("entry {index} ({:?}, shape {:?}) was accepted but cannot be sent: {e}", i.name, i.shape);
                }
            }
        }
    }
});

fn declared_size(path: &std::path::Path, index: usize) -> u64 {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).expect("scratch")).expect("opened before");
    let size = zip.by_index(index).expect("read before").size();
    size
}

/// `session::write_tensor` for `Source::Npz`, copying into nothing.
fn stream_like_write_tensor(path: &std::path::Path, index: usize, need: u64) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| e.to_string())?;
    let mut entry = zip.by_index(index).map_err(|e| e.to_string())?;
    parse_npy_header(&mut entry)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut left = need;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = entry.read(&mut buf[..want]).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("input file shrank: {left} of {need} bytes missing"));
        }
        left -= n as u64;
    }
    Ok(())
}

/// Deepest bracket nesting in any entry's npy header text (for the `npy-nesting` skip).
fn deepest_entry_header(data: &[u8]) -> usize {
    let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(data)) else { return 0 };
    let mut max = 0;
    for i in 0..zip.len().min(1024) {
        let Ok(entry) = zip.by_index(i) else { continue };
        let mut head = Vec::new();
        if entry.take(12 + (1 << 20)).read_to_end(&mut head).is_err() && head.is_empty() {
            continue;
        }
        max = max.max(support::bracket_depth(&head));
    }
    max
}
