//! What the openraft examples and tests share whatever openraft's version: the client
//! requests, the map they apply to, and the file a state machine's snapshot lives in.
//! Included with `#[path]` by `examples/openraft_cluster.rs` (0.9),
//! `examples/openraft10_cluster.rs` and `tests/openraft10_suite.rs` (0.10).
// Each includer uses a different part.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The error type of the examples.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client request: set `key` to `value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub key: String,
    pub value: String,
}

impl Request {
    /// The `i`-th request a client writes.
    pub fn numbered(i: u64) -> Self {
        Request { key: format!("key-{i}"), value: format!("value-{i}") }
    }
}

// openraft 0.10 asks application data to be `Display` (for its logs).
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// The value the key held before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response(pub Option<String>);

/// What a state machine holds and its snapshot carries: the applied log id `L`, the last
/// membership `M` (both of the openraft version) and the map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KvData<L, M> {
    pub applied: Option<L>,
    pub membership: M,
    pub kv: BTreeMap<String, String>,
}

impl<L, M: Default> Default for KvData<L, M> {
    fn default() -> Self {
        KvData { applied: None, membership: M::default(), kv: BTreeMap::new() }
    }
}

impl<L, M> KvData<L, M> {
    /// Applies `req`, answering the value its key held before.
    pub fn set(&mut self, req: Request) -> Response {
        Response(self.kv.insert(req.key, req.value))
    }
}

/// The file a node's last snapshot (its metadata `S` and data) lives in; `None` for a
/// state machine that keeps its snapshot in memory only.
#[derive(Clone, Debug)]
pub struct SnapshotFile(pub Option<PathBuf>);

impl SnapshotFile {
    /// The snapshot saved last, if any.
    pub fn load<S: DeserializeOwned>(&self) -> Result<Option<(S, Vec<u8>)>, BoxError> {
        match &self.0 {
            Some(path) if path.exists() => Ok(Some(rmp_serde::from_slice(&std::fs::read(path)?)?)),
            _ => Ok(None),
        }
    }

    /// Saves a snapshot durably: temporary file, fsync, rename.
    pub fn persist<S: Serialize>(&self, meta: &S, data: &[u8]) -> Result<(), BoxError> {
        let Some(path) = &self.0 else {
            return Ok(());
        };
        let bytes = rmp_serde::to_vec_named(&(meta, data))?;
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}
