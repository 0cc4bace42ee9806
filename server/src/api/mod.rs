//! The client-facing APIs: REST (with OpenAPI and tlog-tiles) and gRPC, both adapters over
//! [`crate::node::Node`], served together on one client address.

pub mod grpc;
pub mod rest;
