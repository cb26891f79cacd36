//! `agentplane migrate`: apply the migrations and exit.

use crate::app::config::Config;
use crate::app::runtime::DatabaseHandle;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let handle = DatabaseHandle::open(&config).await?;
    let applied = handle.db.readiness().await?;
    println!("migrations applied: {applied}");
    handle.close().await;
    Ok(())
}
