//! The shared state in Redis (`state.backend = "redis"`, SPEC §10), so
//! every instance behind a load balancer sees one set of revocations,
//! login counters, locks, rate-limit buckets and ledger versions.
//!
//! Keys (each under `state.redis_prefix`, "fortfolio:" by default), as the
//! seed lays them out:
//! - `revoked_token:<sha256>` — present until the token expires (`PXAT`);
//! - `failed_login:<key>` — a sorted set of failure times (ms) in the window;
//! - `account_locked:<key>` — the lock's end (ms), expiring with it;
//! - `login_in_flight:<key>` — attempts being checked now;
//! - `user_logins:<user id>` — the throttle keys recorded for a user;
//! - `rate:<group>:<key>` — a GCRA arrival time (µs);
//! - `ledger:<user id>` and `ledger_clock` — ledger versions.
//!
//! Every check-and-update is one Lua script, so it is atomic on the server.
//! Times come from the caller (instances keep their clocks in sync with
//! NTP, as any cluster must). A single Redis server (or a Sentinel-managed
//! primary) is assumed: the scripts build some key names themselves, which
//! Redis Cluster does not allow.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::Script;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use super::ThrottleState;
use super::{Decision, LedgerVersions, RateLimitState, Refusal, RevocationState, State, StateError, StateResult};
use crate::config::Rate;
use crate::store::{FailureStatus, LockoutPolicy};

/// How long a reservation outlives an instance that died holding it.
const IN_FLIGHT_TTL_MS: i64 = 60_000;

/// A command that takes longer than this counts as Redis being unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

const RESERVE: &str = r"
local now, window, threshold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local locked = tonumber(redis.call('GET', KEYS[2]) or '0')
if locked > now then return {1, locked} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local failures = redis.call('ZCARD', KEYS[1])
local pending = tonumber(redis.call('GET', KEYS[3]) or '0')
if failures + pending >= threshold then return {2, 0} end
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {0, 0}
";

/// Frees one reservation of KEYS[1] (shared by the scripts below).
const RELEASE_FN: &str = r"
local function release(k)
  local p = tonumber(redis.call('GET', k) or '0')
  if p > 1 then redis.call('DECR', k) else redis.call('DEL', k) end
end
";

const FAIL: &str = r"
release(KEYS[3])
local now, window, threshold, duration = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[6] ~= '' then
  redis.call('SADD', KEYS[4], ARGV[7])
  redis.call('PEXPIRE', KEYS[4], window + duration)
end
local locked = tonumber(redis.call('GET', KEYS[2]) or '0')
if locked > now then return {locked, 0, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[5])
local n = redis.call('ZCARD', KEYS[1])
if n > threshold then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - threshold - 1)
  n = threshold
end
redis.call('PEXPIRE', KEYS[1], window)
if n >= threshold then
  -- The lock holds the state now; when it ends, counting starts afresh.
  redis.call('SET', KEYS[2], now + duration, 'PX', duration)
  redis.call('DEL', KEYS[1])
  return {now + duration, 1, 0}
end
return {0, 0, threshold - n}
";

const SUCCEED: &str = r"
release(KEYS[3])
local locked = tonumber(redis.call('GET', KEYS[2]) or '0')
if locked > tonumber(ARGV[1]) then return locked end
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
return 0
";

const RELEASE: &str = "release(KEYS[1]) return 0";

/// ARGV: prefix, user id, account key. Returns the keys that held something.
const CLEAR_USER: &str = r"
local prefix = ARGV[1]
local keys = redis.call('SMEMBERS', prefix .. 'user_logins:' .. ARGV[2])
table.insert(keys, 1, ARGV[3])
local cleared, seen = {}, {}
for _, k in ipairs(keys) do
  if not seen[k] then
    seen[k] = true
    local n = redis.call('DEL', prefix .. 'failed_login:' .. k, prefix .. 'account_locked:' .. k)
    if n > 0 then table.insert(cleared, k) end
  end
end
redis.call('DEL', prefix .. 'user_logins:' .. ARGV[2])
return cleared
";

