"""nDCG@10 and Recall@50 of hybrid_search on a BEIR collection, through the MCP endpoint, for BM25
alone (vector_weight 0), vectors alone (bm25_weight 0) and their fusion (default weights).

usage: scifact_quality.py URL TOKEN SPLIT [COLLECTION_DIR]
The corpus must already be loaded for the token's tenant with metadata.source_id = BEIR _id
(`agentplane load --corpus` does that); scripts/bench-quality runs the whole thing. An interim
black-box measurement until `agentplane eval` exists. hybrid_search returns at most 50 hits, so
recall is at 50, not the customary 100.
"""
import concurrent.futures as cf
import json
import math
import sys
import urllib.request

url, token, split = sys.argv[1], sys.argv[2], sys.argv[3]
root = sys.argv[4] if len(sys.argv) > 4 else "../shared/eval/scifact"
queries = {json.loads(l)["_id"]: json.loads(l)["text"] for l in open(f"{root}/queries.jsonl")}
qrels = {}
for line in list(open(f"{root}/qrels/{split}.tsv"))[1:]:
    q, d, s = line.split("\t")
    qrels.setdefault(q, {})[d] = int(s)
MODES = {"bm25": {"vector_weight": 0}, "vector": {"bm25_weight": 0}, "hybrid": {}}


def search(text, weights):
    args = {"query": text, "limit": 50, **weights}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "hybrid_search", "arguments": args,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}).encode()
    req = urllib.request.Request(url, body, {
        "Authorization": "Bearer " + token, "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call", "Mcp-Name": "hybrid_search"})
    text = urllib.request.urlopen(req).read().decode()
    data = next(json.loads(l[5:]) for l in text.splitlines() if l.startswith("data:") and '"result"' in l)
    result = data["result"]["structuredContent"]
    return result["mode"], [h["metadata"]["source_id"] for h in result["hits"]]


def score(q, weights):
    mode, ranked = search(queries[q], weights)
    rel = qrels[q]
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(sorted(rel.values(), reverse=True)[:10]))
    return mode, dcg / idcg, len(set(ranked) & set(rel)) / len(rel)


for name, weights in MODES.items():
    with cf.ThreadPoolExecutor(4) as ex:
        res = list(ex.map(lambda q: score(q, weights), qrels))
    modes = sorted({r[0] for r in res})
    n = len(res)
    print(f"{split} {name:6}: {n} queries, nDCG@10 {sum(r[1] for r in res) / n:.4f}, "
          f"Recall@50 {sum(r[2] for r in res) / n:.4f} (mode {','.join(modes)})")
