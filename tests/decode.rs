//! Every decoder of untrusted bytes, fed arbitrary input: the records rocklog reads back
//! from disk (a damaged record must be an error, never a panic of the node reading it) and
//! the configuration a user writes. Whatever decodes must come back unchanged from its
//! encoding. `fuzz/` runs the same entry points under libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use rocklog::fuzzing;
use rocklog::{ByteSize, Config, Entry, Error, HardState, LogId};

/// Bytes that are mostly protobuf-shaped: valid records with a few bytes changed, cut
/// short or extended, beside plain random bytes.
fn record_bytes() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop_oneof![
        (prop_oneof![0u64..4, any::<u64>()], any::<u64>(), prop::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(i, t, p)| fuzzing::encode_entry(&Entry::new(i, t, p))),
        (any::<u64>(), any::<Option<u64>>(), any::<u64>())
            .prop_map(|(term, vote, commit)| fuzzing::encode_hard_state(&HardState { term, vote, commit })),
        (any::<u64>(), any::<u64>()).prop_map(|(t, i)| fuzzing::encode_log_id(&LogId::new(t, i))),
    ];
    let mutated =
        (valid, prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4), 0usize..4)
            .prop_map(|(mut bytes, changes, cut)| {
                for (at, b) in changes {
                    if !bytes.is_empty() {
                        let i = at.index(bytes.len());
                        bytes[i] = b;
                    }
                }
                bytes.truncate(bytes.len().saturating_sub(cut));
                bytes
            });
    prop_oneof![mutated, prop::collection::vec(any::<u8>(), 0..48)]
}

/// TOML-ish text: lines of known keys with values of every shape, plus random text.
fn config_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "path",
        "durability",
        "max_batch_entries",
        "max_batch_bytes",
        "linger",
        "adaptive_batching",
        "pipelined_sync",
        "inline_commits",
        "channel_capacity",
        "max_entry_bytes",
        "write_buffer_size",
        "block_cache_size",
        "compression",
        "wal_recycle_files",
        "max_write_buffers",
        "blob_min_size",
        "blob_compression",
        "blob_gc_garbage_percent",
        "sst_bytes_per_sync",
        "sst_direct_io",
        "sst_io_size",
        "wal_delete_chunk",
        "l0_compaction_trigger",
        "level_base_size",
        "nonsense",
    ]);
    let value = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| format!("\"{v}\"")),
        (
            prop_oneof![0u32..100, any::<u32>()],
            prop::sample::select(vec![
                "B", "KiB", "MiB", "GiB", "TiB", "KB", "TB", "ns", "us", "µs", "ms", "s", "m", "x", ""
            ])
        )
            .prop_map(|(n, u)| format!("\"{n}{u}\"")),
        (any::<u64>(), prop::sample::select(vec!["TiB", "GiB", "m", "s"]))
            .prop_map(|(n, u)| format!("\"{n}{u}\"")),
        prop::sample::select(vec![
            "\"sync\"",
            "\"buffered\"",
            "\"lz4\"",
            "\"zstd\"",
            "\"none\"",
            "true",
            "1.5",
            "[]",
            "{}",
            "\"\""
        ])
        .prop_map(String::from),
        "\"[^\"\\\\]{0,12}\"",
    ];
    let lines = prop::collection::vec((key, value).prop_map(|(k, v)| format!("{k} = {v}")), 0..6)
        .prop_map(|lines| lines.join("\n"));
    prop_oneof![4 => lines, 1 => ".{0,64}"]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// No record decoder panics on any bytes, and what decodes round-trips.
    #[test]
    fn record_decoders_never_panic(bytes in record_bytes(), group in 0u64..4, index in 0u64..4) {
        prop_assert_eq!(fuzzing::decode_everything(&bytes), Ok(()));
        // The same bytes under a key of the engine's choosing: an entry whose index is not
        // its key's is corruption, and its term decodes exactly when the entry does.
        let entry = fuzzing::entry(group, index, &bytes);
        if let Ok(e) = &entry {
            prop_assert_eq!(e.index, index);
            let again = fuzzing::entry(group, index, &fuzzing::encode_entry(e));
            prop_assert_eq!(again.ok(), Some(e.clone()));
        }
        let term = fuzzing::term(group, index, &bytes);
        prop_assert_eq!(term.as_ref().ok(), entry.as_ref().ok().map(|e| &e.term));
        for r in [entry.err(), term.err(), fuzzing::hard_state(group, &bytes).err(), fuzzing::log_id(group, &bytes).err()]
            .into_iter()
            .flatten()
        {
            prop_assert!(matches!(r, Error::Corruption { .. }), "{:?}", r);
        }
    }

    /// Keys parse exactly when they have their fixed length.
    #[test]
    fn key_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..20)) {
        prop_assert_eq!(fuzzing::log_key(&bytes).is_some(), bytes.len() == 16);
        prop_assert_eq!(fuzzing::meta_key(&bytes).is_some(), bytes.len() == 9);
    }

    /// Config parsing never panics; a config that parses renders to TOML that parses back
    /// to the same config, and one that does not is `InvalidConfig`.
    #[test]
    fn config_parsing_never_panics(text in config_text()) {
        let _ = text.parse::<ByteSize>();
        let _ = rocklog::units::parse_duration(&text);
        match Config::from_toml_str(&text) {
            Ok(config) => {
                let again = Config::from_toml_str(&config.to_toml_string());
                prop_assert_eq!(again.ok(), Some(config));
            }
            Err(e) => prop_assert!(matches!(e, Error::InvalidConfig(_)), "{:?}", e),
        }
    }
}
