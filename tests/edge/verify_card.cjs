// Fetches the agent card through the edge in both shapes (1.0, and 0.3 with A2A-Version: 0.3)
// and verifies each signature as a client would (A2A 1.0, 8.4.3): the card without `signatures`
// in RFC 8785 form is the detached payload of the JWS in `signatures[0]`, whose key is the one
// with its `kid` in the card key set served at `/.well-known/agent-card-jwks.json`. Node's own
// crypto, no packages. Prints one JSON line; exits non-zero when a signature does not verify.
// Usage: node verify_card.cjs EDGE_URL
const crypto = require('crypto');

// RFC 8785 for what a card holds (strings, booleans, integers, arrays, objects): keys sorted by
// UTF-16 code units (JavaScript's default sort), values as JSON.stringify writes them.
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

async function verify(base, version, keys) {
  const headers = version ? { 'A2A-Version': version } : {};
  const card = await (await fetch(`${base}/.well-known/agent-card.json`, { headers })).json();
  const [sig] = card.signatures || [];
  if (!sig) throw new Error(`the ${version || '1.0'} card carries no signature`);
  const header = JSON.parse(Buffer.from(sig.protected, 'base64url').toString());
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`no key ${header.kid} in the card key set`);
  const { signatures, ...body } = card;
  const input = `${sig.protected}.${Buffer.from(canonical(body)).toString('base64url')}`;
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const ok = crypto.verify(null, Buffer.from(input), key, Buffer.from(sig.signature, 'base64url'));
  // A tampered copy must fail, or the check proves nothing.
  const tampered = canonical({ ...body, name: `${body.name}!` });
  const bad = crypto.verify(null, Buffer.from(`${sig.protected}.${Buffer.from(tampered).toString('base64url')}`), key,
    Buffer.from(sig.signature, 'base64url'));
  return { version: version || '1.0', alg: header.alg, kid: header.kid, jku: header.jku, verified: ok, tamperedRejected: !bad };
}

async function main() {
  const base = process.argv[2].replace(/\/$/, '');
  const { keys } = await (await fetch(`${base}/.well-known/agent-card-jwks.json`)).json();
  const results = [await verify(base, null, keys), await verify(base, '0.3', keys)];
  console.log(JSON.stringify(results));
  if (!results.every((r) => r.verified && r.tamperedRejected)) process.exit(1);
}

main().catch((e) => {
  console.error(`verify card: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
