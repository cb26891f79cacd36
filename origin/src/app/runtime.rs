//! Bringing the database up: the configured server, or the embedded one.

use anyhow::Context as _;

use crate::app::config::Config;
use crate::data::db::embedded::EmbeddedPostgres;
use crate::data::db::{self, Database};

/// The database and, when embedded, the server process behind it.
#[derive(Debug)]
pub struct DatabaseHandle {
    pub db: Database,
    embedded: Option<EmbeddedPostgres>,
}

impl DatabaseHandle {
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        match &config.database_url {
            Some(url) => {
                let admin = config.database_admin_url.as_deref().unwrap_or(url);
                let db = Database::open(url, admin, config.max_db_connections, config.lexical_backend).await?;
                Ok(Self { db, embedded: None })
            }
            None => {
                let server = EmbeddedPostgres::start(&config.pg_install, &config.data_dir).await?;
                tracing::info!(port = server.port(), "embedded PostgreSQL is up");
                let opened = async {
                    db::provision_embedded(&server, config.lexical_backend).await?;
                    Database::open(
                        &server.app_url(),
                        &server.admin_url(db::embedded::DATABASE),
                        config.max_db_connections,
                        config.lexical_backend,
                    )
                    .await
                    .context("opening the embedded database")
                }
                .await;
                match opened {
                    Ok(db) => Ok(Self { db, embedded: Some(server) }),
                    Err(e) => {
                        server.stop().await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// The port of the embedded server, if one runs.
    pub fn embedded_port(&self) -> Option<u16> {
        self.embedded.as_ref().map(EmbeddedPostgres::port)
    }

    pub async fn close(self) {
        self.db.pool().close().await;
        if let Some(server) = self.embedded {
            server.stop().await;
        }
    }
}
