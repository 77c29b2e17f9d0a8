//! Test plugin (API 0.2.0): reaches the world — HTTP, secrets, progress — and misbehaves
//! with what it holds, so the tests can check what the host lets out.

use slashd_plugin_api::host::{http, kv, log, progress, secrets};
use slashd_plugin_api::{
    export_plugin, Capability, Command, Invocation, Manifest, Plugin, PluginError, Reply,
};

struct Reach;

impl Plugin for Reach {
    fn manifest() -> Manifest {
        Manifest::new("reach", "0.2.0")
            .command(Command::new("reach-get", "GET a URL").usage("/reach-get URL"))
            .command(Command::new("reach-post", "POST JSON to a URL").usage("/reach-post URL JSON"))
            .command(Command::new("reach-many", "GET a URL N times").usage("/reach-many URL N"))
            .command(
                Command::new("reach-secret", "Misuse a secret")
                    .usage("/reach-secret NAME (reply|len|log|fail|panic|usage|data)"),
            )
            .command(
                Command::new("reach-progress", "Report progress")
                    .usage("/reach-progress STEPS MILLIS"),
            )
            .command(Command::new("reach-spin", "Spin until stopped"))
            .command(Command::new(
                "reach-kv",
                "Use kv, which the manifest does not ask for",
            ))
            .capability(Capability::Http)
            .capability(Capability::Secrets)
            .capability(Capability::Progress)
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        let arg = |i: usize| {
            call.args
                .get(i)
                .cloned()
                .ok_or_else(|| PluginError::Usage("missing argument".into()))
        };
        match call.command.as_str() {
            "reach-get" => {
                let response = http::get(&arg(0)?)?;
                if !response.is_success() {
                    return Err(PluginError::Failed(format!("status {}", response.status)));
                }
                Ok(Reply::plain(format!(
                    "status {}: {}",
                    response.status,
                    response.text().chars().take(200).collect::<String>()
                )))
            }
            "reach-post" => {
                let body: serde_json::Value = serde_json::from_str(&arg(1)?)
                    .map_err(|e| PluginError::Usage(format!("bad JSON: {e}")))?;
                let response = http::post_json(&arg(0)?, &body)?;
                Ok(Reply::plain(format!(
                    "status {}: {}",
                    response.status,
                    response.text()
                )))
            }
            "reach-many" => {
                let n: u32 = arg(1)?
                    .parse()
                    .map_err(|_| PluginError::Usage("N".into()))?;
                for i in 0..n {
                    http::get(&arg(0)?).map_err(|e| {
                        PluginError::Failed(format!("request {} failed: {e}", i + 1))
                    })?;
                }
                Ok(Reply::plain(format!("{n} requests")))
            }
            "reach-secret" => {
                let name = arg(0)?;
                let value = secrets::get(&name)
                    .map_err(PluginError::Failed)?
                    .ok_or_else(|| PluginError::Failed(format!("no secret {name}")))?;
                match arg(1)?.as_str() {
                    "reply" => Ok(Reply::plain(format!("the secret is {value}"))),
                    "len" => Ok(Reply::plain(format!("a secret of {} bytes", value.len()))),
                    "data" => Ok(Reply::plain("see data")
                        .with_data(serde_json::json!({ "secret": value, value.clone(): 1 }))),
                    "log" => {
                        log::warn(&format!("logging the secret {value}"));
                        println!("printing the secret {value}");
                        eprintln!("eprinting the secret {value}");
                        Ok(Reply::plain("logged"))
                    }
                    "fail" => Err(PluginError::Failed(format!("failed holding {value}"))),
                    "usage" => Err(PluginError::Usage(format!("usage holding {value}"))),
                    "panic" => panic!("panicked holding {value}"),
                    other => Err(PluginError::Usage(format!("unknown mode {other}"))),
                }
            }
            "reach-progress" => {
                let steps: u32 = arg(0)?
                    .parse()
                    .map_err(|_| PluginError::Usage("STEPS".into()))?;
                let ms: u64 = arg(1)?
                    .parse()
                    .map_err(|_| PluginError::Usage("MILLIS".into()))?;
                for i in 0..steps {
                    if progress::cancelled().map_err(PluginError::Failed)? {
                        return Err(PluginError::Failed("stopped after a cancel".into()));
                    }
                    let fraction = i as f32 / steps.max(1) as f32;
                    progress::report(&format!("step {} of {steps}", i + 1), Some(fraction))
                        .map_err(PluginError::Failed)?;
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                Ok(Reply::plain(format!("{steps} steps done")))
            }
            "reach-spin" => {
                let mut n: u64 = 0;
                loop {
                    n = n.wrapping_add(1);
                    std::hint::black_box(n);
                }
            }
            "reach-kv" => match kv::get("anything") {
                Ok(_) => Ok(Reply::plain("kv answered without a grant")),
                Err(e) => Ok(Reply::plain(format!("kv refused: {e}"))),
            },
            other => Err(PluginError::Failed(format!("unexpected command {other}"))),
        }
    }
}

export_plugin!(Reach);
