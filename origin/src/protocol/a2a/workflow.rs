//! Workflows as ordered step lists. A step reads the task's input and the outputs of the steps
//! before it (the checkpoint) and returns its own output, artifacts and, for the last step, the
//! answer. Steps call the search code directly, in a transaction of the task's tenant. The
//! workflows: `rag_answer` (the default), `research`, and the test-only `probe`.
//!
//! A step may run more than once (a retry, or a resume after its process died before the
//! checkpoint was written), so steps have no side effects of their own: artifacts are written by
//! the executor with the checkpoint, under ids that make a second write a no-op.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::answer::{self, Source};
use super::wire::{Artifact, Message, Part};
use crate::data::db::{Database, TenantId};
use crate::data::search::{self, SearchParams};
use crate::models::budget::BudgetConfig;
use crate::models::chat::ChatClient;
use crate::models::embed::Embedder;

/// What steps need from the process.
#[derive(Debug)]
pub struct RunContext {
    pub db: Database,
    pub embedder: Option<Embedder>,
    /// The chat model answers are written with; `None`: extractive answers.
    pub chat: Option<ChatClient>,
    pub budgets: BudgetConfig,
    /// Offer the `probe` workflow (tests only).
    pub test_workflows: bool,
    /// The compatibility kit's fixtures are on (`dev/a2a_tck.rs`).
    pub tck_fixtures: bool,
    /// Other messages meet the 0.3 kit's reference agent too (`dev/a2a_tck.rs`).
    pub tck_reference_agent: bool,
}

/// One run of one step.
#[derive(Debug, Clone)]
pub struct StepInput {
    pub ctx: Arc<RunContext>,
    pub tenant: TenantId,
    pub subject: String,
    pub tier: String,
    pub task_id: Uuid,
    pub query: String,
    pub input: Message,
    /// The messages after `input` (the agent's questions, the user's replies), in order.
    pub history: Vec<Message>,
    /// Outputs of the finished steps, by step name.
    pub checkpoint: Map<String, Value>,
    /// 1 for the first attempt.
    pub attempt: i32,
}

#[derive(Debug, Clone, Default)]
pub struct StepOutput {
    /// Saved in the checkpoint under the step's name.
    pub value: Value,
    pub artifacts: Vec<Artifact>,
    /// The agent's final message (the last step's).
    pub answer: Option<String>,
    /// The step cannot go on without the user: the task becomes input-required with this
    /// question, and the step runs again on the reply (its `value` and artifacts are dropped).
    pub ask: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Worth another attempt.
    #[error("{0}")]
    Transient(String),
    /// Will fail the same way again: the task fails without retrying.
    #[error("{0}")]
    Permanent(String),
    /// The agent will not do this task: it ends rejected, with this reason.
    #[error("{0}")]
    Rejected(String),
    #[error("search failed: {0}")]
    Search(#[from] sqlx::Error),
}

impl StepError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, StepError::Permanent(_) | StepError::Rejected(_))
    }
}

type StepFn = fn(StepInput) -> BoxFuture<'static, Result<StepOutput, StepError>>;

#[derive(Debug)]
pub struct Step {
    pub name: &'static str,
    pub run: StepFn,
}

#[derive(Debug)]
pub struct Workflow {
    pub name: &'static str,
    pub steps: &'static [Step],
}

pub static RAG_ANSWER: Workflow = Workflow {
    name: "rag_answer",
    steps: &[
        Step { name: "search", run: |i| Box::pin(rag_search(i)) },
        Step { name: "rank", run: |i| Box::pin(rag_rank(i)) },
        Step { name: "answer", run: |i| Box::pin(rag_answer(i)) },
        Step { name: "verify", run: |i| Box::pin(rag_verify(i)) },
    ],
};

pub static RESEARCH: Workflow = Workflow {
    name: "research",
    steps: &[
        Step { name: "plan", run: |i| Box::pin(research_plan(i)) },
        Step { name: "search", run: |i| Box::pin(research_search(i)) },
        Step { name: "cross_reference", run: |i| Box::pin(research_cross_reference(i)) },
        Step { name: "report", run: |i| Box::pin(research_report(i)) },
    ],
};

