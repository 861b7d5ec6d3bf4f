//! Config parsing (`Config::from_toml_str`, sizes, durations) fed arbitrary text: no
//! panic, and a config that parses renders to TOML that parses back to the same config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocklog::{ByteSize, Config};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = text.parse::<ByteSize>();
    let _ = rocklog::units::parse_duration(text);
    if let Ok(config) = Config::from_toml_str(text) {
        let rendered = config.to_toml_string();
        match Config::from_toml_str(&rendered) {
            Ok(again) => assert_eq!(again, config, "{rendered}"),
            Err(e) => panic!("{config:?} renders as {rendered:?}, which does not parse: {e}"),
        }
    }
});
