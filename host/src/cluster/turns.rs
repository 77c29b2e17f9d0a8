//! The assistant's turn per session across nodes (`assistant::ReplyTurns`): a key holding the
//! token of the reply in flight, and a note beside it that another answer is due. Claiming
//! and finishing are one script each, so a message that arrives anywhere while a reply is in
//! flight is answered: either its claim finds the turn taken and leaves the note before the
//! holder finishes (the holder answers once more), or it finds the turn free and takes it.
//!
//! Redis unreachable: `None`, and the assistant keeps the rule per node until it is back.

use std::time::Duration;

use super::Cluster;
use crate::assistant::ReplyTurns;

/// KEYS: the turn, the note. ARGV: token, ttl (ms). 1 taken, 0 held elsewhere (noted).
const CLAIM: &str = "\
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 0";

/// KEYS: the turn, the note. ARGV: token, ttl (ms). 1 go again (renewed; taken back when it
/// had lapsed with a note waiting and nobody holds it), 0 done (released, or another holds it).
const NEXT: &str = "\
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] then
  if holder then return 0 end
  if redis.call('DEL', KEYS[2]) == 1 then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
  end
  return 0
end
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1])
return 0";

/// KEYS: the turn, the note. ARGV: token, ttl (ms). Renew the turn if it is this token's.
const RENEW: &str = "\
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0";

/// KEYS: the turn, the note. ARGV: token. Give the turn up if it is this token's.
const RELEASE: &str = "\
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0";

/// Longest a turn's step waits for Redis before the assistant goes on without it.
const TURN_WAIT: Duration = Duration::from_millis(500);

impl Cluster {
    async fn turn_script(
        &self,
        script: &str,
        session_id: &str,
        token: &str,
        ttl: Duration,
    ) -> Option<bool> {
        if !self.healthy() {
            return None;
        }
        let mut conn = self.presence.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let script = redis::cmd("EVAL")
            .arg(script)
            .arg(2)
            .arg(format!("{}:assistant-turn:{session_id}", self.namespace))
            .arg(format!("{}:assistant-again:{session_id}", self.namespace))
            .arg(token)
            .arg(ttl_ms)
            .to_owned();
        match tokio::time::timeout(TURN_WAIT, script.query_async::<i64>(&mut conn)).await {
            Ok(Ok(n)) => {
                self.answered();
                Some(n == 1)
            }
            Ok(Err(e)) => {
                self.unhealthy(&e);
                None
            }
            Err(_) => None,
        }
    }
}

#[async_trait::async_trait]
impl ReplyTurns for Cluster {
    async fn claim(&self, session_id: &str, token: &str, ttl: Duration) -> Option<bool> {
        self.turn_script(CLAIM, session_id, token, ttl).await
    }

    async fn next(&self, session_id: &str, token: &str, ttl: Duration) -> Option<bool> {
        self.turn_script(NEXT, session_id, token, ttl).await
    }

    async fn renew(&self, session_id: &str, token: &str, ttl: Duration) {
        let _ = self.turn_script(RENEW, session_id, token, ttl).await;
    }

    async fn release(&self, session_id: &str, token: &str) {
        let _ = self
            .turn_script(RELEASE, session_id, token, Duration::from_millis(1))
            .await;
    }
}
