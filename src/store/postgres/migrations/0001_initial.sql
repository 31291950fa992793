-- fortfolio schema, version 1. Money is NUMERIC (exact, as the ledger
-- computes it), times are timestamptz (microseconds, UTC). Ids that lists
-- page by (UUIDv7 text, sorting by time) use the "C" collation so that
-- text order is byte order.

CREATE TABLE users (
    id                  text COLLATE "C" PRIMARY KEY,
    email               text NOT NULL,
    email_key           text NOT NULL UNIQUE,
    full_name           text,
    role                text NOT NULL CHECK (role IN ('user', 'admin')),
    password_hash       text NOT NULL,
    disabled            boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL,
    last_login_at       timestamptz,
    password_changed_at timestamptz NOT NULL,
    two_factor_enabled  boolean NOT NULL DEFAULT false,
    -- TOTP state: present while a secret is pending or enabled.
    totp_sealed_secret  text,
    totp_enabled        boolean NOT NULL DEFAULT false,
    totp_last_step      bigint,
    backup_codes        text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE sessions (
    id           text COLLATE "C" PRIMARY KEY,
    user_id      text COLLATE "C" NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    ip           text NOT NULL,
    user_agent   text NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at DESC);

-- Refresh tokens by SHA-256; rotated ones stay until expiry (reuse detection).
CREATE TABLE refresh_tokens (
    token_hash text PRIMARY KEY,
    session_id text COLLATE "C" NOT NULL REFERENCES sessions (id),
    user_id    text COLLATE "C" NOT NULL,
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz
);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

CREATE TABLE revoked_tokens (
    token_hash text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE TABLE lockouts (
    key          text PRIMARY KEY,
    user_id      text COLLATE "C",
    failures     timestamptz[] NOT NULL DEFAULT '{}',
    ips          text[] NOT NULL DEFAULT '{}',
    locked_until timestamptz
);
CREATE INDEX lockouts_by_user ON lockouts (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE spent_challenges (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE TABLE events (
    id         text COLLATE "C" PRIMARY KEY,
    at         timestamptz NOT NULL,
    event      text NOT NULL,
    outcome    text NOT NULL,
    user_id    text COLLATE "C",
    email      text,
    ip         text,
    user_agent text,
    request_id text,
    details    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_user ON events (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX events_by_time ON events (at);

CREATE TABLE outbox (
    id              text COLLATE "C" PRIMARY KEY,
    to_address      text NOT NULL,
    subject         text NOT NULL,
    text_body       text NOT NULL,
    html_body       text NOT NULL,
    event_id        text NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id);

CREATE TABLE devices (
    user_id    text COLLATE "C" NOT NULL,
    id         text NOT NULL,
    user_agent text NOT NULL,
    ip_network text NOT NULL,
    last_ip    text NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    token_jtis text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (user_id, id)
);

CREATE TABLE positions (
    user_id          text COLLATE "C" NOT NULL,
    symbol           text COLLATE "C" NOT NULL,
    quantity         numeric NOT NULL,
    cost_basis       numeric NOT NULL,
    realized_pnl     numeric NOT NULL,
    last_trade_price numeric NOT NULL,
    PRIMARY KEY (user_id, symbol)
);

CREATE TABLE transactions (
    user_id      text COLLATE "C" NOT NULL,
    id           text COLLATE "C" NOT NULL,
    side         text NOT NULL CHECK (side IN ('buy', 'sell')),
    symbol       text NOT NULL,
    quantity     numeric NOT NULL,
    price        numeric NOT NULL,
    fee          numeric NOT NULL,
    total        numeric NOT NULL,
    realized_pnl numeric NOT NULL,
    executed_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);

-- One answer per (user, Idempotency-Key): the primary key is what makes a
-- concurrent duplicate wait for the first and then replay it.
CREATE TABLE idempotency (
    user_id     text COLLATE "C" NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    receipt     jsonb,
    stored_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_by_age ON idempotency (stored_at);

CREATE TABLE price_series (
    symbol   text COLLATE "C" PRIMARY KEY,
    name     text NOT NULL,
    currency text NOT NULL,
    source   text NOT NULL
);

CREATE TABLE candles (
    symbol text COLLATE "C" NOT NULL REFERENCES price_series (symbol) ON DELETE CASCADE,
    day    date NOT NULL,
    open   numeric NOT NULL,
    high   numeric NOT NULL,
    low    numeric NOT NULL,
    close  numeric NOT NULL,
    volume numeric NOT NULL,
    PRIMARY KEY (symbol, day)
);

CREATE TABLE news (
    id              text COLLATE "C" PRIMARY KEY,
    title           text NOT NULL,
    summary         text NOT NULL,
    url             text NOT NULL,
    source          text NOT NULL,
    published_at    timestamptz NOT NULL,
    symbols         text[] NOT NULL DEFAULT '{}',
    sentiment_score double precision NOT NULL,
    sentiment_label text NOT NULL
);
CREATE INDEX news_by_time ON news (published_at DESC, id DESC);
CREATE INDEX news_by_symbol ON news USING gin (symbols);

CREATE TABLE flags (
    name text PRIMARY KEY
);

-- Background work that one instance at a time may do (outbox delivery is
-- claimed per message; these are whole jobs: retention purge, news fetch).
CREATE TABLE job_leases (
    job         text PRIMARY KEY,
    holder      text NOT NULL,
    leased_until timestamptz NOT NULL
);
