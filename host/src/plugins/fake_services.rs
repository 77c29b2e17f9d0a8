//! In-memory stand-ins for the server's services: what `slashd plugin check`, `plugin run`
//! and the `testkit` harness run a plugin against, with no database or hub behind them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::host_services::{CallContext, HostServices, ServerStats, SessionDetail, SessionSummary};
use super::jobs::ProgressUpdate;

/// In-memory stand-ins for the server's services.
#[derive(Default)]
pub struct FakeServices {
    kv: Mutex<HashMap<String, Vec<u8>>>,
    /// Where the kv is kept between runs (`plugin run --kv-dir`), if anywhere.
    kv_file: Option<PathBuf>,
    /// Print progress reports to stderr (`plugin run`).
    echo_progress: bool,
    ended: Mutex<bool>,
}

/// One kv value in the `--kv-dir` file: text when it is UTF-8, else hex.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredValue {
    Text(String),
    Hex(String),
}

impl FakeServices {
    pub const SESSION_ID: &'static str = "00000000-0000-7000-8000-000000000001";
    /// The file in a `--kv-dir` that holds the plugin's kv.
    pub const KV_FILE: &'static str = "kv.json";

    /// Services whose kv lives in `dir/kv.json` (created on the first write), and whose
    /// progress reports go to stderr: a plugin author's runs see the kv of the last one.
    pub fn persistent(dir: Option<&Path>) -> Result<FakeServices, String> {
        let mut services = FakeServices {
            echo_progress: true,
            ..FakeServices::default()
        };
        let Some(dir) = dir else {
            return Ok(services);
        };
        let file = dir.join(Self::KV_FILE);
        match std::fs::read(&file) {
            Ok(bytes) => {
                let stored: BTreeMap<String, StoredValue> = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{} is not a kv file: {e}", file.display()))?;
                let mut kv = HashMap::new();
                for (key, value) in stored {
                    let bytes = match value {
                        StoredValue::Text(text) => text.into_bytes(),
                        StoredValue::Hex(hex) => hex::decode(hex)
                            .map_err(|e| format!("{}: key {key:?}: {e}", file.display()))?,
                    };
                    kv.insert(key, bytes);
                }
                services.kv = Mutex::new(kv);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        }
        services.kv_file = Some(file);
        Ok(services)
    }

    /// Write the kv back to its file, if it has one.
    fn save(&self, kv: &HashMap<String, Vec<u8>>) -> Result<(), String> {
        let Some(file) = &self.kv_file else {
            return Ok(());
        };
        let stored: BTreeMap<&str, StoredValue> = kv
            .iter()
            .map(|(k, v)| {
                let value = match std::str::from_utf8(v) {
                    Ok(text) => StoredValue::Text(text.to_string()),
                    Err(_) => StoredValue::Hex(hex::encode(v)),
                };
                (k.as_str(), value)
            })
            .collect();
        let text = serde_json::to_vec_pretty(&stored).map_err(|e| e.to_string())?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, file))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))
    }

    fn kv(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.kv.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl HostServices for FakeServices {
    async fn stats(&self) -> Result<ServerStats, String> {
        Ok(ServerStats {
            uptime_secs: 60,
            connections: 1,
            users_online: 1,
            sessions_active: 1,
            sessions_total: 1,
            messages_total: 1,
            messages_last_24h: 1,
        })
    }

    async fn current_session(&self, ctx: &CallContext) -> Result<SessionDetail, String> {
        let ended = *self.ended.lock().unwrap_or_else(|p| p.into_inner());
        Ok(SessionDetail {
            id: ctx.session_id.clone(),
            title: ctx.session_title.clone(),
            status: if ended { "ended" } else { "active" }.into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            owner_id: ctx.user_id.clone(),
            message_count: 1,
            participants: vec![ctx.user_id.clone()],
        })
    }

    async fn my_sessions(
        &self,
        ctx: &CallContext,
        _limit: u32,
    ) -> Result<Vec<SessionSummary>, String> {
        Ok(vec![SessionSummary {
            id: ctx.session_id.clone(),
            title: ctx.session_title.clone(),
            status: "active".into(),
            last_activity_at: "2026-01-01T00:00:00Z".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        }])
    }

    async fn end_current_session(&self, _ctx: &CallContext) -> Result<(), String> {
        *self.ended.lock().unwrap_or_else(|p| p.into_inner()) = true;
        Ok(())
    }

    async fn kv_get(&self, _plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.kv().get(key).cloned())
    }

    async fn kv_set(
        &self,
        _plugin: &str,
        key: &str,
        value: &[u8],
        max_keys: i64,
    ) -> Result<(), String> {
        let mut kv = self.kv();
        if !kv.contains_key(key) && kv.len() as i64 >= max_keys {
            return Err(format!(
                "kv quota reached: a plugin may keep at most {max_keys} keys"
            ));
        }
        kv.insert(key.to_string(), value.to_vec());
        self.save(&kv)
    }

    async fn kv_delete(&self, _plugin: &str, key: &str) -> Result<(), String> {
        let mut kv = self.kv();
        kv.remove(key);
        self.save(&kv)
    }

    async fn kv_list(&self, _plugin: &str, prefix: &str) -> Result<Vec<String>, String> {
        let mut keys: Vec<String> = self
            .kv()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn progress(&self, _ctx: &CallContext, command: &str, update: &ProgressUpdate) {
        if self.echo_progress {
            let done = update
                .fraction
                .map(|f| format!(" ({:.0}%)", f * 100.0))
                .unwrap_or_default();
            let text = crate::log_text::escape(&update.text);
            eprintln!("progress /{command}: {text}{done}");
        }
    }

    fn http_request(&self, _plugin: &str, _outcome: &str, _bytes: u64) {}
}

impl FakeServices {
    pub fn kv_value(&self, key: &str) -> Option<Vec<u8>> {
        self.kv().get(key).cloned()
    }

    pub fn seed_kv(&self, key: &str, value: &[u8]) {
        self.kv().insert(key.to_string(), value.to_vec());
    }

    /// Whether the plugin ended the (fake) session.
    pub fn session_ended(&self) -> bool {
        *self.ended.lock().unwrap_or_else(|p| p.into_inner())
    }
}
