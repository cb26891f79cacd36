-- What an operator watches of the A2A queue across tenants (the origin's /metrics): how many
-- runnable tasks wait for an executor, and how long the oldest has waited. A task waits from its
-- last change of state, or from the moment its lease ran out. Like embedding_backlog(), a
-- SECURITY DEFINER function that returns counts, never rows, so the service role gains no
-- cross-tenant read.
CREATE FUNCTION a2a_queue_stats() RETURNS TABLE (depth bigint, oldest_wait_seconds double precision)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
        SELECT count(*),
               coalesce(extract(epoch FROM now() - min(greatest(status_at, coalesce(lease_expires_at, status_at)))), 0)::double precision
          FROM a2a_tasks
         WHERE state IN ('submitted', 'working')
           AND (lease_expires_at IS NULL OR lease_expires_at < now())
    $$;
REVOKE ALL ON FUNCTION a2a_queue_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION a2a_queue_stats() TO agentplane_app;
