"""A BEIR corpus N times over, each copy's ids suffixed `-0`, `-1`, ... so every line is a distinct
document with the same text (what scripts/bench-ingest and SCALE= of scripts/bench-search load).

    python3 bench/scale_corpus.py CORPUS_JSONL OUT_JSONL N
"""

import json
import sys

source, target, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = [json.loads(line) for line in open(source) if line.strip()]
with open(target, "w") as out:
    for copy in range(copies):
        for d in lines:
            out.write(json.dumps({**d, "_id": f"{d['_id']}-{copy}"}) + "\n")
