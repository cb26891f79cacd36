// The official MCP TypeScript SDK client, unmodified, through the edge: connect (initialize),
// list tools, run hybrid_search. Prints one JSON line; exits non-zero on any failure.
// Usage: node mcp_client.cjs URL TOKEN QUERY   (NODE_PATH must reach @modelcontextprotocol/sdk)
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');

async function main() {
  const [url, token, query] = process.argv.slice(2);
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'agentplane-edge-test', version: '1.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const result = await client.callTool({ name: 'hybrid_search', arguments: { query, limit: 3 } });
  await client.close();
  const text = (result.content || []).map((c) => c.text || '').join('\n');
  console.log(JSON.stringify({
    protocol: transport.protocolVersion || null,
    tools: tools.map((t) => t.name),
    isError: Boolean(result.isError),
    hits: result.structuredContent && Array.isArray(result.structuredContent.hits) ? result.structuredContent.hits.length : null,
    text: text.slice(0, 200),
  }));
}

main().catch((e) => {
  console.error(`mcp client: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
