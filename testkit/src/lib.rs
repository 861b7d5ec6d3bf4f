//! Test support for rocklog: programs and helpers that only tests use, kept out of the
//! library and of the shipped `rocklog` binary (`publish = false`).
//!
//! - `crash-child` (a binary of this package): the workload `tests/crash_loop.rs` kills at
//!   random moments.
//! - [`payload`]: the payload generator the child writes with and the test re-derives
//!   expectations from, defined once so the two cannot drift apart.
//! - [`crashfs`]: a strict in-memory power-loss filesystem on FUSE: what processes see
//!   and what survives a power loss kept apart, and `crash()` to keep only the latter.
//! - [`rocksdb_option`]: what RocksDB itself recorded about the options it runs with.
//! - [`noise`]: incompressible payloads.

pub mod crashfs;

use std::path::Path;

/// The value RocksDB recorded for option `name` in section `[section]` (`DBOptions`, or
/// `CFOptions "log"` for a column family) of the newest options file (`OPTIONS-N`, written
/// at every open) in `dir`. `None` when there is no such file, section or option.
#[must_use]
pub fn rocksdb_option(dir: &Path, section: &str, name: &str) -> Option<String> {
    let newest = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("OPTIONS-"))
        .max_by_key(|n| n["OPTIONS-".len()..].parse::<u64>().unwrap_or(0))?;
    let text = std::fs::read_to_string(dir.join(newest)).ok()?;
    let header = format!("[{section}]");
    let prefix = format!("{name}=");
    text.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.trim().strip_prefix(&prefix).map(str::to_owned))
}

/// `len` pseudo-random bytes from `seed` (an xorshift stream): payloads that do not
/// compress, so that the sizes of flushed files are the data's.
#[must_use]
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// The payload of entry `index` of an append printed with `seed`: length and bytes follow
/// from the two numbers alone. Nine in ten are under 512 bytes, most others 1-8 KiB, one in
/// a hundred 16-64 KiB.
#[must_use]
pub fn payload(seed: u64, index: u64) -> Vec<u8> {
    let mut s = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let r = splitmix(&mut s);
    let len = match r % 100 {
        0 => 16384 + (r >> 8) % 49152,
        1..=9 => 1024 + (r >> 8) % 7168,
        _ => (r >> 8) % 512,
    };
    // At most 64 KiB: fits any usize.
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&splitmix(&mut s).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// One step of splitmix64: advances `state` and returns the next pseudo-random number.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::payload;

    #[test]
    fn payloads_are_a_function_of_seed_and_index() {
        assert_eq!(payload(7, 3), payload(7, 3));
        assert_ne!(payload(7, 3), payload(7, 4));
        assert_ne!(payload(7, 3), payload(8, 3));
        let lens: Vec<usize> = (0..1000).map(|i| payload(1, i).len()).collect();
        assert!(lens.iter().all(|&l| l < 65536));
        assert!(lens.iter().filter(|&&l| l < 512).count() > 800, "mostly small entries");
    }
}
