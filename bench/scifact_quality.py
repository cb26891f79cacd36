"""nDCG@10 and Recall@50 of hybrid_search on a BEIR collection, through the MCP endpoint.

usage: scifact_quality.py URL TOKEN SPLIT [COLLECTION_DIR]
The corpus must already be loaded for the token's tenant with metadata.source_id = BEIR _id
(`agentplane load --corpus` does that). scripts/bench-quality runs the whole thing.
An interim black-box measurement until `agentplane eval` exists.
"""
import json, math, sys, urllib.request, concurrent.futures as cf
url, tok, split = sys.argv[1], sys.argv[2], sys.argv[3]
root = sys.argv[4] if len(sys.argv) > 4 else "../shared/eval/scifact"
k = 10
queries = {json.loads(l)["_id"]: json.loads(l)["text"] for l in open(f"{root}/queries.jsonl")}
qrels = {}
for line in list(open(f"{root}/qrels/{split}.tsv"))[1:]:
    q, d, s = line.split("\t"); qrels.setdefault(q, {})[d] = int(s)
def search(text, limit):
    body = json.dumps({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hybrid_search","arguments":{"query":text,"limit":limit},
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}).encode()
    req = urllib.request.Request(url, body, {"Authorization": "Bearer "+tok, "Content-Type":"application/json",
        "Accept":"application/json, text/event-stream", "MCP-Protocol-Version":"2026-07-28", "Mcp-Method":"tools/call", "Mcp-Name":"hybrid_search"})
    txt = urllib.request.urlopen(req).read().decode()
    data = next(json.loads(l[5:]) for l in txt.splitlines() if l.startswith("data:") and '"result"' in l)
    return [h["metadata"]["source_id"] for h in data["result"]["structuredContent"]["hits"]]
def score(q):
    ranked = search(queries[q], 50)
    rel = qrels[q]
    dcg = sum(rel.get(d,0)/math.log2(i+2) for i,d in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(r/math.log2(i+2) for i,r in enumerate(ideal))
    recall = len(set(ranked) & set(rel)) / len(rel)
    return dcg/idcg, recall
with cf.ThreadPoolExecutor(8) as ex:
    res = list(ex.map(score, qrels))
print(f"{split}: {len(res)} queries, nDCG@10 {sum(r[0] for r in res)/len(res):.4f}, Recall@50 {sum(r[1] for r in res)/len(res):.4f}")
