//! PostgreSQL: connection pools, migrations, the service-role check, the lexical backend, and the
//! tenant-scoped transaction every request that touches tenant data runs in.

pub mod embedded;
pub mod listen;
pub mod maintenance;
mod tenant;

use std::time::Duration;
use tracing::Instrument as _;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres, Transaction};

pub(crate) use tenant::SystemTask;
pub use tenant::TenantId;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Which lexical ranking the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LexicalBackend {
    /// ParadeDB pg_search BM25 index.
    PgSearchBm25,
    /// Built-in full-text search over a GIN index, ranked by `ts_rank_cd`.
    TsRankCd,
}

impl LexicalBackend {
    pub fn name(self) -> &'static str {
        match self {
            LexicalBackend::PgSearchBm25 => "pg_search_bm25",
            LexicalBackend::TsRankCd => "ts_rank_cd",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the service's database role {role:?} {problem}; connect DATABASE_URL as a login granted \
         agentplane_app (no superuser, no BYPASSRLS, owning no tables) and run migrations through DATABASE_ADMIN_URL"
    )]
    PrivilegedRole { role: String, problem: &'static str },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// The application's database handle.
#[derive(Clone)]
pub struct Database {
    pool: PgPool,
    lexical: LexicalBackend,
    /// The service role's connection string, for connections the pool cannot make (binary COPY).
    app_url: std::sync::Arc<str>,
}

impl std::fmt::Debug for Database {
    // Not derived: the connection string holds the service role's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("lexical", &self.lexical).finish_non_exhaustive()
    }
}

impl Database {
    /// Applies migrations through `admin_url`, then opens the service pool on `app_url` and checks
    /// that its role cannot see past row-level security.
    pub async fn open(
        app_url: &str,
        admin_url: &str,
        max_connections: u32,
        lexical: LexicalChoice,
    ) -> Result<Self, DbError> {
        migrate(admin_url, lexical).await?;
        let options: PgConnectOptions = app_url.parse().map_err(DbError::Connect)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // Searches are many and short: parallel workers cost more to launch than they save,
            // and under load they multiply the processes competing for the same cores. The HNSW
            // settings are the vector search's (see `search::candidates`), set once per
            // connection rather than per search.
            .connect_with(options.application_name("agentplane").options([
                ("max_parallel_workers_per_gather", "0"),
                ("hnsw.iterative_scan", "relaxed_order"),
                // 100, not more: at 200 the planner costed the HNSW scan above a sequential scan
                // of SciFact's 5,183 rows, which took 15-32 ms against 1.8 ms for the index.
                ("hnsw.ef_search", "100"),
            ]))
            .await
            .map_err(DbError::Connect)?;
        check_service_role(&pool).await?;
        let lexical = detect_lexical(&pool).await?;
        Ok(Self { pool, lexical, app_url: app_url.into() })
    }

    /// A tokio-postgres connection of the service role, for binary COPY (sqlx has only the text
    /// form); row-level security applies to it as to the pool. Its driver runs until the client
    /// is dropped.
    pub async fn copy_client(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(&self.app_url, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "ingest connection ended with an error");
            }
        });
        Ok(client)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn lexical(&self) -> LexicalBackend {
        self.lexical
    }

    /// Opens a transaction scoped to `tenant`: `app.tenant_id` is set transaction-locally, so
    /// row-level security sees only that tenant's rows, and the setting cannot leak to the next
    /// user of the pooled connection. `BEGIN` and the setting go in one round trip; the tenant is
    /// a parsed UUID, whose text is hex digits and dashes only, so writing it into the statement
    /// cannot inject anything.
    pub async fn tenant_tx(&self, tenant: TenantId) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool
            .begin_with(format!("BEGIN; SELECT set_config('app.tenant_id', '{}', true)", tenant.as_uuid().hyphenated()))
            .instrument(crate::app::telemetry::sql_span("BEGIN (tenant)"))
            .await
    }

    /// [`Database::tenant_tx`] for a search: its statements are planned for their own values,
    /// never from the prepared statement's generic plan, in the same round trip. A generic plan
    /// cannot know the query vector or the LIMIT, so PostgreSQL costed the HNSW scan above a
    /// sequential scan of every vector and took the latter once it had run the statement five
    /// times: 21 ms on SciFact instead of 2 ms (psql, `EXECUTE` under each `plan_cache_mode`).
    pub async fn search_tx(&self, tenant: TenantId) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool
            .begin_with(format!(
                "BEGIN; SELECT set_config('app.tenant_id', '{}', true), set_config('plan_cache_mode', 'force_custom_plan', true)",
                tenant.as_uuid().hyphenated()
            ))
            .instrument(crate::app::telemetry::sql_span("BEGIN (tenant, search)"))
            .await
    }

    /// The dimension of `documents.embedding` (its type modifier).
    pub async fn embedding_dimensions(&self) -> Result<usize, sqlx::Error> {
        let typmod: i32 = sqlx::query_scalar(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'documents'::regclass AND attname = 'embedding'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(usize::try_from(typmod).unwrap_or(0))
    }

    /// Whether the database answers and every migration is applied.
    pub async fn readiness(&self) -> Result<usize, sqlx::Error> {
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(&self.pool).await?;
        Ok(usize::try_from(applied).unwrap_or(0))
    }
}

