-- W3C trace context of the request that wrote the row: the relay sends it
-- as the message's traceparent header, the worker logs it.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS
    traceparent CHAR(55) CHARACTER SET ascii NULL AFTER payload;
