//! Compiles the official A2A 1.0 `a2a.proto` (vendored in `proto/`, with the `google/api`
//! annotations it imports) into a descriptor set for the gRPC binding
//! (`protocol/a2a/grpc.rs`), with protox: no protoc needed.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["a2a.proto"], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("a2a_descriptor.bin");
    std::fs::write(out, descriptors.encode_to_vec())?;
    Ok(())
}
