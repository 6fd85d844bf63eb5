//! A user's `.npy` input on arbitrary bytes: `parse_npy_header` directly (short reads), then the
//! whole `load_all` path on the bytes as a file. Asserts no panic outside npyz (npyz panics are
//! caught by parse_npy_header's catch_unwind and only counted), bounded heap (the header is
//! capped at 1 MiB before it is allocated), and that what is accepted is consistent: the header
//! sandload writes for the parsed (dtype, shape) parses back the same, and an accepted file
//! holds exactly the data bytes its header promises.
//!
//! `SANDLOAD_FUZZ_KNOWN_BUGS=npy-nesting` skips headers nested deeper than 8 (npyz parses
//! them in exponential time and memory; docs/FUZZING.md); unset, they trip the heap bound.
#![no_main]
use sandload_fuzz::broker::TensorMeta;
use sandload_fuzz::support::{self, Chunked};
use sandload_fuzz::tensors::input::{load_all, parse_npy_header, Source};
use sandload_fuzz::tensors::output::npy_header;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    support::tolerate_caught_npyz_panics();
    // Known bug: npyz's header parser is exponential in bracket nesting (docs/FUZZING.md).
    if support::known_bug("npy-nesting") && support::bracket_depth(data) > 8 {
        return;
    }
    support::reset();
    let seed = data.first().copied().unwrap_or(0);
    let parsed = parse_npy_header(Chunked::new(data, seed, 64));
    // 1 MiB header buffer + its copy + npyz's parse of it.
    support::check("parse_npy_header", data.len(), 8 << 20, 2 << 20);
    if let Ok((dtype, shape)) = &parsed {
        assert!(shape.len() <= data.len(), "rank {} from {} bytes", shape.len(), data.len());
        // The output side writes such headers for child tensors of rank <= max_rank (32).
        if shape.len() <= 32 {
            let meta = TensorMeta { name: "x".into(), dtype: *dtype, shape: shape.clone() };
            let again = parse_npy_header(&npy_header(&meta)[..]).expect("sandload's own header parses");
            assert_eq!(&again, parsed.as_ref().unwrap());
        }
    }

    let path = support::scratch("input.npy");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    support::reset();
    let loaded = load_all(&[path.to_string_lossy().into_owned()]);
    support::check("load_all(.npy)", data.len(), 8 << 20, 2 << 20);
    match loaded {
        Ok(inputs) => {
            assert_eq!(inputs.len(), 1);
            let i = &inputs[0];
            let Source::Npy { offset, .. } = i.source else { panic!("a .npy gave {:?}", i.source) };
            let dtype = i.dtype.expect(".npy inputs carry their dtype");
            assert_eq!(parsed.as_ref().ok(), Some(&(dtype, i.shape.clone())), "file and stream parses disagree");
            assert_eq!(offset + i.byte_len(dtype).expect("checked"), data.len() as u64);
        }
        Err(e) => assert!(parsed.is_err() || e.message.contains("truncated or padded") || e.message.contains("overflows"), "{e}"),
    }
});
