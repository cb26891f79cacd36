//! The extractive answerer: with no language model configured, an answer is the retrieved
//! sentences that share the most words with the question, quoted verbatim, each with a citation
//! `[doc:<id>]` of the document it came from. Verification checks every citation against the
//! retrieved documents and every quote against its document's text. Pure functions.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A retrieved document, as the answer step sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub id: Uuid,
    pub title: String,
    pub content: String,
}

/// One quoted sentence and the document it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub doc: Uuid,
    pub sentence: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub text: String,
    pub quotes: Vec<Quote>,
}

/// What the answer says when no retrieved sentence shares a word with the question.
pub const NO_ANSWER: &str = "None of the retrieved documents answers this question.";

const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "are", "was", "were", "what", "which", "who", "whom", "how", "why", "when", "where", "does",
    "did", "this", "that", "these", "those", "with", "from", "into", "about", "have", "has", "had", "can", "could",
    "should", "would", "will", "not", "but", "any", "all", "its", "their", "there", "than", "then", "them", "they",
    "you", "your", "our", "out", "tell",
];

/// A crude English stem (plural and verb endings), applied alike to questions and sentences so
/// "tenants" meets "tenant" and "glows" meets "glow". Not a linguist's stemmer; it only has to
/// be consistent.
pub fn stem(word: &str) -> String {
    let w = word.to_lowercase();
    let n = w.chars().count();
    // Every suffix below is ASCII, so cutting its length off the end stays on a char boundary.
    let cut = |k: usize| w[..w.len() - k].to_owned();
    if n > 4 && w.ends_with("ies") {
        format!("{}y", cut(3))
    } else if n > 5 && w.ends_with("ing") {
        cut(3)
    } else if n > 4 && ["ed", "ches", "shes", "sses", "xes", "zes"].iter().any(|s| w.ends_with(s)) {
        // "ranked" -> "rank", "indexes" -> "index".
        cut(2)
    } else if n > 3 && w.ends_with('s') && !["ss", "us", "is"].iter().any(|s| w.ends_with(s)) {
        cut(1)
    } else {
        w
    }
}

/// The question's content words, stemmed: three characters or more, no stop words.
pub fn terms(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !STOP_WORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

/// Sentences of `text`: split after `.`, `!` or `?` followed by white space, and at line breaks.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut start = 0;
        let bytes: Vec<(usize, char)> = line.char_indices().collect();
        for (i, &(at, c)) in bytes.iter().enumerate() {
            let next_is_space = bytes.get(i + 1).is_some_and(|&(_, n)| n.is_whitespace());
            if matches!(c, '.' | '!' | '?') && next_is_space {
                out.push(line[start..at + c.len_utf8()].trim());
                start = at + c.len_utf8();
            }
        }
        out.push(line[start..].trim());
    }
    out.retain(|s| s.chars().any(char::is_alphanumeric));
    out
}

/// How many of `terms` occur as (stemmed) words in `sentence`.
fn overlap(sentence: &str, terms: &HashSet<&str>) -> usize {
    let words: HashSet<String> = sentence.split(|c: char| !c.is_alphanumeric()).map(stem).collect();
    terms.iter().filter(|t| words.contains(**t)).count()
}

/// Ranks `sources` by how many distinct question terms they contain, keeping retrieval order
/// among equals.
pub fn rank(question: &str, sources: &[Source]) -> Vec<Source> {
    let terms = terms(question);
    let set: HashSet<&str> = terms.iter().map(String::as_str).collect();
    let mut scored: Vec<(usize, usize, &Source)> =
        sources.iter().enumerate().map(|(i, s)| (overlap(&format!("{} {}", s.title, s.content), &set), i, s)).collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, _, s)| s.clone()).collect()
}

