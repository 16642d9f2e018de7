//! AMF0: decoding arbitrary bytes never panics, and what decodes re-encodes to bytes that
//! decode to the same encoding (compared as bytes: NaN numbers are not `==`).
#![no_main]

use greenroom_ingest::rtmp::amf0::{self, Amf0Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(values) = amf0::decode_all(data, Amf0Limits::default()) else {
        return;
    };
    let encoded = amf0::encode_all(&values);
    let again = amf0::decode_all(&encoded, Amf0Limits::default());
    let Ok(again) = again else {
        panic!("re-encoded AMF0 does not decode: {again:?}");
    };
    assert_eq!(amf0::encode_all(&again), encoded);
});
