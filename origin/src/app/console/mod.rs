//! The console: a web UI for a tenant's people (search, documents, tasks, usage) and for
//! operators, at `/console`. Its page, script and style are compiled into the binary.
//!
//! It has no data path of its own. The page's script calls `/mcp` and `/a2a` like any client,
//! with the session's token in an HttpOnly cookie that the core accepts only beside the
//! console's header (`agentplane_core::auth::console`): every figure it shows passed the gate's
//! token, scope, rate-limit and RLS checks. What is here: the assets, the session cookie
//! (`session.rs`), and the operator's view (`operator.rs`), which the edges do not pass on.

mod assets;
mod operator;
mod session;

use axum::Router;
use axum::routing::{get, post};

use super::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(assets::page))
        .route("/console/", get(assets::page))
        .route("/console/assets/{file}", get(assets::file))
        .route(
            agentplane_core::catalogue::CONSOLE_SESSION_PATH,
            get(session::whoami).post(session::sign_in).delete(session::sign_out),
        )
        .route("/console/operator/session", post(operator::sign_in).delete(operator::sign_out))
        .route("/console/operator/details", get(operator::details))
}
