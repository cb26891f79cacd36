//! Runs the shared test vectors natively. The edge adapters run the same files inside workerd and
//! wasmtime.

use agentplane_core::testkit::vectors::{BUILTIN, run_builtin};

#[test]
fn shared_vectors_pass() {
    let (cases, failures) = run_builtin();
    assert!(cases >= 60, "only {cases} vector cases ran");
    assert!(failures.is_empty(), "{} vector failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_vector_file_is_built_in() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json") {
            assert!(BUILTIN.iter().any(|(n, _)| *n == name), "{name} is not listed in testkit::vectors::BUILTIN");
        }
    }
}
