//! Vectors of recent search queries, per process. Agents repeat themselves (the same question
//! from a retry, a second page, another step of the same plan), and a repeated query then costs
//! no inference and no provider call.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

/// A bounded LRU of query text to vector. Zero entries turns it off.
#[derive(Debug)]
pub struct QueryCache {
    entries: Option<Mutex<LruCache<String, Arc<[f32]>>>>,
}

impl QueryCache {
    pub fn new(entries: usize) -> Self {
        Self { entries: NonZeroUsize::new(entries).map(|n| Mutex::new(LruCache::new(n))) }
    }

    /// The cache key: texts that differ only in whitespace tokenize the same, so they share one
    /// vector. Case is kept: a cased model would embed them differently.
    pub fn key(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    pub fn get(&self, key: &str) -> Option<Arc<[f32]>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still sound.
        self.entries.as_ref()?.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    pub fn put(&self, key: String, vector: Arc<[f32]>) {
        if let Some(m) = &self.entries {
            m.lock().unwrap_or_else(|p| p.into_inner()).put(key, vector);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_whitespace_but_not_case() {
        assert_eq!(QueryCache::key("  fever \n in\tchildren "), "fever in children");
        assert_ne!(QueryCache::key("Fever"), QueryCache::key("fever"));
    }

    #[test]
    fn the_oldest_entry_leaves_first_and_zero_turns_it_off() {
        let c = QueryCache::new(2);
        c.put("a".into(), Arc::from(vec![1.0]));
        c.put("b".into(), Arc::from(vec![2.0]));
        assert!(c.get("a").is_some());
        c.put("c".into(), Arc::from(vec![3.0]));
        assert!(c.get("b").is_none(), "b was the least recently used");
        assert!(c.get("a").is_some() && c.get("c").is_some());
        let off = QueryCache::new(0);
        off.put("a".into(), Arc::from(vec![1.0]));
        assert!(off.get("a").is_none());
    }
}
