-- Multi-turn A2A tasks. A task's first message stays in `input`; every later one is appended
-- here in order: the agent's question when a step asked for input (the task was input-required),
-- then the user's reply, and any follow-up a user sent while the task ran. A reply to an
-- input-required task makes it runnable again (submitted), from the step that asked, which then
-- reads the whole conversation. Bounded by the origin (a task takes at most 64 messages).
ALTER TABLE a2a_tasks ADD COLUMN history jsonb NOT NULL DEFAULT '[]'::jsonb
    CHECK (jsonb_typeof(history) = 'array');
