//! `agentplane serve`: the origin server.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use tokio_util::sync::CancellationToken;

use crate::app::config::Config;
use crate::app::runtime::DatabaseHandle;
use crate::app::{keys, local_key, server, telemetry};
use crate::data::demo;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (also AGENTPLANE_LISTEN).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Seed a demo corpus for a demo tenant and print a token and an example call.
    #[arg(long)]
    demo: bool,
    /// Expose the MCP conformance suite's fixtures (loopback only; unauthenticated requests act
    /// as a conformance tenant). Never in production.
    #[cfg(feature = "dev-tools")]
    #[arg(long)]
    conformance_fixtures: bool,
    /// Answer the A2A compatibility kit's `tck-` messages as its scenarios ask (loopback only).
    /// Never in production.
    #[cfg(feature = "dev-tools")]
    #[arg(long)]
    a2a_tck_fixtures: bool,
    /// With the kit's fixtures, answer every other message as the 0.3 kit's reference agent does
    /// (submitted, working, then an echo): the 0.3 kit has no prefixes and times its checks on it.
    #[cfg(feature = "dev-tools")]
    #[arg(long, requires = "a2a_tck_fixtures")]
    a2a_tck_reference_agent: bool,
}

/// How long open streams may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

pub async fn run(mut config: Config, args: Args) -> anyhow::Result<()> {
    let _telemetry = telemetry::init();
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    #[cfg(feature = "dev-tools")]
    {
        config.conformance_fixtures |= args.conformance_fixtures;
        config.a2a.tck_fixtures |= args.a2a_tck_fixtures;
        config.a2a.tck_reference_agent |= args.a2a_tck_reference_agent;
    }
    config.seed_demo |= args.demo;
    if config.seed_demo && config.budgets.tiers.is_empty() {
        // So the demo's console has budgets to draw; a configured `[budgets]` is left alone.
        config.budgets.tiers = demo::budgets();
    }
    // Bind before starting the database, so a busy port fails fast and leaves nothing running.
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            anyhow::anyhow!(
                "{} is already in use: stop what runs there, or pass --listen / set AGENTPLANE_LISTEN",
                config.listen
            )
        }
        _ => anyhow::anyhow!("cannot listen on {}: {e}", config.listen),
    })?;
    let handle = DatabaseHandle::open(&config).await?;
    let result = serve(&config, &handle, listener).await;
    handle.close().await;
    result
}

async fn serve(config: &Config, handle: &DatabaseHandle, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let db = handle.db.clone();
    let keys = keys::load(config).await?;
    let cancel = CancellationToken::new();
    let embedder = server::embedder(config, &db).await?;
    let app = server::router(config, db.clone(), keys, embedder.clone(), cancel.child_token())?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, lexical_backend = db.lexical().name(), embedded_pg_port = handle.embedded_port(), "listening");
    if config.seed_demo {
        let n = demo::seed(&db, embedder.as_ref()).await.context("seeding the demo corpus")?;
        print_demo_banner(config, addr, n)?;
    }
    tokio::spawn(crate::data::db::maintenance::run(db.pool().clone(), db.lexical(), cancel.child_token()));
    let shutdown = cancel.clone();
    // No Nagle: a response written in pieces (an SSE priming event, then the message) otherwise
    // waits for the client's delayed ACK, 40 ms a request on Linux.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down; draining open requests");
        shutdown.cancel();
    });
    let drained = async {
        cancel.cancelled().await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        r = server => r.context("serving")?,
        () = drained => tracing::warn!("drain deadline passed; closing remaining connections"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn print_demo_banner(config: &Config, addr: SocketAddr, docs: usize) -> anyhow::Result<()> {
    let url = format!("http://{addr}/mcp");
    let token = if config.trusts_dev_key() {
        let key = local_key::LocalKey::load_or_create(&config.data_dir)?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        key.sign(&serde_json::json!({
            "iss": config.issuer(), "aud": config.audience(), "sub": "demo", "tenant_id": demo::DEMO_TENANT,
            "scope": "search:read docs:write tasks:run", "tier": "pro", "iat": now, "exp": now + 24 * 3600,
        }))?
    } else {
        "<mint one with your issuer>".into()
    };
    println!(
        "\nagentplane is serving MCP at {url}\n\
         demo tenant {tenant}: {docs} documents\n\n\
         token (24 h, scopes search:read docs:write tasks:run):\n{token}\n\n\
         try it:\n\
         curl -s {url} -H 'Authorization: Bearer {token}' \\\n  \
         -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n  \
         -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: hybrid_search' \\\n  \
         -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"hybrid_search\",\"arguments\":{{\"query\":\"how are tenants kept apart\",\"limit\":3}},\"_meta\":{{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{{}}}}}}}}'\n\n\
         console: http://{addr}/console (paste the token)\n\
         more tokens: cargo run -q -p agentplane-origin -- token mint --tenant {tenant} --scopes 'search:read'\n\
         stop with Ctrl-C\n",
        tenant = demo::DEMO_TENANT,
    );
    Ok(())
}
