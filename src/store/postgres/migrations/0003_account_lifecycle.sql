-- Account lifecycle (SPEC §12): proven addresses and the single-use tokens
-- mailed for verification, password reset and email change (stored as the
-- token's SHA-256 only).
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

CREATE TABLE account_tokens (
    hash        text COLLATE "C" PRIMARY KEY,
    purpose     text NOT NULL,
    user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       text NOT NULL,
    other_email text,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX account_tokens_by_user ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_by_expiry ON account_tokens (expires_at);

-- A mailed token waits in the outbox sealed under the server key.
ALTER TABLE outbox ADD COLUMN sealed_token text;

-- The tamper-evident chain: one per instance; events written before it
-- have NULLs here.
ALTER TABLE events ADD COLUMN chain text COLLATE "C";
ALTER TABLE events ADD COLUMN seq bigint;
ALTER TABLE events ADD COLUMN prev_hash text;
ALTER TABLE events ADD COLUMN hash text;
CREATE UNIQUE INDEX events_by_chain ON events (chain, seq) WHERE chain IS NOT NULL;
