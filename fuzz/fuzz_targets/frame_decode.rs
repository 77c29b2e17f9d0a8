//! The WebSocket frame decoder (`slashd::protocol::frames::decode`): whatever a client
//! sends, decoding never panics; a bad frame says what was wrong; a decoded frame has a
//! well-formed `id` and re-encodes to text that decodes to the same frame and id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use slashd::protocol::frames::{decode, ClientFrame, MAX_ID_CHARS};

fuzz_target!(|data: &[u8]| {
    // The connection only ever decodes text frames, which are UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (id, frame) = match decode(text) {
        Ok(decoded) => decoded,
        Err(bad) => {
            assert!(
                !bad.message.is_empty(),
                "a bad frame must say what was wrong"
            );
            assert_id_ok(&bad.id);
            return;
        }
    };
    assert_id_ok(&id);

    // Re-encode as a client would and decode again.
    let mut value = serde_json::to_value(&frame).expect("a decoded frame serializes");
    if let Some(id) = &id {
        value
            .as_object_mut()
            .expect("frames are objects")
            .insert("id".into(), id.clone());
    }
    let again = serde_json::to_string(&value).unwrap();
    let (id2, frame2): (Option<Value>, ClientFrame) = match decode(&again) {
        Ok(decoded) => decoded,
        Err(bad) => panic!("re-encoded frame {again} does not decode: {}", bad.message),
    };
    assert_eq!(frame, frame2, "frame changed through {again}");
    // Exact, fractional and huge numeric ids too: serde_json's `float_roundtrip` parser is
    // correctly rounded. (The default one echoed a 70-digit id one ULP off; that input is
    // kept as corpus/frame_decode/float-id-70-digits.json.)
    assert_eq!(id, id2, "id changed through {again}");
});

fn assert_id_ok(id: &Option<Value>) {
    match id {
        None | Some(Value::Number(_)) => {}
        Some(Value::String(s)) => assert!(s.chars().count() <= MAX_ID_CHARS),
        Some(other) => panic!("id must be a string or a number, got {other}"),
    }
}