/// Up to `max` sentences with the most question terms (earlier documents win ties), quoted with
/// their citations, in the order of their documents.
pub fn extract(question: &str, sources: &[Source], max: usize) -> Answer {
    let terms = terms(question);
    let set: HashSet<&str> = terms.iter().map(String::as_str).collect();
    let mut candidates: Vec<(usize, usize, usize, &str, Uuid)> = Vec::new();
    for (d, source) in sources.iter().enumerate() {
        for (s, sentence) in sentences(&source.content).into_iter().enumerate() {
            let score = overlap(sentence, &set);
            if score > 0 {
                candidates.push((score, d, s, sentence, source.id));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut seen = HashSet::new();
    let mut picked: Vec<(usize, usize, &str, Uuid)> = candidates
        .into_iter()
        .filter(|c| seen.insert(c.3))
        .take(max)
        .map(|(_, d, s, sentence, id)| (d, s, sentence, id))
        .collect();
    picked.sort();
    let quotes: Vec<Quote> = picked.iter().map(|&(_, _, s, doc)| Quote { doc, sentence: s.to_owned() }).collect();
    let text = if quotes.is_empty() {
        NO_ANSWER.to_owned()
    } else {
        quotes.iter().map(|q| format!("\"{}\" [doc:{}]", q.sentence, q.doc)).collect::<Vec<_>>().join("\n")
    };
    Answer { text, quotes }
}

/// The quotes in a model's answer: each `"sentence" [doc:<id>]` (straight or curly quotes).
pub fn quotes_in(text: &str) -> Vec<Quote> {
    let mut out = Vec::new();
    for (at, m) in text.match_indices("[doc:") {
        let rest = &text[at + m.len()..];
        let Some(end) = rest.find(']') else { continue };
        let Ok(doc) = Uuid::parse_str(&rest[..end]) else { continue };
        let before = text[..at].trim_end();
        let Some(inside) = before.strip_suffix('"').or_else(|| before.strip_suffix('\u{201d}')) else { continue };
        let Some(open) = inside.rfind(['"', '\u{201c}']) else { continue };
        let skip = inside[open..].chars().next().map_or(1, char::len_utf8);
        out.push(Quote { doc, sentence: inside[open + skip..].to_owned() });
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CitationError {
    #[error("the answer cites {0}, which was not retrieved")]
    NotRetrieved(String),
    #[error("a quote attributed to {0} is not in that document")]
    Misquoted(Uuid),
    #[error("citation {0:?} is not a document id")]
    Malformed(String),
}

/// Every `[doc:<id>]` in `text`, in order.
pub fn citations(text: &str) -> Vec<&str> {
    text.match_indices("[doc:")
        .filter_map(|(at, m)| {
            let rest = &text[at + m.len()..];
            rest.find(']').map(|end| &rest[..end])
        })
        .collect()
}

/// Checks an answer against the documents it was drawn from: each citation names a retrieved
/// document and each quote is that document's text. Returns the cited documents, first
/// citation first.
pub fn verify(answer: &Answer, sources: &[Source]) -> Result<Vec<Uuid>, CitationError> {
    let by_id: HashMap<Uuid, &Source> = sources.iter().map(|s| (s.id, s)).collect();
    let mut cited = Vec::new();
    for c in citations(&answer.text) {
        let id = Uuid::parse_str(c).map_err(|_| CitationError::Malformed(c.chars().take(64).collect()))?;
        if !by_id.contains_key(&id) {
            return Err(CitationError::NotRetrieved(id.to_string()));
        }
        if !cited.contains(&id) {
            cited.push(id);
        }
    }
    for q in &answer.quotes {
        let source = by_id.get(&q.doc).ok_or_else(|| CitationError::NotRetrieved(q.doc.to_string()))?;
        if !source.content.contains(&q.sentence) {
            return Err(CitationError::Misquoted(q.doc));
        }
    }
    Ok(cited)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(n: u128, content: &str) -> Source {
        Source { id: Uuid::from_u128(n), title: format!("doc {n}"), content: content.into() }
    }

    #[test]
    fn plural_and_verb_endings_meet_their_stems() {
        for (a, b) in
            [("tenants", "tenant"), ("glows", "glow"), ("queries", "query"), ("indexes", "index"), ("ranked", "rank")]
        {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
        assert_eq!(stem("class"), "class");
        assert_eq!(stem("status"), "status");
        assert_eq!(stem("is"), "is");
        assert_eq!(terms("How are Tenants kept apart?"), ["tenant", "kept", "apart"]);
    }

    #[test]
    fn sentences_split_at_terminators_and_lines() {
        assert_eq!(
            sentences("One thing. Two things! Three?\nFour 3.5 units\n\n"),
            ["One thing.", "Two things!", "Three?", "Four 3.5 units"]
        );
    }

    #[test]
    fn the_best_sentences_are_quoted_with_citations() {
        let docs = [
            source(1, "Cats sleep a lot. Zebras have stripes that confuse flies."),
            source(2, "Zebra stripes also cool the animal. Nothing else here."),
        ];
        let a = extract("Why do zebras have stripes?", &docs, 2);
        assert_eq!(a.quotes.len(), 2);
        assert_eq!(a.quotes[0].sentence, "Zebras have stripes that confuse flies.");
        assert!(a.text.contains(&format!("[doc:{}]", Uuid::from_u128(1))));
        assert_eq!(verify(&a, &docs).unwrap(), [Uuid::from_u128(1), Uuid::from_u128(2)]);

        let none = extract("quantum chromodynamics", &docs, 2);
        assert_eq!(none.text, NO_ANSWER);
        assert!(verify(&none, &docs).unwrap().is_empty());
    }

    #[test]
    fn verification_refuses_foreign_and_false_citations() {
        let docs = [source(1, "Alpha beta gamma.")];
        let foreign = Answer { text: format!("\"x\" [doc:{}]", Uuid::from_u128(9)), quotes: vec![] };
        assert!(matches!(verify(&foreign, &docs), Err(CitationError::NotRetrieved(_))));
        let misquote = Answer {
            text: format!("\"Delta.\" [doc:{}]", Uuid::from_u128(1)),
            quotes: vec![Quote { doc: Uuid::from_u128(1), sentence: "Delta.".into() }],
        };
        assert_eq!(verify(&misquote, &docs), Err(CitationError::Misquoted(Uuid::from_u128(1))));
        let junk = Answer { text: "[doc:nope]".into(), quotes: vec![] };
        assert!(matches!(verify(&junk, &docs), Err(CitationError::Malformed(_))));
    }

    #[test]
    fn quotes_are_read_back_from_a_model_answer() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let text = format!(
            "Because \"zebras confuse flies.\" [doc:{a}] and \u{201c}stripes cool\u{201d} [doc:{b}]. See [doc:{a}]."
        );
        let quotes = quotes_in(&text);
        assert_eq!(
            quotes,
            [
                Quote { doc: a, sentence: "zebras confuse flies.".into() },
                Quote { doc: b, sentence: "stripes cool".into() }
            ]
        );
    }

    #[test]
    fn ranking_prefers_documents_with_more_question_terms() {
        let docs = [source(1, "nothing relevant"), source(2, "zebra stripes"), source(3, "zebra")];
        let ids: Vec<u128> = rank("zebra stripes", &docs).iter().map(|s| s.id.as_u128()).collect();
        assert_eq!(ids, [2, 3, 1]);
    }
}