/// A test-only workflow whose steps sleep, fail and time out as the message's metadata says
/// (`sleep_ms`, `fail_times`, `timeout_ms`), so the executor's retry, timeout, cancel and resume
/// paths can be exercised end to end. Offered only with `a2a.test_workflows`.
pub static PROBE: Workflow = Workflow {
    name: "probe",
    steps: &[
        Step { name: "probe-1", run: |i| Box::pin(probe(i, 1)) },
        Step { name: "probe-2", run: |i| Box::pin(probe(i, 2)) },
        Step { name: "probe-3", run: |i| Box::pin(probe(i, 3)) },
    ],
};

pub const DEFAULT: &str = "rag_answer";

/// Whether a client may name `name` as a message's skill: the fixtures' workflow is chosen by
/// the fixtures alone.
pub fn is_skill(name: &str) -> bool {
    #[cfg(feature = "dev-tools")]
    if name == crate::dev::a2a_tck::WORKFLOW {
        return false;
    }
    let _ = name;
    true
}

/// The workflow of this name, if this process offers it.
pub fn find(name: &str, test_workflows: bool) -> Option<&'static Workflow> {
    match name {
        "rag_answer" => Some(&RAG_ANSWER),
        "research" => Some(&RESEARCH),
        "probe" if test_workflows => Some(&PROBE),
        // Only a task the fixtures started names it (a client cannot pick it as a skill).
        #[cfg(feature = "dev-tools")]
        crate::dev::a2a_tck::WORKFLOW => Some(&crate::dev::a2a_tck::TCK),
        _ => None,
    }
}

/// The time one attempt of a step may take: the configured limit, which only the probe
/// workflow's `timeout_ms` may lower.
pub fn step_timeout(workflow: &Workflow, input: &Message, default: Duration) -> Duration {
    if workflow.name == PROBE.name
        && let Some(ms) = metadata_u64(input, "timeout_ms")
    {
        return Duration::from_millis(ms).min(default);
    }
    default
}

/// A whole number in the message's metadata. A protobuf `Struct` (1.0's metadata, and gRPC or
/// ProtoJSON clients') holds every number as a double, so `2000.0` counts as 2000.
fn metadata_u64(input: &Message, key: &str) -> Option<u64> {
    let v = input.metadata.as_ref()?.get(key)?;
    v.as_u64().or_else(|| {
        let f = v.as_f64()?;
        // Exact below 2^53; anything larger is no sensible count of milliseconds or attempts.
        (f >= 0.0 && f.fract() == 0.0 && f < 9_007_199_254_740_992.0).then_some(f as u64)
    })
}

/// How much of a document the answer steps read.
const MAX_SOURCE_CHARS: usize = 4000;

fn sources_of(hits: Vec<search::Hit>) -> Vec<Source> {
    hits.into_iter()
        .map(|h| Source {
            id: h.id,
            title: h.title,
            content: h.content.unwrap_or_default().chars().take(MAX_SOURCE_CHARS).collect(),
        })
        .collect()
}

/// Before a step that pays for a model call: a budget spent since the task started fails the task
/// and says why, rather than quietly answering less.
async fn check_budget(i: &StepInput) -> Result<(), StepError> {
    let mut tx = i.ctx.db.tenant_tx(i.tenant).await?;
    let allowed = i.ctx.budgets.check(&mut tx, &i.tier, &i.subject).await?;
    tx.commit().await?;
    allowed.map_err(|exceeded| StepError::Permanent(format!("budget exceeded: {exceeded}")))
}

/// Before a paid call: holds `micros` of the budgets for `ttl`, or fails the task and says why
/// when a budget is spent (by what was spent and what other calls hold).
async fn reserve_budget(
    i: &StepInput,
    micros: u64,
    ttl: std::time::Duration,
) -> Result<crate::models::budget::Reservation, StepError> {
    let mut tx = i.ctx.db.tenant_tx(i.tenant).await?;
    // A reservation outlives a call that times out only by this margin.
    let ttl = ttl + std::time::Duration::from_secs(30);
    let held = i.ctx.budgets.reserve(&mut tx, &i.tier, &i.subject, micros, ttl).await?;
    tx.commit().await?;
    held.map_err(|exceeded| StepError::Permanent(format!("budget exceeded: {exceeded}")))
}

