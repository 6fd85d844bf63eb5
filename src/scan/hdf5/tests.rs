//! HDF5 reader tests on tiny files written by h5py (testdata/, made by the
//! snippet in docs/SCAN.md): superblock v0 + object header v1 with a
//! variable-length string in the global heap, superblock v3 + OHDR v2 with
//! link messages, and a fixed-length string attribute.

use super::*;

const V0_VLEN: &[u8] = include_bytes!("../testdata/v0_vlen.h5");
const V3_LINKS: &[u8] = include_bytes!("../testdata/v3_links.h5");
const FIXED: &[u8] = include_bytes!("../testdata/fixed_attr.h5");
const WANT: &[&str] = &["model_config", "training_config"];

fn attr<'a>(s: &'a Hdf5Scan, name: &str) -> Option<&'a str> {
    s.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn reads_vlen_model_config_from_v0_superblock() {
    let s = scan(V0_VLEN, WANT, 1 << 20).unwrap();
    assert!(attr(&s, "model_config").unwrap().starts_with("{\"class_name\": \"Sequential\""));
    assert!(s.structural.is_empty() && s.unread.is_empty(), "{s:?}");
}

#[test]
fn reads_v3_superblock_links_and_fixed_string() {
    let s = scan(V3_LINKS, WANT, 1 << 20).unwrap();
    assert!(attr(&s, "model_config").is_some());
    assert_eq!(attr(&s, "training_config"), Some("{\"loss\": \"mse\"}"));
    assert!(s.structural.contains(&Structural::SoftLink { path: "/soft".into(), target: "/w".into() }));
    assert!(s.structural.contains(&Structural::ExternalLink {
        path: "/ext".into(),
        file: "/etc/passwd".into(),
        target: "/x".into()
    }));
    assert!(s.structural.iter().any(|x| matches!(x, Structural::OversizedDataset { path, .. } if path == "/huge")));
}

#[test]
fn reads_fixed_length_string_attribute() {
    let s = scan(FIXED, WANT, 1 << 20).unwrap();
    assert!(attr(&s, "model_config").unwrap().contains("Lambda"));
}

#[test]
fn attribute_above_limit_is_refused() {
    assert!(matches!(scan(V0_VLEN, WANT, 16), Err(Hdf5Error::TooLarge { .. })));
}

#[test]
fn every_truncation_is_an_error_or_partial_never_a_panic() {
    for data in [V0_VLEN, V3_LINKS, FIXED] {
        for cut in (0..data.len()).step_by(7) {
            match scan(&data[..cut], WANT, 1 << 20) {
                Err(_) => {}
                // A cut that keeps the root may still lose children: those
                // must be listed as unread, or the attribute must be intact.
                Ok(s) => assert!(
                    !s.unread.is_empty() || attr(&s, "model_config").is_some() || cut > data.len() / 2,
                    "cut {cut}"
                ),
            }
        }
    }
}

#[test]
fn not_hdf5_is_no_signature() {
    assert!(matches!(scan(&b"PK\x03\x04 not hdf5"[..], WANT, 1 << 20), Err(Hdf5Error::NoSignature)));
}
