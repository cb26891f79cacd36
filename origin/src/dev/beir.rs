//! The BEIR collection format (`corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`), as the load
//! generator and `agentplane eval` read it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Doc {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Query {
    #[serde(rename = "_id")]
    pub id: String,
    pub text: String,
}

/// Relevance judgements: query id -> document id -> grade.
pub type Qrels = BTreeMap<String, BTreeMap<String, u32>>;

pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a JSON object of the expected shape", path.display(), i + 1))
        })
        .collect()
}

/// `query-id <TAB> corpus-id <TAB> score`, with a header line.
pub fn read_qrels(path: &Path) -> anyhow::Result<Qrels> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut qrels = Qrels::new();
    for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let mut cols = line.split('\t');
        let (Some(q), Some(d), Some(s)) = (cols.next(), cols.next(), cols.next()) else {
            anyhow::bail!("{}:{}: expected query-id, corpus-id, score", path.display(), i + 1);
        };
        let grade: u32 =
            s.trim().parse().with_context(|| format!("{}:{}: score is not a whole number", path.display(), i + 1))?;
        qrels.entry(q.to_owned()).or_default().insert(d.to_owned(), grade);
    }
    Ok(qrels)
}

/// nDCG@k of a ranking (BEIR's linear gain).
pub fn ndcg_at(ranked: &[String], relevant: &BTreeMap<String, u32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| f64::from(relevant.get(d).copied().unwrap_or(0)) / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<u32> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, g)| f64::from(*g) / ((i + 2) as f64).log2()).sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// Recall@k: the share of relevant documents found in the first k.
pub fn recall_at(ranked: &[String], relevant: &BTreeMap<String, u32>, k: usize) -> f64 {
    let wanted = relevant.values().filter(|g| **g > 0).count();
    if wanted == 0 {
        return 0.0;
    }
    let found = ranked.iter().take(k).filter(|d| relevant.get(*d).is_some_and(|g| *g > 0)).count();
    found as f64 / wanted as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        let rel: BTreeMap<String, u32> = [("a".to_owned(), 1), ("b".to_owned(), 1)].into();
        let ranked: Vec<String> = ["x", "a", "y", "b"].iter().map(|s| s.to_string()).collect();
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((ndcg_at(&ranked, &rel, 10) - dcg / idcg).abs() < 1e-12);
        assert!((recall_at(&ranked, &rel, 2) - 0.5).abs() < 1e-12);
        assert_eq!(recall_at(&ranked, &rel, 100), 1.0);
        assert_eq!(ndcg_at(&[], &rel, 10), 0.0);
    }
}
