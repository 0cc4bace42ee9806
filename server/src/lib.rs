//! The BlockDB node.
//!
//! - [`storage`]: the LSM storage engine that holds every node's state.
#![deny(missing_docs)]

pub mod storage;
