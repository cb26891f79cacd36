//! The local embedding model on SciFact texts: `cargo bench -p agentplane-origin --bench embed`.
//! One claim (a search query), and a batch of 64 abstracts (ingest). Needs `scripts/setup origin`
//! for the model and `../shared/eval/scifact` for the texts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use agentplane_origin::models::embed::LocalModel;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn texts(file: &str, fields: &[&str], n: usize) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let body = std::fs::read_to_string(root.join("../shared/eval/scifact").join(file)).expect("SciFact texts");
    body.lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            fields.iter().filter_map(|f| v[*f].as_str()).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let model = LocalModel::load(&root.join(".tools/models/all-MiniLM-L6-v2")).expect("model (run scripts/setup)");
    let claims = texts("queries.jsonl", &["text"], 64);
    let abstracts = texts("corpus.jsonl", &["title", "text"], 64);
    let (_, claim_tokens) = model.embed_counting(&claims).unwrap();
    let (_, abstract_tokens) = model.embed_counting(&abstracts).unwrap();
    println!(
        "claims: {:.1} tokens each; abstracts: {:.1} tokens each (truncated at 256)",
        claim_tokens as f64 / claims.len() as f64,
        abstract_tokens as f64 / abstracts.len() as f64
    );

    let mut g = c.benchmark_group("embed");
    let mut i = 0;
    g.throughput(Throughput::Elements(1));
    g.bench_function("one claim", |b| {
        b.iter(|| {
            i = (i + 1) % claims.len();
            black_box(model.embed_blocking(std::slice::from_ref(&claims[i])).unwrap())
        })
    });
    g.throughput(Throughput::Elements(claims.len() as u64));
    g.bench_function("64 claims in one call", |b| b.iter(|| black_box(model.embed_blocking(&claims).unwrap())));
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(abstracts.len() as u64));
    g.bench_function("64 abstracts in one call", |b| b.iter(|| black_box(model.embed_blocking(&abstracts).unwrap())));
    g.finish();

    // The machine's pace for the encoder's main work: one layer's feed-forward product for a
    // 256-token text, 2 x 256 x 384 x 1536 = 302 million floating-point operations per call
    // (criterion's elements/s is FLOP/s). The encoder spends most of its time in products
    // of this shape, so this bounds what any engine on the same kernels can reach.
    let a = ndarray::Array2::<f32>::from_shape_fn((256, 384), |(i, j)| ((i * 7 + j) % 13) as f32 / 13.0);
    let b = ndarray::Array2::<f32>::from_shape_fn((384, 1536), |(i, j)| ((i * 5 + j) % 11) as f32 / 11.0);
    let mut g = c.benchmark_group("product");
    g.throughput(Throughput::Elements(2 * 256 * 384 * 1536));
    g.bench_function("256x384 by 384x1536, one thread", |bench| bench.iter(|| black_box(a.dot(&b))));
    // Two products at once, one per core: the throughput counts both.
    g.throughput(Throughput::Elements(2 * 2 * 256 * 384 * 1536));
    g.bench_function("256x384 by 384x1536, two threads at once", |bench| {
        bench.iter(|| {
            std::thread::scope(|s| {
                let other = s.spawn(|| black_box(a.dot(&b)));
                black_box(a.dot(&b));
                other.join().unwrap();
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
