//! `agentplane backup PATH` and `agentplane restore PATH`: the embedded database as one
//! `pg_dump` archive (custom format) and back.
//!
//! A backup reads one snapshot (`pg_dump` runs in a single repeatable-read transaction), so it
//! is consistent while the origin serves; it attaches to the server a running `serve` started,
//! or starts one for itself and stops it after. A restore goes into a data dir whose database
//! does not exist yet, so it can never overwrite data: the roles the migrations make are made
//! first, then the archive brings the schema, the rows and the migrations' own record. An
//! external database is backed up with its own tools (the README shows how).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail, ensure};
use clap::Args as ClapArgs;

use crate::app::config::Config;
use crate::data::db::embedded::{self, EmbeddedPostgres};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The archive file (`pg_dump` custom format).
    path: PathBuf,
}

fn embedded_only(config: &Config) -> anyhow::Result<()> {
    ensure!(
        config.database_url.is_none(),
        "an external database is backed up and restored with its own tools: \
         pg_dump --format=custom --file=FILE \"$DATABASE_URL\" and pg_restore --dbname=... FILE (see the README)"
    );
    Ok(())
}

/// Runs one of the install's client tools against the embedded server as its admin role; the
/// password goes in the environment, never on a command line others can read.
async fn run_tool(config: &Config, server: &EmbeddedPostgres, tool: &str, args: &[&str]) -> anyhow::Result<()> {
    let bin = config.pg_install.join("bin").join(tool);
    let output = tokio::process::Command::new(&bin)
        .args(args)
        .args(["--host", "127.0.0.1", "--port", &server.port().to_string(), "--username", embedded::ADMIN_ROLE])
        .args(["--dbname", embedded::DATABASE])
        .env("PGPASSWORD", server.admin_password())
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !output.status.success() {
        bail!("{tool} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

async fn drop_database(server: &EmbeddedPostgres) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&server.admin_url("postgres")).await?;
    // The name is our constant, not input; identifiers cannot be bound parameters.
    sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", embedded::DATABASE)).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

async fn database_exists(server: &EmbeddedPostgres) -> anyhow::Result<bool> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&server.admin_url("postgres")).await?;
    let exists = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(embedded::DATABASE)
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(exists)
}

pub async fn backup(config: Config, args: Args) -> anyhow::Result<()> {
    embedded_only(&config)?;
    let server = EmbeddedPostgres::start(&config.pg_install, &config.data_dir).await?;
    let result = async {
        ensure!(
            database_exists(&server).await?,
            "{} holds no database yet: nothing to back up",
            config.data_dir.display()
        );
        let path = args.path.to_str().context("the archive path is not UTF-8")?;
        run_tool(&config, &server, "pg_dump", &["--format=custom", "--file", path]).await
    }
    .await;
    server.stop().await;
    result?;
    let bytes = std::fs::metadata(&args.path).map(|m| m.len()).unwrap_or(0);
    println!("backed up {} to {} ({bytes} bytes)", config.data_dir.display(), args.path.display());
    Ok(())
}

pub async fn restore(config: Config, args: Args) -> anyhow::Result<()> {
    embedded_only(&config)?;
    ensure!(Path::new(&args.path).is_file(), "no archive at {}", args.path.display());
    let server = EmbeddedPostgres::start(&config.pg_install, &config.data_dir).await?;
    let result = async {
        ensure!(
            !database_exists(&server).await?,
            "{} already holds a database; restore into a new data dir (AGENTPLANE_DATA_DIR), then serve from it",
            config.data_dir.display()
        );
        // The migrations make the roles the archive's grants name (a dump holds no roles);
        // --clean then replaces what they made with the archive's objects, rows included.
        crate::data::db::provision_embedded(&server, config.lexical_backend).await?;
        let path = args.path.to_str().context("the archive path is not UTF-8")?;
        let restored = run_tool(
            &config,
            &server,
            "pg_restore",
            &["--clean", "--if-exists", "--single-transaction", "--exit-on-error", path],
        )
        .await;
        if restored.is_err() {
            // The archive was rolled back, but the empty database the migrations made would
            // refuse the next attempt ("already holds a database"): remove it, so a corrected
            // archive can be restored into the same data dir.
            if let Err(e) = drop_database(&server).await {
                tracing::warn!(error = %e, "removing the database of a failed restore failed");
            }
        }
        restored
    }
    .await;
    server.stop().await;
    result?;
    println!("restored {} into {}", args.path.display(), config.data_dir.display());
    Ok(())
}
