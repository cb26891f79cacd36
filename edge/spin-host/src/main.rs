//! `agentplane-spin-host`: runs a Spin HTTP component (spin-sdk 7, `wasi:http@0.3.0`) from a
//! Spin manifest, the way `spin up` would, on the wasmtime crate.
//!
//! The Spin CLI cannot be built on our machines and `wasmtime serve` lacks Spin's interfaces, so
//! this host adds them to what `wasmtime serve` does: `spin:key-value` and `wasi:keyvalue` (with
//! compare-and-swap) over in-memory stores that outlive requests, `spin:variables` from the
//! manifest, and outbound HTTP limited to `allowed_outbound_hosts`. The component is the same
//! file `spin deploy` ships.
//!
//! Not modelled: Spin's routing beyond one component, its SQLite and Redis store back ends (an
//! in-memory map stands in; `--kv-latency-ms` gives it a network's delay), and Spin's own request
//! headers. Its own workspace keeps wasmtime's large tree out of the main one; `scripts/setup-edge`
//! installs it, rebuilding when its sources' digest changes.

mod kv;
mod manifest;
mod outbound;
mod serve;
mod variables;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Bindings for the Spin interfaces; WASI and wasi:http come from wasmtime-wasi(-http).
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "agentplane:spin-host/spin-imports",
        // Host-side async, so a simulated store latency (`--kv-latency-ms`) lets other requests
        // run meanwhile; the guest still sees these functions as blocking.
        imports: { "wasi:keyvalue": async | trappable, default: trappable },
        with: {
            "spin:key-value/key-value.store": crate::kv::OpenStore,
            "wasi:keyvalue/store.bucket": crate::kv::OpenStore,
            "wasi:keyvalue/atomics.cas": crate::kv::Cas,
        },
    });
}

/// Serve a Spin application's HTTP component.
#[derive(Debug, Parser)]
#[command(version = concat!(env!("CARGO_PKG_VERSION"), " (source ", env!("AGENTPLANE_SPIN_HOST_SOURCE"), ")"))]
struct Args {
    /// The Spin manifest.
    #[arg(long, short = 'f', default_value = "spin.toml")]
    from: PathBuf,
    /// Serve this Wasm file instead of the manifest's `source` (the tests build a variant with
    /// test endpoints).
    #[arg(long)]
    source: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// An application variable, `name=value`, as `spin up --variable`; repeatable.
    #[arg(long = "variable", value_parser = parse_variable)]
    variables: Vec<(String, String)>,
    /// Requests one component instance serves before it is dropped. 1 is Spin's documented
    /// model (a fresh instance per request); wasi:http@0.3 hosts may reuse instances, which
    /// `wasmtime serve` does (128).
    #[arg(long, default_value_t = 1)]
    instance_reuse: usize,
    /// Requests one instance serves at the same time (only with `--instance-reuse` above 1).
    #[arg(long, default_value_t = 16)]
    instance_concurrency: usize,
    /// Milliseconds added to every key-value operation. Spin's stores may be a network hop
    /// away (Redis, cloud stores); this widens the window in which concurrent requests race, so a
    /// test can show that the component's limiter updates are atomic.
    #[arg(long, default_value_t = 0)]
    kv_latency_ms: u64,
    /// Longest time a request may take, in seconds; 0 for no limit (streams stay open).
    #[arg(long, default_value_t = 0)]
    request_timeout_secs: u64,
}

fn parse_variable(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("{s:?} is not name=value"))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "agentplane_spin_host=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut app = manifest::load(&args.from, &args.variables, |k| std::env::var(k).ok())?;
    if let Some(source) = args.source {
        app.source = source;
    }
    let settings = serve::Settings {
        listen: args.listen,
        instance_reuse: args.instance_reuse.max(1),
        instance_concurrency: if args.instance_reuse > 1 { args.instance_concurrency.max(1) } else { 1 },
        kv_latency: Duration::from_millis(args.kv_latency_ms),
        request_timeout: (args.request_timeout_secs > 0).then(|| Duration::from_secs(args.request_timeout_secs)),
    };
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve::run(app, settings))
}