/// Before a search step: embedding its queries costs money only with a priced remote provider.
async fn check_search_budget(i: &StepInput) -> Result<(), StepError> {
    if i.ctx.embedder.as_ref().is_some_and(crate::models::embed::Embedder::is_priced) {
        check_budget(i).await?;
    }
    Ok(())
}

async fn find_sources(i: &StepInput, query: &str, limit: u32) -> Result<Vec<Source>, StepError> {
    let params = SearchParams {
        query: query.to_owned(),
        limit,
        bm25_weight: search::DEFAULT_BM25_WEIGHT,
        vector_weight: search::DEFAULT_VECTOR_WEIGHT,
        rrf_k: search::DEFAULT_RRF_K,
        filter: Map::new(),
        include_content: true,
        embedding: None,
    };
    let result = search::search_as(&i.ctx.db, i.ctx.embedder.as_ref(), i.tenant, &i.subject, params).await?;
    Ok(sources_of(result.hits))
}

/// A previous step's output, decoded.
fn earlier<T: serde::de::DeserializeOwned>(i: &StepInput, step: &str, field: &str) -> Result<T, StepError> {
    let v = i.checkpoint.get(step).and_then(|s| s.get(field)).cloned().unwrap_or(Value::Null);
    serde_json::from_value(v).map_err(|e| StepError::Permanent(format!("checkpoint of step {step} is unreadable: {e}")))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, StepError> {
    serde_json::to_value(v).map_err(|e| StepError::Permanent(e.to_string()))
}

/// What the user has said in the task so far: the first message, then each later one of theirs
/// (replies to the agent's questions, follow-ups), one per line.
pub fn conversation(input: &Message, history: &[Message]) -> String {
    let mut text = input.text();
    for m in history.iter().filter(|m| m.role == super::wire::Role::User) {
        let more = m.text();
        if !more.trim().is_empty() {
            text.push('\n');
            text.push_str(&more);
        }
    }
    text
}

/// Words that say nothing about what to search for.
const VAGUE_WORDS: &[&str] = &[
    "about",
    "and",
    "anything",
    "are",
    "can",
    "could",
    "does",
    "explain",
    "for",
    "from",
    "have",
    "hello",
    "help",
    "how",
    "info",
    "information",
    "know",
    "more",
    "please",
    "question",
    "something",
    "stuff",
    "tell",
    "that",
    "the",
    "thing",
    "things",
    "this",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "with",
    "would",
    "you",
    "your",
];

/// Whether `query` has nothing to search for: no word of three letters or more beyond the
/// vague ones ("help", "tell me more", "?").
pub fn too_vague(query: &str) -> bool {
    !query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .any(|w| !VAGUE_WORDS.contains(&w.to_lowercase().as_str()))
}

async fn rag_search(i: StepInput) -> Result<StepOutput, StepError> {
    if too_vague(&i.query) {
        // Searching for nothing finds nothing worth citing: ask, and search on the reply.
        let ask = format!(
            "What would you like to know? \"{}\" does not say what to look for in this tenant's documents; \
             reply with the topic or the terms you have in mind.",
            i.query.trim().chars().take(200).collect::<String>()
        );
        return Ok(StepOutput { ask: Some(ask), ..StepOutput::default() });
    }
    check_search_budget(&i).await?;
    let sources = find_sources(&i, &i.query, 8).await?;
    Ok(StepOutput { value: json!({ "sources": to_value(&sources)? }), ..StepOutput::default() })
}

async fn rag_rank(i: StepInput) -> Result<StepOutput, StepError> {
    let sources: Vec<Source> = earlier(&i, "search", "sources")?;
    let ranked: Vec<Source> = answer::rank(&i.query, &sources).into_iter().take(5).collect();
    Ok(StepOutput { value: json!({ "sources": to_value(&ranked)? }), ..StepOutput::default() })
}

const ANSWER_SYSTEM: &str = "You answer questions only from the sources given. Quote every sentence you rely on \
     verbatim in double quotes, each followed by its source's citation exactly as written, e.g. \
     \"The sky is blue.\" [doc:<id>]. If the sources do not answer the question, say so and cite nothing.";

fn answer_prompt(question: &str, sources: &[Source]) -> String {
    let mut prompt = format!("Question: {}\n\nSources:\n", question.trim());
    for s in sources {
        prompt.push_str(&format!("\n[doc:{}] {}\n{}\n", s.id, s.title, s.content));
    }
    prompt
}

/// The model's answer when a chat model is configured and answers; the extractive answer as the
/// fallback when the model fails. A budget spent since the task started fails the task. Every call is written to the usage ledger.
async fn rag_answer(i: StepInput) -> Result<StepOutput, StepError> {
    let sources: Vec<Source> = earlier(&i, "rank", "sources")?;
    let extractive = answer::extract(&i.query, &sources, 3);
    let mut value = json!({ "answer": to_value(&extractive)?, "answerer": "extractive" });
    let Some(chat) = i.ctx.chat.as_ref().filter(|_| !sources.is_empty()) else {
        return Ok(StepOutput { value, ..StepOutput::default() });
    };
    let prompt = answer_prompt(&i.query, &sources);
    let hold = reserve_budget(&i, chat.max_cost_micros(ANSWER_SYSTEM, &prompt), chat.timeout()).await?;
    let result = chat.complete(ANSWER_SYSTEM, &prompt).await;
    // What the call cost replaces what it held, in one transaction.
    let mut tx = i.ctx.db.tenant_tx(i.tenant).await?;
    if let Ok(completion) = &result {
        crate::models::usage::record_chat(&mut tx, &i.subject, chat.model(), completion).await?;
    }
    i.ctx.budgets.release(&mut tx, hold).await?;
    tx.commit().await?;
    match result {
        Ok(completion) => {
            let quotes = answer::quotes_in(&completion.text);
            let model_answer = answer::Answer { text: completion.text, quotes };
            value = json!({
                "answer": to_value(&model_answer)?,
                "answerer": "model",
                "model": chat.model(),
                "fallback": to_value(&extractive)?,
            });
        }
        Err(e) => {
            tracing::warn!(task = %i.task_id, error = %e, "chat model unavailable; answering extractively");
            value["why"] = json!(e.to_string());
        }
    }
    Ok(StepOutput { value, ..StepOutput::default() })
}

async fn rag_verify(i: StepInput) -> Result<StepOutput, StepError> {
    let sources: Vec<Source> = earlier(&i, "rank", "sources")?;
    let mut a: answer::Answer = earlier(&i, "answer", "answer")?;
    let mut answerer: String = earlier(&i, "answer", "answerer")?;
    let mut note: Option<String> = earlier(&i, "answer", "why")?;
    let cited = match answer::verify(&a, &sources) {
        Ok(cited) => cited,
        // A model answer that cites or quotes what was not retrieved is replaced, not shown.
        Err(e) if answerer == "model" => {
            a = earlier(&i, "answer", "fallback")?;
            answerer = "extractive".into();
            note = Some(format!("the model's answer failed verification: {e}"));
            answer::verify(&a, &sources).map_err(|e| StepError::Permanent(e.to_string()))?
        }
        Err(e) => return Err(StepError::Permanent(e.to_string())),
    };
    let citations: Vec<Value> = cited
        .iter()
        .filter_map(|id| sources.iter().find(|s| s.id == *id))
        .map(|s| json!({ "id": s.id, "title": s.title }))
        .collect();
    let artifact = Artifact {
        artifact_id: "answer".into(),
        name: "answer".into(),
        description: Some("The answer: quoted sentences with the documents they come from.".into()),
        parts: vec![
            Part::text(a.text.clone()),
            Part::data(json!({ "citations": citations, "answerer": answerer, "note": note })),
        ],
    };
    Ok(StepOutput { value: json!({ "cited": cited }), artifacts: vec![artifact], answer: Some(a.text), ask: None })
}

/// The most searches one research question fans out to: the question and three clauses.
const MAX_SUB_QUERIES: usize = 4;

/// The question itself, then its clauses (split at `;`, `?`, `,` and " and "), up to
/// [`MAX_SUB_QUERIES`] in all. One pass that stops once it has enough: its cost is linear in the
/// question, whatever its clauses.
pub fn sub_queries(query: &str) -> Vec<String> {
    let mut out = vec![query.trim().to_owned()];
    let normalised = query.replace(" and ", ";").replace([',', '?'], ";");
    for clause in normalised.split(';').map(str::trim) {
        if out.len() == MAX_SUB_QUERIES {
            break;
        }
        if !out.iter().any(|q| q.eq_ignore_ascii_case(clause)) && !answer::terms(clause).is_empty() {
            out.push(clause.to_owned());
        }
    }
    out
}

async fn research_plan(i: StepInput) -> Result<StepOutput, StepError> {
    Ok(StepOutput { value: json!({ "queries": sub_queries(&i.query) }), ..StepOutput::default() })
}

async fn research_search(i: StepInput) -> Result<StepOutput, StepError> {
    let queries: Vec<String> = earlier(&i, "plan", "queries")?;
    // One check for the step, not one per parallel search.
    check_search_budget(&i).await?;
    let searches = queries.iter().map(|q| find_sources(&i, q, 5));
    let found = futures::future::try_join_all(searches).await?;
    let results: Vec<Value> = queries
        .iter()
        .zip(found)
        .map(|(q, sources)| Ok(json!({ "query": q, "sources": to_value(&sources)? })))
        .collect::<Result<_, StepError>>()?;
    Ok(StepOutput { value: json!({ "results": results }), ..StepOutput::default() })
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Finding {
    query: String,
    sources: Vec<Source>,
}

async fn research_cross_reference(i: StepInput) -> Result<StepOutput, StepError> {
    let results: Vec<Finding> = earlier(&i, "search", "results")?;
    // Per document: which searches found it, and its best rank in any of them.
    let mut seen: HashMap<Uuid, (Vec<usize>, usize, String)> = HashMap::new();
    for (q, finding) in results.iter().enumerate() {
        for (rank, s) in finding.sources.iter().enumerate() {
            let entry = seen.entry(s.id).or_insert_with(|| (Vec::new(), rank, s.title.clone()));
            entry.0.push(q);
            entry.1 = entry.1.min(rank);
        }
    }
    let mut docs: Vec<(Uuid, Vec<usize>, usize, String)> =
        seen.into_iter().map(|(id, (qs, best, title))| (id, qs, best, title)).collect();
    docs.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0)));
    let documents: Vec<Value> =
        docs.iter().map(|(id, qs, _, title)| json!({ "id": id, "title": title, "found_by": qs })).collect();
    Ok(StepOutput { value: json!({ "documents": documents }), ..StepOutput::default() })
}

