//! Tenant data in PostgreSQL: the database and its tenant transactions, documents, hybrid search,
//! bulk ingest, and the demo corpus.

pub mod db;
pub mod demo;
pub mod docs;
pub mod ingest;
pub mod search;
