//! Adapters: rocklog behind the storage traits of Raft libraries, each behind its own
//! feature. An adapter only uses the public engine API ([`LogStore`](crate::LogStore),
//! [`Group`](crate::Group)): arrows point from here down into the handles, never back.

#[cfg(feature = "d-engine")]
pub mod d_engine;
#[cfg(feature = "openraft")]
pub mod openraft;
#[cfg(feature = "openraft10")]
pub mod openraft10;
#[cfg(any(feature = "openraft", feature = "openraft10"))]
mod openraft_shared;
#[cfg(feature = "raft-rs")]
pub mod raft_rs;