async fn research_report(i: StepInput) -> Result<StepOutput, StepError> {
    let results: Vec<Finding> = earlier(&i, "search", "results")?;
    let documents: Vec<Value> = earlier(&i, "cross_reference", "documents")?;
    let mut report = format!("# Research: {}\n", i.query.trim());
    let mut all_sources: Vec<Source> = Vec::new();
    for finding in &results {
        let a = answer::extract(&finding.query, &finding.sources, 2);
        answer::verify(&a, &finding.sources).map_err(|e| StepError::Permanent(e.to_string()))?;
        report.push_str(&format!("\n## {}\n\n{}\n", finding.query, a.text));
        for s in &finding.sources {
            if !all_sources.iter().any(|x| x.id == s.id) {
                all_sources.push(s.clone());
            }
        }
    }
    report.push_str(&format!("\n## Sources ({} documents)\n\n", documents.len()));
    for d in &documents {
        let found_by = d["found_by"].as_array().map_or(0, Vec::len);
        report.push_str(&format!(
            "- {} [doc:{}]: found by {found_by} of {} searches\n",
            d["title"].as_str().unwrap_or_default(),
            d["id"].as_str().unwrap_or_default(),
            results.len()
        ));
    }
    let check = answer::Answer { text: report.clone(), quotes: Vec::new() };
    answer::verify(&check, &all_sources).map_err(|e| StepError::Permanent(e.to_string()))?;
    let artifact = Artifact {
        artifact_id: "report".into(),
        name: "report".into(),
        description: Some("Findings per sub-question, cross-referenced sources.".into()),
        parts: vec![Part::text(report.clone()), Part::data(json!({ "documents": documents }))],
    };
    Ok(StepOutput {
        value: json!({ "sources": documents.len() }),
        artifacts: vec![artifact],
        answer: Some(report),
        ask: None,
    })
}

