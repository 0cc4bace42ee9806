//! Compiles `blockdb/v1/ledger.proto` (the client API) and `blockdb/peer/v1/peer.proto` (the
//! nodes' peer protocol) into Rust with protox (a protobuf compiler in pure Rust, so
//! no `protoc` is needed) and tonic-prost-build (messages, client and server), and writes the
//! encoded file descriptor set to `OUT_DIR` for the server's gRPC reflection service.

use std::path::PathBuf;

/// The directory the import paths of the `.proto` files are relative to.
const PROTO_ROOT: &str = ".";
/// The `.proto` files to compile, relative to [`PROTO_ROOT`].
const PROTOS: &[&str] = &["blockdb/v1/ledger.proto", "blockdb/peer/v1/peer.proto"];
/// The file in `OUT_DIR` that `FILE_DESCRIPTOR_SET` includes; `src/lib.rs` names it too.
const DESCRIPTOR_FILE: &str = "blockdb_v1_descriptor.bin";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let mut compiler = protox::Compiler::new([PROTO_ROOT])?;
    // Source info carries the comments: prost turns them into rustdoc, and reflection clients
    // (grpcurl describe) show them.
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(PROTOS)?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join(DESCRIPTOR_FILE), compiler.encode_file_descriptor_set())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
