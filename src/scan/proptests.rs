//! Property tests: every decoder of untrusted bytes returns (Ok or Err) on
//! arbitrary input and never panics. The fuzz targets in fuzz/ go further.

use proptest::prelude::*;

use super::{config, hdf5, marshal, protobuf, pycode};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn marshal_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = marshal::decode_code(&data);
        let _ = pycode::judge_raw(&data);
    }

    #[test]
    fn marshal_mutated_real_code_never_panics(i in 0usize..200, b in any::<u8>()) {
        let mut data = b"\xe3\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x03\x00\x00\x00\xf3\x02\x00\x00\x00\x97\x00)\x00)\x00)\x00C\x00\xda\x01x\xda\x01y\xda\x01zr\x05\x00\x00\x00\x01\x00\x00\x00\xf3\x00\x00\x00\x00\xf3\x00\x00\x00\x00".to_vec();
        let n = data.len();
        data[i % n] = b;
        let _ = marshal::decode_code(&data);
    }

    #[test]
    fn hdf5_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut with_sig = b"\x89HDF\r\n\x1a\n".to_vec();
        with_sig.extend_from_slice(&data);
        let _ = hdf5::scan(with_sig.as_slice(), &["model_config"], 1 << 16);
    }

    #[test]
    fn hdf5_mutated_real_file_never_panics(i in 0usize..8208, b in any::<u8>()) {
        let mut data = include_bytes!("testdata/v0_vlen.h5").to_vec();
        let n = data.len();
        data[i % n] = b;
        let _ = hdf5::scan(data.as_slice(), &["model_config"], 1 << 16);
    }

    #[test]
    fn protobuf_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        for f in protobuf::fields(&data).take(1000) { let _ = f; }
        let _ = protobuf::bytes_fields(&data, 1);
    }

    #[test]
    fn config_and_base64_never_panic(s in ".{0,256}") {
        let mut out = Vec::new();
        let _ = config::scan_json_text(&s, "model", &mut out);
        let _ = pycode::judge_b64(&s, 1 << 16);
    }
}
