//! The HTTP side: hyper accepts connections, wasmtime-wasi-http's `ProxyHandler` hands each
//! request to a component instance (new, or reused up to `instance_reuse` requests), and the
//! component's response body streams back frame by frame, so SSE passes through unbuffered.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use wasmtime::component::{Component, GuestTaskId, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreContextMut};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::kv::{self, KvView};
use crate::manifest::App;
use crate::outbound::{Allowed, Hooks};
use crate::variables::{self, VarsView};

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub listen: SocketAddr,
    pub instance_reuse: usize,
    pub instance_concurrency: usize,
    pub kv_latency: Duration,
    pub request_timeout: Option<Duration>,
}

/// The data of one store (one component instance).
struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Hooks,
    stores: Arc<kv::Stores>,
    kv_latency: Duration,
    variables: Arc<HashMap<String, String>>,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

fn kv_view(h: &mut Host) -> KvView<'_> {
    KvView { table: &mut h.table, stores: &h.stores, latency: h.kv_latency }
}

fn vars_view(h: &mut Host) -> VarsView<'_> {
    VarsView { values: &h.variables }
}

fn linker(engine: &Engine) -> anyhow::Result<Linker<Host>> {
    use crate::bindings::spin::key_value::key_value;
    use crate::bindings::spin::variables::variables as vars;
    use crate::bindings::wasi::keyvalue::{atomics, batch, store};

    let mut linker = Linker::new(engine);
    // WASI 0.2 for what Rust's std imports, 0.3 for what spin-sdk 7 imports.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    key_value::add_to_linker::<Host, kv::Kv>(&mut linker, kv_view)?;
    store::add_to_linker::<Host, kv::Kv>(&mut linker, kv_view)?;
    atomics::add_to_linker::<Host, kv::Kv>(&mut linker, kv_view)?;
    batch::add_to_linker::<Host, kv::Kv>(&mut linker, kv_view)?;
    vars::add_to_linker::<Host, variables::Vars>(&mut linker, vars_view)?;
    Ok(linker)
}

pub async fn run(app: App, settings: Settings) -> anyhow::Result<()> {
    let mut config = Config::new();
    config.wasm_component_model(true).wasm_component_model_async(true);
    let engine = Engine::new(&config)?;
    let started = Instant::now();
    let component = Component::from_file(&engine, &app.source)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("loading the component {}", app.source.display()))?;
    tracing::info!(source = %app.source.display(), compile_ms = started.elapsed().as_millis(), "component compiled");
    let pre =
        linker(&engine)?.instantiate_pre(&component).map_err(anyhow::Error::from).context("linking the component")?;
    let pre = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre)
        .map_err(anyhow::Error::from)
        .context("the component does not export wasi:http/handler@0.3.0")?;

    let state = State {
        engine,
        pre: ProxyPre::P3(pre),
        stores: kv::Stores::new(app.key_value_stores.iter().cloned()),
        variables: Arc::new(app.variables),
        allowed: Allowed::parse(&app.allowed_outbound_hosts)?,
        settings,
        next_instance: AtomicU64::new(0),
    };
    let handler = ProxyHandler::new(state);

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    // The line scripts wait for.
    eprintln!("Serving HTTP on http://{}/", listener.local_addr()?);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
        };
        // Small SSE frames must not wait for Nagle's algorithm.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay");
        }
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handle(&handler, req).await) }
            });
            if let Err(e) = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

type Response = hyper::Response<wasmtime_wasi_http::WasiBody>;

async fn handle(handler: &ProxyHandler<State>, req: hyper::Request<hyper::body::Incoming>) -> Response {
    let req = req.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
    match handler.handle((), req).await {
        Ok(r) => r,
        Err(e) => {
            // What Spin answers when a component fails: a bare 500, the cause in the log.
            tracing::error!(error = ?e, "the component failed to handle a request");
            let body = Full::new(bytes::Bytes::from_static(b"Internal Server Error"))
                .map_err(|never: Infallible| match never {})
                .boxed_unsync();
            let mut r = hyper::Response::new(body);
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

struct State {
    engine: Engine,
    pre: ProxyPre<Host>,
    stores: Arc<kv::Stores>,
    variables: Arc<HashMap<String, String>>,
    allowed: Allowed,
    settings: Settings,
    next_instance: AtomicU64,
}

impl HandlerState for State {
    type StoreData = Host;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Host, Expiration, Worker>> {
        let id = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let wasi = WasiCtx::builder().inherit_stdout().inherit_stderr().build();
        let host = Host {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks: Hooks { allowed: self.allowed.clone() },
            stores: self.stores.clone(),
            kv_latency: self.settings.kv_latency,
            variables: self.variables.clone(),
        };
        let mut store = Store::new(&self.engine, host);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        tracing::debug!(instance = id, "instantiated");
        let timeout = self.settings.request_timeout.unwrap_or(Duration::MAX);
        Ok(Instance {
            store,
            proxy,
            view: WasiHttpView::http,
            expiration: Expiration { idle: Duration::from_secs(5), request_timeout: timeout, sleep: None },
            state: Worker {
                reuse: self.settings.instance_reuse,
                concurrency: self.settings.instance_concurrency,
                request_timeout: timeout,
            },
        })
    }
}

/// When an instance is dropped: idle for a while, or (with a request timeout) stuck.
struct Expiration {
    idle: Duration,
    request_timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WorkerExpiration for Expiration {
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>, status: WorkerStatus, start: Instant) -> Poll<()> {
        let me = self.get_mut();
        let limit = match status {
            WorkerStatus::Idle => me.idle,
            _ => me.request_timeout,
        };
        let Some(deadline) = start.checked_add(limit) else { return Poll::Pending };
        let deadline = tokio::time::Instant::from_std(deadline);
        let sleep = me.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut().poll(cx)
    }
}

struct Worker {
    reuse: usize,
    concurrency: usize,
    request_timeout: Duration,
}

impl WorkerState for Worker {
    type StoreData = Host;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse {
            ShouldAccept::Never
        } else if concurrent >= self.concurrency {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, Host>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let timeout = self.request_timeout;
        Box::pin(async move {
            if timeout == Duration::MAX {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(timeout).await;
        })
    }

    fn drop(&self, store: Store<Host>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            tracing::error!(error = ?e, "component instance failed");
        }
        drop(store);
    }
}
