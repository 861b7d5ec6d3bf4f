//! Every decoder of bytes rocklog reads back from disk (entry, term, hard state, purge
//! boundary, format version, log and meta keys), fed arbitrary bytes: none may panic, and
//! whatever decodes must re-encode and decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = rocklog::fuzzing::decode_everything(data) {
        panic!("{broken}");
    }
});