async fn probe(i: StepInput, n: usize) -> Result<StepOutput, StepError> {
    if let Some(ms) = metadata_u64(&i.input, "sleep_ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let fail_times = metadata_u64(&i.input, "fail_times").unwrap_or(0);
    if u64::try_from(i.attempt).unwrap_or(0) <= fail_times {
        return Err(StepError::Transient(format!("probe step {n} fails attempt {}", i.attempt)));
    }
    let text = format!("probe step {n} done on attempt {}", i.attempt);
    let artifact = Artifact {
        artifact_id: format!("probe-{n}"),
        name: format!("probe-{n}"),
        description: None,
        parts: vec![Part::text(text.clone())],
    };
    let last = n == PROBE.steps.len();
    Ok(StepOutput {
        value: json!({ "attempt": i.attempt }),
        artifacts: vec![artifact],
        answer: last.then_some(text),
        ask: None,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn vague_questions_are_told_apart_from_short_ones() {
        for vague in ["help", "Tell me more?", "?", "hi", "what is this", "Can you help me with something"] {
            assert!(too_vague(vague), "{vague}");
        }
        for fine in ["kubernetes", "row-level security", "How are tenants kept apart?", "Hello from TCK"] {
            assert!(!too_vague(fine), "{fine}");
        }
    }

    #[test]
    fn the_conversation_is_the_user_side_in_order() {
        let user = |t: &str| Message { role: super::super::wire::Role::User, ..Message::agent("m".into(), t) };
        let history = [Message::agent("q".into(), "What would you like to know?"), user("about leases")];
        assert_eq!(conversation(&user("help"), &history), "help\nabout leases");
    }

    use super::*;

    #[test]
    fn struct_numbers_count_as_whole_numbers() {
        let with = |v: serde_json::Value| Message {
            metadata: Some(serde_json::json!({ "sleep_ms": v }).as_object().cloned().unwrap_or_default()),
            ..Message::agent("m".into(), "t")
        };
        assert_eq!(metadata_u64(&with(serde_json::json!(2000)), "sleep_ms"), Some(2000));
        assert_eq!(metadata_u64(&with(serde_json::json!(2000.0)), "sleep_ms"), Some(2000));
        assert_eq!(metadata_u64(&with(serde_json::json!(2.5)), "sleep_ms"), None);
        assert_eq!(metadata_u64(&with(serde_json::json!(-1.0)), "sleep_ms"), None);
    }

    #[test]
    fn research_plans_the_question_and_its_clauses() {
        assert_eq!(
            sub_queries("zebra stripes and lion manes, elephant ears?"),
            ["zebra stripes and lion manes, elephant ears?", "zebra stripes", "lion manes", "elephant ears"]
        );
        assert_eq!(sub_queries("one thing"), ["one thing"]);
    }

    /// The bound: planning the largest question a message may carry (issue 12) takes
    /// under 50 ms. Two worst cases: every clause distinct, and no clause with a search term.
    #[test]
    fn planning_the_largest_admitted_question_is_fast() {
        let largest = super::super::wire::MAX_TEXT_BYTES;
        let distinct: String = (0..).map(|n| format!("w{n:05}, ")).take(largest / 8).collect();
        let termless = "a, ".repeat(largest / 3);
        for question in [distinct, termless] {
            assert!(question.len() <= largest);
            let started = std::time::Instant::now();
            let planned = sub_queries(&question);
            let took = started.elapsed();
            assert!(planned.len() <= MAX_SUB_QUERIES);
            assert!(took < std::time::Duration::from_millis(50), "sub_queries took {took:?}");
        }
    }

    #[test]
    fn the_probe_is_offered_only_to_tests() {
        assert!(find("probe", false).is_none());
        assert!(find("probe", true).is_some());
        assert_eq!(find("rag_answer", false).map(|w| w.steps.len()), Some(4));
        assert!(find("nope", true).is_none());
    }
}
