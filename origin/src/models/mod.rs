//! The model providers and what they cost: embeddings, the chat model, the circuit breaker both
//! remote clients share, the usage ledger and daily budgets.

pub mod breaker;
pub mod budget;
pub mod chat;
pub mod embed;
pub mod usage;
