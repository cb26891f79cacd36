"""Reference embeddings of all-MiniLM-L6-v2 from a plain NumPy BERT forward pass, independent of
candle: tokenizer.json through HF `tokenizers`, weights through `safetensors`, then the BERT
encoder, mean pooling and L2 normalisation written out here. Writes the fixture the origin's
embedding test compares against (cosine > 0.999).

usage: python bench/minilm_reference.py MODEL_DIR OUT.json   (needs numpy, tokenizers, safetensors)
"""
import json, math, sys
import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "Row-level security keeps one tenant's documents away from another's.",
    "Paracetamol reduces fever in children.",
    "The quick brown fox jumps over the lazy dog.",
    "0-dimensional biomaterials lack inductive properties.",
    "A sentence that is rather long " + "and keeps going " * 40 + "until truncation matters.",
]

def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))

def layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b

def main(model_dir, out):
    cfg = json.load(open(f"{model_dir}/config.json"))
    w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in load_file(f"{model_dir}/model.safetensors").items()}
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(256)
    heads, hidden = cfg["num_attention_heads"], cfg["hidden_size"]
    dh = hidden // heads
    result = []
    for s in SENTENCES:
        enc = tok.encode(s)
        ids = np.array(enc.ids)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][: len(ids)] \
            + w["embeddings.token_type_embeddings.weight"][np.zeros(len(ids), dtype=int)]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            def lin(name, v):
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
            q, k, v = (lin(f"attention.self.{n}", x).reshape(len(ids), heads, dh).transpose(1, 0, 2) for n in ("query", "key", "value"))
            att = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(len(ids), hidden)
            x = layer_norm(lin("attention.output.dense", ctx) + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            h = gelu(lin("intermediate.dense", x))
            x = layer_norm(lin("output.dense", h) + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        e = x.mean(0)
        e /= np.linalg.norm(e)
        result.append({"text": s, "tokens": len(ids), "embedding": [round(float(f), 7) for f in e]})
    json.dump({"model": "all-MiniLM-L6-v2", "max_tokens": 256, "pooling": "mean", "normalized": True, "sentences": result}, open(out, "w"))

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