/// GCRA, the integer arithmetic of [`super::gcra`] (µs fit a Lua double
/// exactly until the year 2255). Returns allowed, remaining, reset, retry.
const GCRA: &str = r"
local now, count, per = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local interval = math.max(math.floor(per / count), 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(tat, now)
local new_tat = start + interval
local allow_at = new_tat - per
local function ceil_secs(us) return math.ceil(us / 1000000) end
if now < allow_at then
  return {0, 0, ceil_secs(start - now), math.max(ceil_secs(allow_at - now), 1)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
local remaining = math.min(math.floor((now - allow_at) / interval), count - 1)
return {1, remaining, ceil_secs(new_tat - now), 0}
";

/// A new version past every one handed out, and at least the time in µs,
/// so versions keep rising even if Redis restarts empty.
const BUMP_LEDGER: &str = r"
local v = redis.call('INCR', KEYS[1])
if v < tonumber(ARGV[1]) then
  v = tonumber(ARGV[1])
  redis.call('SET', KEYS[1], string.format('%.0f', v))
end
redis.call('SET', KEYS[2], string.format('%.0f', v))
return v
";

struct Scripts {
    reserve: Script,
    fail: Script,
    succeed: Script,
    release: Script,
    clear_user: Script,
    gcra: Script,
    bump_ledger: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_release = |body: &str| Script::new(&format!("{RELEASE_FN}{body}"));
        Self {
            reserve: Script::new(RESERVE),
            fail: with_release(FAIL),
            succeed: with_release(SUCCEED),
            release: with_release(RELEASE),
            clear_user: Script::new(CLEAR_USER),
            gcra: Script::new(GCRA),
            bump_ledger: Script::new(BUMP_LEDGER),
        }
    }
}

pub struct RedisState {
    conn: ConnectionManager,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
}

impl RedisState {
    /// A client of `url` (`redis://`, or `rediss://` for TLS) with keys
    /// under `prefix`. It connects on first use and reconnects by itself
    /// after a loss, so an instance can start while Redis is down.
    pub fn new(url: &str, prefix: &str) -> StateResult<Self> {
        let client =
            ::redis::Client::open(url).map_err(|e| StateError::Backend(format!("state.redis_url: {e}").into()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(unreachable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            scripts: std::sync::Arc::new(Scripts::new()),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// Answers when Redis does (for `/ready`).
    pub async fn ping(&self) -> StateResult<()> {
        let mut conn = self.conn.clone();
        ::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(unreachable)
            .map(drop)
    }

    fn throttle_keys(&self, key: &str) -> [String; 3] {
        [
            self.key("failed_login", key),
            self.key("account_locked", key),
            self.key("login_in_flight", key),
        ]
    }
}

/// Redis errors in the state's terms: a lost connection is an outage.
fn unreachable(e: ::redis::RedisError) -> StateError {
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        StateError::Unavailable(e.into())
    } else {
        StateError::Backend(e.into())
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> StateResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StateError::Backend(format!("{ms} ms is no time").into()))
}

#[async_trait]
impl RevocationState for RedisState {
    async fn revoke(&self, token_hash: &str, expires_at: DateTime<Utc>) -> StateResult<()> {
        if expires_at <= Utc::now() {
            return Ok(()); // an expired token needs no revocation
        }
        let mut conn = self.conn.clone();
        ::redis::cmd("SET")
            .arg(self.key("revoked_token", token_hash))
            .arg(1)
            .arg("PXAT")
            .arg(millis(expires_at))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unreachable)
    }

    async fn is_revoked(&self, token_hash: &str, _now: DateTime<Utc>) -> StateResult<bool> {
        let mut conn = self.conn.clone();
        ::redis::cmd("EXISTS")
            .arg(self.key("revoked_token", token_hash))
            .query_async::<bool>(&mut conn)
            .await
            .map_err(unreachable)
    }
}

fn ms(d: chrono::Duration) -> i64 {
    d.num_milliseconds().max(1)
}

#[async_trait]
impl ThrottleState for RedisState {
    async fn reserve(&self, key: &str, now: DateTime<Utc>, policy: LockoutPolicy) -> StateResult<Result<(), Refusal>> {
        let [failed, locked, in_flight] = self.throttle_keys(key);
        let mut conn = self.conn.clone();
        let (code, until): (i64, i64) = self
            .scripts
            .reserve
            .key(failed)
            .key(locked)
            .key(in_flight)
            .arg(millis(now))
            .arg(ms(policy.window))
            .arg(policy.threshold.max(1))
            .arg(IN_FLIGHT_TTL_MS)
            .invoke_async(&mut conn)
            .await
            .map_err(unreachable)?;
        Ok(match code {
            0 => Ok(()),
            1 => Err(Refusal::Locked(from_millis(until)?)),
            _ => Err(Refusal::Saturated),
        })
    }

    async fn fail(
        &self,
        key: &str,
        user_id: Option<String>,
        _ip: &str,
        now: DateTime<Utc>,
        policy: LockoutPolicy,
    ) -> StateResult<FailureStatus> {
        let [failed, locked, in_flight] = self.throttle_keys(key);
        let user = user_id.unwrap_or_default();
        let mut conn = self.conn.clone();
        let (until, newly, remaining): (i64, i64, i64) = self
            .scripts
            .fail
            .key(failed)
            .key(locked)
            .key(in_flight)
            .key(self.key("user_logins", &user))
            .arg(millis(now))
            .arg(ms(policy.window))
            .arg(policy.threshold.max(1))
            .arg(ms(policy.duration))
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .arg(&user)
            .arg(key)
            .invoke_async(&mut conn)
            .await
            .map_err(unreachable)?;
        Ok(FailureStatus {
            locked_until: if until > 0 { Some(from_millis(until)?) } else { None },
            newly_locked: newly == 1,
            attempts_remaining: u32::try_from(remaining).unwrap_or(0),
        })
    }

    async fn succeed(
        &self,
        key: &str,
        now: DateTime<Utc>,
        forget_failures: bool,
    ) -> StateResult<Result<(), DateTime<Utc>>> {
        let [failed, locked, in_flight] = self.throttle_keys(key);
        let mut conn = self.conn.clone();
        let until: i64 = self
            .scripts
            .succeed
            .key(failed)
            .key(locked)
            .key(in_flight)
            .arg(millis(now))
            .arg(if forget_failures { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await
            .map_err(unreachable)?;
        Ok(if until > 0 { Err(from_millis(until)?) } else { Ok(()) })
    }

    fn release(&self, key: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime left: the reservation expires by itself
        };
        let mut conn = self.conn.clone();
        let scripts = self.scripts.clone();
        let in_flight = self.key("login_in_flight", key);
        runtime.spawn(async move {
            let freed: Result<i64, _> = scripts.release.key(in_flight).invoke_async(&mut conn).await;
            if let Err(e) = freed {
                tracing::warn!(error = %e, "could not free a login reservation; it expires by itself");
            }
        });
    }

    async fn locked_until(&self, key: &str, now: DateTime<Utc>) -> StateResult<Option<DateTime<Utc>>> {
        let mut conn = self.conn.clone();
        let until: Option<i64> = ::redis::cmd("GET")
            .arg(self.key("account_locked", key))
            .query_async(&mut conn)
            .await
            .map_err(unreachable)?;
        match until {
            Some(ms) if ms > millis(now) => Ok(Some(from_millis(ms)?)),
            _ => Ok(None),
        }
    }

    async fn clear_user(&self, user_id: &str, account_key: &str) -> StateResult<Vec<String>> {
        let mut conn = self.conn.clone();
        self.scripts
            .clear_user
            .arg(&self.prefix)
            .arg(user_id)
            .arg(account_key)
            .invoke_async(&mut conn)
            .await
            .map_err(unreachable)
    }
}

#[async_trait]
impl RateLimitState for RedisState {
    async fn check(&self, group: &str, key: &str, rate: Rate, now_us: u64) -> StateResult<Decision> {
        let count = rate.count.max(1);
        let per = u64::try_from(rate.per.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        let (allowed, remaining, reset, retry): (i64, i64, i64, i64) = self
            .scripts
            .gcra
            .key(format!("{}rate:{group}:{key}", self.prefix))
            .arg(now_us)
            .arg(count)
            .arg(per)
            .invoke_async(&mut conn)
            .await
            .map_err(unreachable)?;
        Ok(Decision {
            allowed: allowed == 1,
            limit: count,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_secs: u64::try_from(reset).unwrap_or(0),
            retry_after_secs: u64::try_from(retry).unwrap_or(0),
        })
    }
}

#[async_trait]
impl LedgerVersions for RedisState {
    async fn ledger_version(&self, user_id: &str) -> StateResult<u64> {
        let mut conn = self.conn.clone();
        let v: Option<u64> = ::redis::cmd("GET")
            .arg(self.key("ledger", user_id))
            .query_async(&mut conn)
            .await
            .map_err(unreachable)?;
        Ok(v.unwrap_or(0))
    }

    async fn bump_ledger(&self, user_id: &str) -> StateResult<u64> {
        let mut conn = self.conn.clone();
        self.scripts
            .bump_ledger
            .key(format!("{}ledger_clock", self.prefix))
            .key(self.key("ledger", user_id))
            .arg(super::now_us())
            .invoke_async(&mut conn)
            .await
            .map_err(unreachable)
    }
}

#[async_trait]
impl State for RedisState {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn health(&self) -> super::StateHealth {
        match self.ping().await {
            Ok(()) => super::StateHealth::Ok,
            Err(e) => super::StateHealth::Degraded(e.to_string()),
        }
    }
}

#[cfg(test)]
impl RedisState {
    /// Deletes every key under this prefix (tests share one server).
    pub(crate) async fn delete_all_keys(&self) -> StateResult<()> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(unreachable)?;
        if !keys.is_empty() {
            ::redis::cmd("DEL")
                .arg(keys)
                .query_async::<()>(&mut conn)
                .await
                .map_err(unreachable)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_state_meets_every_contract() {
        let Some(url) =
            crate::test_support::service_url("FORTFOLIO_TEST_REDIS_URL", "redis_state_meets_every_contract")
        else {
            return;
        };
        let prefix = format!("fortfolio-test-{}:", uuid::Uuid::new_v4().simple());
        let state = std::sync::Arc::new(RedisState::new(&url, &prefix).unwrap());
        super::super::contract::run_all(state.clone()).await;
        state.delete_all_keys().await.unwrap();
    }
}
