//! Writing a batch of documents with COPY: rows go into a temporary staging table (COPY cannot
//! write to a table with row-level security), then one `INSERT ... SELECT` moves them into
//! `documents` inside the tenant's transaction, so RLS checks every row as for any other write.
//!
//! The COPY stream is PostgreSQL's text format, escaped here; sqlx's raw COPY keeps the write on
//! the pool and transaction every other query uses.

use std::fmt::Write as _;

use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// One row of the staging table.
#[derive(Debug)]
pub struct Row<'a> {
    pub id: Uuid,
    pub external_id: &'a str,
    pub title: &'a str,
    pub content: &'a str,
    pub metadata: &'a str,
    pub content_hash: &'a [u8],
    pub embedding: Option<(&'a [f32], &'a str)>,
}

/// How many rows were inserted and how many updated (the rest were identical already).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub created: u64,
    pub updated: u64,
}

const STAGING: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS ingest_staging (\
     id uuid, external_id text, title text, content text, metadata jsonb, content_hash bytea, \
     embedding vector, embedding_model text) ON COMMIT DELETE ROWS";

/// A changed content drops the old vector unless a new one came with it; unchanged content keeps
/// its vector. Identical rows are not rewritten (a rewrite churns the search indexes).
const MERGE: &str = "INSERT INTO documents AS d \
         (id, external_id, title, content, metadata, content_hash, embedding, embedding_model) \
     SELECT id, external_id, title, content, metadata, content_hash, embedding, embedding_model FROM ingest_staging \
     ON CONFLICT (tenant_id, id) DO UPDATE SET \
         external_id = EXCLUDED.external_id, title = EXCLUDED.title, content = EXCLUDED.content, \
         metadata = EXCLUDED.metadata, content_hash = EXCLUDED.content_hash, \
         embedding = CASE WHEN EXCLUDED.embedding IS NOT NULL THEN EXCLUDED.embedding \
                          WHEN d.content_hash = EXCLUDED.content_hash THEN d.embedding END, \
         embedding_model = CASE WHEN EXCLUDED.embedding IS NOT NULL THEN EXCLUDED.embedding_model \
                                WHEN d.content_hash = EXCLUDED.content_hash THEN d.embedding_model END, \
         updated_at = now() \
     WHERE (d.external_id, d.title, d.content_hash, d.metadata) \
               IS DISTINCT FROM (EXCLUDED.external_id, EXCLUDED.title, EXCLUDED.content_hash, EXCLUDED.metadata) \
        OR EXCLUDED.embedding IS NOT NULL AND d.embedding IS NULL \
     RETURNING (xmax = 0)";

pub async fn write(tx: &mut Transaction<'static, Postgres>, rows: &[Row<'_>]) -> Result<Written, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Written::default());
    }
    crate::data::db::ensure_tenant(tx).await?;
    sqlx::query(STAGING).execute(&mut **tx).await?;
    let mut copy = (**tx)
        .copy_in_raw(
            "COPY ingest_staging (id, external_id, title, content, metadata, content_hash, embedding, embedding_model) \
             FROM STDIN",
        )
        .await?;
    let mut buf = String::new();
    for row in rows {
        encode(&mut buf, row);
        // Send in pieces of about a megabyte rather than holding the whole batch twice.
        if buf.len() > 1 << 20 {
            copy.send(std::mem::take(&mut buf).into_bytes()).await?;
        }
    }
    if !buf.is_empty() {
        copy.send(buf.into_bytes()).await?;
    }
    copy.finish().await?;
    let inserted: Vec<bool> = sqlx::query_scalar(MERGE).fetch_all(&mut **tx).await?;
    let created = inserted.iter().filter(|i| **i).count() as u64;
    Ok(Written { created, updated: inserted.len() as u64 - created })
}

/// One line of COPY text format: tab-separated, `\N` for NULL, backslash escapes.
fn encode(buf: &mut String, row: &Row<'_>) {
    let _ = write!(buf, "{}\t", row.id);
    text(buf, row.external_id);
    buf.push('\t');
    text(buf, row.title);
    buf.push('\t');
    text(buf, row.content);
    buf.push('\t');
    text(buf, row.metadata);
    buf.push_str("\t\\\\x");
    for b in row.content_hash {
        let _ = write!(buf, "{b:02x}");
    }
    buf.push('\t');
    match row.embedding {
        Some((vector, model)) => {
            buf.push('[');
            for (i, x) in vector.iter().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                let _ = write!(buf, "{x}");
            }
            buf.push_str("]\t");
            text(buf, model);
        }
        None => buf.push_str("\\N\t\\N"),
    }
    buf.push('\n');
}

fn text(buf: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_copy_text_format_reads_specially() {
        let mut buf = String::new();
        let row = Row {
            id: Uuid::nil(),
            external_id: "a\tb",
            title: "back\\slash",
            content: "two\nlines\r",
            metadata: "{}",
            content_hash: &[0xab, 0x01],
            embedding: Some((&[0.5, -1.0], "m")),
        };
        encode(&mut buf, &row);
        assert_eq!(
            buf,
            "00000000-0000-0000-0000-000000000000\ta\\tb\tback\\\\slash\ttwo\\nlines\\r\t{}\t\\\\xab01\t[0.5,-1]\tm\n"
        );
        buf.clear();
        encode(&mut buf, &Row { embedding: None, ..row });
        assert!(buf.ends_with("\t\\N\t\\N\n"));
    }
}
