//! Handles: what a caller holds. [`LogStore`] is the engine (open, start, flush,
//! shutdown, counters); [`Group`] is one Raft group's log (writes sent to the writer, reads
//! straight from RocksDB with the epoch retry). Arrows point down: handles send commands
//! to the writer and read through storage, and nothing below knows a handle.

mod blocking;
mod checkpoint;
mod group;
mod store;

pub use blocking::BlockingGroup;
pub use checkpoint::{CheckpointReport, CopyMethod};
pub use group::Group;
pub use store::LogStore;
