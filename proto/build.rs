//! Compiles the schemas with protox (a pure-Rust protobuf compiler), so no system `protoc`
//! is needed on a fresh machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schemas = [
        "schemas/posmesh/journal/v1/journal.proto",
        "schemas/posmesh/storage/v1/storage.proto",
        "schemas/posmesh/sync/v1/sync.proto",
        "schemas/posmesh/mesh/v1/mesh.proto",
        "schemas/posmesh/cloud/v1/cloud.proto",
    ];
    for schema in &schemas {
        println!("cargo:rerun-if-changed={schema}");
    }
    let descriptors = protox::compile(schemas, ["schemas"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
