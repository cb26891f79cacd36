//! The command line: one file per subcommand. Exit codes: 0 success, 1 runtime failure, 2 usage
//! or configuration error.

mod backup;
#[cfg(feature = "dev-tools")]
mod eval;
pub mod ingest;
#[cfg(feature = "dev-tools")]
mod load;
mod migrate;
mod serve;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::config::Config;

/// Exit codes, as documented in the README.
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const CONFIG: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(name = "agentplane", version, about = "Serve MCP and A2A agents from PostgreSQL")]
struct Cli {
    /// A TOML configuration file (environment variables and flags override it).
    #[arg(long, global = true, env = "AGENTPLANE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the origin server (MCP at /mcp).
    Serve(serve::Args),
    /// Apply database migrations and exit.
    Migrate,
    /// Load documents (BEIR JSONL, Markdown, text) into a tenant, with embeddings.
    Ingest(ingest::Args),
    /// Score search quality (nDCG@10, Recall@100) on a BEIR collection.
    #[cfg(feature = "dev-tools")]
    Eval(eval::Args),
    /// Load-test hybrid_search over MCP (optionally loading a BEIR corpus first).
    #[cfg(feature = "dev-tools")]
    Load(load::Args),
    /// Write the embedded database to one archive (pg_dump custom format), consistent while
    /// serving.
    Backup(backup::Args),
    /// Restore an archive made by `backup` into a data dir with no database yet.
    Restore(backup::Args),
    /// Development tokens signed with the local dev key.
    #[command(subcommand)]
    Token(token::Command),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agentplane: {e:#}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agentplane: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(config, args).await,
            Command::Migrate => migrate::run(config).await,
            Command::Backup(args) => backup::backup(config, args).await,
            Command::Restore(args) => backup::restore(config, args).await,
            #[cfg(feature = "dev-tools")]
            Command::Load(args) => load::run(args).await,
            #[cfg(feature = "dev-tools")]
            Command::Eval(args) => eval::run(config, args).await,
            Command::Ingest(args) => ingest::run(config, args).await,
            Command::Token(cmd) => token::run(config, cmd),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line that says what went wrong and, where we know it, what to do.
            eprintln!("agentplane: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}
