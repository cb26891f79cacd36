//! Weighted reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009):
//! `score(d) = Σ_i w_i / (k + rank_i(d))`, ranks counted from 1.

use std::collections::HashMap;

use uuid::Uuid;

/// One candidate from one ranker, in that ranker's order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub id: Uuid,
    pub score: f64,
}

/// A fused hit with both sides' evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    pub id: Uuid,
    pub bm25_rank: Option<u32>,
    pub bm25_score: Option<f64>,
    pub vector_rank: Option<u32>,
    pub vector_score: Option<f64>,
    pub score: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub bm25: f64,
    pub vector: f64,
    pub k: f64,
}

/// Fuses two ranked lists. Ties are broken by the better single rank, then by id, so the order is
/// deterministic.
pub fn fuse(bm25: &[Candidate], vector: &[Candidate], w: Weights) -> Vec<Fused> {
    let mut by_id: HashMap<Uuid, Fused> = HashMap::with_capacity(bm25.len() + vector.len());
    for (i, c) in bm25.iter().enumerate() {
        let rank = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let e = by_id.entry(c.id).or_insert_with(|| empty(c.id));
        e.bm25_rank = Some(rank);
        e.bm25_score = Some(c.score);
        e.score += w.bm25 / (w.k + f64::from(rank));
    }
    for (i, c) in vector.iter().enumerate() {
        let rank = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let e = by_id.entry(c.id).or_insert_with(|| empty(c.id));
        e.vector_rank = Some(rank);
        e.vector_score = Some(c.score);
        e.score += w.vector / (w.k + f64::from(rank));
    }
    let mut fused: Vec<Fused> = by_id.into_values().collect();
    fused.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then_with(|| best_rank(a).cmp(&best_rank(b))).then_with(|| a.id.cmp(&b.id))
    });
    fused
}

fn empty(id: Uuid) -> Fused {
    Fused { id, bm25_rank: None, bm25_score: None, vector_rank: None, vector_score: None, score: 0.0 }
}

fn best_rank(f: &Fused) -> u32 {
    f.bm25_rank.unwrap_or(u32::MAX).min(f.vector_rank.unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u128, score: f64) -> Candidate {
        Candidate { id: Uuid::from_u128(n), score }
    }

    const EQUAL: Weights = Weights { bm25: 1.0, vector: 1.0, k: 60.0 };

    #[test]
    fn documents_found_by_both_rank_first() {
        let fused = fuse(&[c(1, 9.0), c(2, 8.0)], &[c(2, 0.9), c(3, 0.8)], EQUAL);
        assert_eq!(fused[0].id, Uuid::from_u128(2));
        assert!((fused[0].score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert_eq!((fused[0].bm25_rank, fused[0].vector_rank), (Some(2), Some(1)));
        assert_eq!((fused[0].bm25_score, fused[0].vector_score), (Some(8.0), Some(0.9)));
        assert_eq!(fused.len(), 3);
    }

    #[test]
    fn weights_and_k_shift_the_order() {
        let lexical = [c(1, 1.0)];
        let dense = [c(2, 1.0)];
        let bm25_heavy = fuse(&lexical, &dense, Weights { bm25: 2.0, vector: 1.0, k: 60.0 });
        assert_eq!(bm25_heavy[0].id, Uuid::from_u128(1));
        let vector_heavy = fuse(&lexical, &dense, Weights { bm25: 1.0, vector: 2.0, k: 60.0 });
        assert_eq!(vector_heavy[0].id, Uuid::from_u128(2));
        // A zero weight keeps the evidence but adds nothing.
        let off = fuse(&lexical, &dense, Weights { bm25: 0.0, vector: 1.0, k: 60.0 });
        assert_eq!(off[1].score, 0.0);
        assert_eq!(off[1].bm25_rank, Some(1));
    }

    #[test]
    fn one_sided_input_keeps_its_order_and_ties_are_deterministic() {
        let only = fuse(&[c(5, 3.0), c(4, 2.0), c(6, 1.0)], &[], EQUAL);
        let ids: Vec<u128> = only.iter().map(|f| f.id.as_u128()).collect();
        assert_eq!(ids, [5, 4, 6]);
        let tie = fuse(&[c(9, 1.0)], &[c(8, 1.0)], EQUAL);
        assert_eq!(tie[0].id, Uuid::from_u128(8), "equal scores and ranks fall back to id order");
        assert!(fuse(&[], &[], EQUAL).is_empty());
    }
}