/// Which lexical backend migrations set up on a fresh database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LexicalChoice {
    /// pg_search BM25 where the server has it, else `ts_rank_cd`.
    #[default]
    Auto,
    /// Always the built-in `ts_rank_cd` ranking.
    TsRankCd,
}

/// Creates the transaction tenant's row on its first write (tenant-owned rows reference it).
pub async fn ensure_tenant(tx: &mut Transaction<'static, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query(ENSURE_TENANT).execute(&mut **tx).await?;
    Ok(())
}

/// The statement of [`ensure_tenant`], for connections outside the pool (ingest's COPY).
pub const ENSURE_TENANT: &str = "INSERT INTO tenants (id) VALUES (app_current_tenant()) ON CONFLICT (id) DO NOTHING";

/// Runs the migrations with the admin role.
pub async fn migrate(admin_url: &str, lexical: LexicalChoice) -> Result<(), DbError> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await.map_err(DbError::Connect)?;
    if lexical == LexicalChoice::TsRankCd {
        sqlx::query("SELECT set_config('agentplane.lexical_backend', 'ts_rank_cd', false)").execute(&mut conn).await?;
    }
    MIGRATOR.run(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Refuses a service role that could read across tenants: a superuser or BYPASSRLS role ignores
/// row-level security, and a table owner could switch it off.
async fn check_service_role(pool: &PgPool) -> Result<(), DbError> {
    let (role, superuser, bypass): (String, bool, bool) =
        sqlx::query_as("SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(pool)
            .await?;
    if superuser {
        return Err(DbError::PrivilegedRole { role, problem: "is a superuser" });
    }
    if bypass {
        return Err(DbError::PrivilegedRole { role, problem: "has BYPASSRLS" });
    }
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND pg_get_userbyid(c.relowner) = current_user",
    )
    .fetch_one(pool)
    .await?;
    if owned > 0 {
        return Err(DbError::PrivilegedRole { role, problem: "owns tables" });
    }
    Ok(())
}

async fn detect_lexical(pool: &PgPool) -> Result<LexicalBackend, sqlx::Error> {
    let bm25: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE tablename = 'documents' AND indexname = 'documents_bm25')",
    )
    .fetch_one(pool)
    .await?;
    Ok(if bm25 { LexicalBackend::PgSearchBm25 } else { LexicalBackend::TsRankCd })
}

/// Serialises provisioning across processes (an origin and `agentplane ingest` starting
/// together): concurrent `ALTER ROLE` / `GRANT` on one role fail with "tuple concurrently
/// updated", and two `CREATE DATABASE`s with "already exists".
const PROVISION_LOCK: i64 = 0x6167_706c_7072_6f76; // "agplprov"

/// Creates the embedded server's database and login role on first start. Idempotent, and safe
/// for several processes at once.
pub async fn provision_embedded(server: &embedded::EmbeddedPostgres, lexical: LexicalChoice) -> Result<(), DbError> {
    // Held on this connection (to the `postgres` database, which always exists) until it closes
    // at the end; advisory locks are per database, and every provisioner takes it here.
    let mut lock = sqlx::PgConnection::connect(&server.admin_url("postgres")).await.map_err(DbError::Connect)?;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(PROVISION_LOCK).execute(&mut lock).await?;
    let result = provision_locked(server, lexical, &mut lock).await;
    lock.close().await?;
    result
}

async fn provision_locked(
    server: &embedded::EmbeddedPostgres,
    lexical: LexicalChoice,
    conn: &mut sqlx::PgConnection,
) -> Result<(), DbError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(embedded::DATABASE)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        // Identifiers cannot be bound; these are compile-time constants.
        sqlx::query(&format!("CREATE DATABASE {}", embedded::DATABASE)).execute(&mut *conn).await?;
    }
    migrate(&server.admin_url(embedded::DATABASE), lexical).await?;
    let mut conn =
        sqlx::PgConnection::connect(&server.admin_url(embedded::DATABASE)).await.map_err(DbError::Connect)?;
    let role_exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(embedded::APP_ROLE)
        .fetch_one(&mut conn)
        .await?;
    // PASSWORD takes no bind parameter either; the password is our own alphanumeric secret, and
    // quote_literal makes it a literal whatever it holds.
    let password: String =
        sqlx::query_scalar("SELECT quote_literal($1)").bind(server.app_password()).fetch_one(&mut conn).await?;
    let verb = if role_exists { "ALTER" } else { "CREATE" };
    sqlx::query(&format!("{verb} ROLE {} LOGIN PASSWORD {password}", embedded::APP_ROLE)).execute(&mut conn).await?;
    sqlx::query(&format!("GRANT agentplane_app TO {}", embedded::APP_ROLE)).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}
