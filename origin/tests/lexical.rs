//! The lexical backends: the built-in full-text fallback (what most managed PostgreSQL offers)
//! on a database migrated without pg_search, and BM25 index compaction as the service role.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use agentplane_origin::data::db::{self, Database, LexicalBackend, LexicalChoice, TenantId};
use agentplane_origin::data::docs::{self, Upsert};
use agentplane_origin::data::search::{self, SearchParams};
use serde_json::{Map, json};
use sqlx::Connection;
use support::{embedding, origin, pg_url};
use uuid::Uuid;

fn params(query: &str) -> SearchParams {
    SearchParams {
        query: query.into(),
        limit: 10,
        bm25_weight: 1.0,
        vector_weight: 1.0,
        rrf_k: 60,
        filter: Map::new(),
        include_content: false,
        embedding: None,
    }
}

async fn put(db: &Database, tenant: TenantId, title: &str, content: &str, kind: &str) -> Uuid {
    let mut tx = db.tenant_tx(tenant).await.unwrap();
    let mut metadata = Map::new();
    metadata.insert("kind".into(), json!(kind));
    let doc = Upsert { id: None, title: title.into(), content: content.into(), metadata, embedding: None };
    let (d, _) = docs::upsert(&mut tx, &doc).await.unwrap();
    tx.commit().await.unwrap();
    d.id
}

async fn search(db: &Database, tenant: TenantId, p: &SearchParams) -> search::SearchResult {
    let mut tx = db.tenant_tx(tenant).await.unwrap();
    let r = search::hybrid_search(&mut tx, db.lexical(), tenant, p).await.unwrap();
    tx.commit().await.unwrap();
    r
}

#[tokio::test]
async fn full_text_fallback_ranks_filters_and_isolates() {
    let o = origin();
    let admin = pg_url(&o.config, "agentplane_admin", "admin_password", "postgres");
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'agentplane_fts')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    if !exists {
        sqlx::query("CREATE DATABASE agentplane_fts").execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    let db = Database::open(
        &pg_url(&o.config, "agentplane", "app_password", "agentplane_fts"),
        &pg_url(&o.config, "agentplane_admin", "admin_password", "agentplane_fts"),
        4,
        LexicalChoice::TsRankCd,
    )
    .await
    .unwrap();
    assert_eq!(db.lexical(), LexicalBackend::TsRankCd);

    let (a, b) = (TenantId::for_tests(Uuid::new_v4()), TenantId::for_tests(Uuid::new_v4()));
    let word = format!("w{}", &Uuid::new_v4().simple().to_string()[..10]);
    let best =
        put(&db, a, "Fever in children", &format!("paracetamol lowers fevers in children {word} {word}"), "drug").await;
    let other = put(&db, a, "Weather", &format!("a feverish summer {word}"), "other").await;
    let foreign = put(&db, b, "B", &format!("fever children {word}"), "drug").await;

    let r = search(&db, a, &params(&format!("children with a fever {word}"))).await;
    assert_eq!(r.lexical_backend, "ts_rank_cd");
    assert_eq!(r.mode, search::Mode::Bm25Only);
    let ids: Vec<Uuid> = r.hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, [best, other], "stemmed OR matching, ranked, tenant-scoped");
    assert!(!ids.contains(&foreign));
    let mut filtered = params(&word);
    filtered.filter.insert("kind".into(), json!("other"));
    assert_eq!(search(&db, a, &filtered).await.hits.iter().map(|h| h.id).collect::<Vec<_>>(), [other]);
    for hostile in ["'; DROP TABLE documents; --", "a & | ! ( ) : * <->", "\\", ""] {
        search(&db, a, &params(hostile)).await;
    }
    let mut hybrid = params(&word);
    hybrid.embedding = Some(embedding(3));
    assert_eq!(search(&db, a, &hybrid).await.mode, search::Mode::Hybrid);
}

#[tokio::test]
async fn the_service_role_can_compact_the_bm25_index() {
    let o = origin();
    let db = Database::open(
        &o.app_url,
        &pg_url(&o.config, "agentplane_admin", "admin_password", "agentplane"),
        2,
        LexicalChoice::Auto,
    )
    .await
    .unwrap();
    assert_eq!(db.lexical(), LexicalBackend::PgSearchBm25);
    let t = TenantId::for_tests(Uuid::new_v4());
    let id = put(&db, t, "compaction", "documents survive a rebuilt index", "x").await;
    // Zero allowed segments forces a rebuild: the privilege (MAINTAIN) and the statement work.
    let before = db::maintenance::compact_if_fragmented(db.pool(), 0).await.unwrap();
    assert!(before.is_some_and(|n| n >= 1));
    let r = search(&db, t, &params("documents survive")).await;
    assert_eq!(r.hits[0].id, id);
    assert!(db::maintenance::segments(db.pool()).await.unwrap() >= 1);
}
