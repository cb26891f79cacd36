//! Stamps the binary with the source digest scripts/setup-edge passes in, so the setup script
//! can tell an installed host built from other sources and rebuild it.
fn main() {
    println!("cargo:rerun-if-env-changed=AGENTPLANE_SPIN_HOST_SOURCE");
    let source = std::env::var("AGENTPLANE_SPIN_HOST_SOURCE").unwrap_or_else(|_| "unstamped".to_owned());
    println!("cargo:rustc-env=AGENTPLANE_SPIN_HOST_SOURCE={source}");
}
