-- The streamed replay id of a stored webhook body as text (`source.replay_id`), NULL when the
-- body is not JSON or has none: a Pub/Sub replay id is base64 text with no order, and a
-- resend after one selects the events stored after the last body carrying it.
CREATE FUNCTION sftriggerd_replay_text(body bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN convert_from(body, 'UTF8')::jsonb -> 'source' ->> 'replay_id';
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
