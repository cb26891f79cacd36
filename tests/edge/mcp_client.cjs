// The official MCP TypeScript SDK client, unmodified, through the edge: connect (initialize),
// list tools, run hybrid_search, then research as a 2025-11-25 task (created, polled with
// tasks/get, its result fetched with tasks/result) when the token may run it. Prints one JSON
// line; exits non-zero on any failure.
// Usage: node mcp_client.cjs URL TOKEN QUERY   (NODE_PATH must reach @modelcontextprotocol/sdk)
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');

// research as a task: each message type the SDK's task stream yields, and the final result.
async function researchAsTask(client, question) {
  const seen = [];
  let result = null;
  for await (const message of client.experimental.tasks.callToolStream({ name: 'research', arguments: { question } })) {
    seen.push(message.type === 'taskStatus' ? `status:${message.task.status}` : message.type);
    if (message.type === 'result') result = message.result;
    if (message.type === 'error') throw message.error;
  }
  return {
    messages: seen,
    isError: Boolean(result && result.isError),
    text: result ? (result.content || []).map((c) => c.text || '').join('\n').slice(0, 120) : null,
  };
}

async function main() {
  const [url, token, query] = process.argv.slice(2);
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'agentplane-edge-test', version: '1.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const result = await client.callTool({ name: 'hybrid_search', arguments: { query, limit: 3 } });
  const task = client.isToolTask('research') ? await researchAsTask(client, query) : null;
  await client.close();
  const text = (result.content || []).map((c) => c.text || '').join('\n');
  console.log(JSON.stringify({
    protocol: transport.protocolVersion || null,
    tools: tools.map((t) => t.name),
    isError: Boolean(result.isError),
    hits: result.structuredContent && Array.isArray(result.structuredContent.hits) ? result.structuredContent.hits.length : null,
    text: text.slice(0, 200),
    task,
  }));
}

main().catch((e) => {
  console.error(`mcp client: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
