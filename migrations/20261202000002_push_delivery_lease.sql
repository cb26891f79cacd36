-- Webhook delivery holds no transaction while it talks to a receiver (a receiver that never
-- answers held a pooled connection per task, and 32 of them stalled every tenant). A process
-- takes a short lease on a webhook instead of a row lock: other processes skip it until the
-- lease passes, and a process that died mid-delivery loses it when it expires.
ALTER TABLE a2a_push_configs ADD COLUMN delivering_until timestamptz;

-- A tenant's webhooks are counted when one is added (a per-tenant cap).
CREATE INDEX a2a_push_configs_tenant ON a2a_push_configs (tenant_id);
