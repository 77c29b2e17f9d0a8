//! Test plugin: commands that misbehave in every way the sandbox must contain.

use slashd_plugin_api::host::{kv, log};
use slashd_plugin_api::{
    export_plugin, Capability, Command, Invocation, Manifest, Plugin, PluginError, Reply,
};

struct Hostile;

impl Plugin for Hostile {
    fn manifest() -> Manifest {
        Manifest::new("hostile", "0.1.0")
            .command(Command::new("spin", "Loop forever"))
            .command(Command::new("spin-host", "Call the host forever"))
            .command(Command::new("membomb", "Allocate until refused"))
            .command(Command::new("bigreply", "Reply with MiB of text").usage("/bigreply MIB"))
            .command(Command::new("panic", "Panic"))
            .command(Command::new("recurse", "Recurse until the stack overflows"))
            .command(Command::new("steal", "Read a kv key").usage("/steal KEY"))
            .command(Command::new("hugekv", "Store a huge kv value"))
            .capability(Capability::Kv)
    }

    fn invoke(call: Invocation) -> Result<Reply, PluginError> {
        match call.command.as_str() {
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "spin-host" => loop {
                log::debug("spinning in a host call");
            },
            "membomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "bigreply" => {
                let mib: usize = call
                    .args
                    .first()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(100);
                Ok(Reply::plain("x".repeat(mib << 20)))
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "recurse" => Ok(Reply::plain(format!(
                "{}",
                recurse(std::hint::black_box(1))
            ))),
            "steal" => {
                let key = call.args.first().cloned().unwrap_or_default();
                Ok(Reply::plain(
                    match kv::get(&key).map_err(PluginError::Failed)? {
                        Some(v) => format!("stole: {}", String::from_utf8_lossy(&v)),
                        None => "none".into(),
                    },
                ))
            }
            "hugekv" => match kv::set("huge", &vec![7u8; 8 << 20]) {
                Ok(()) => Ok(Reply::plain("stored 8 MiB")),
                Err(e) => Ok(Reply::plain(format!("refused: {e}"))),
            },
            other => Err(PluginError::Failed(format!("unexpected command {other}"))),
        }
    }
}

#[inline(never)]
#[allow(unconditional_recursion)] // overflowing the stack is the point
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    recurse(depth + 1) + frame[3]
}

export_plugin!(Hostile);
slashd_plugin_api::export_native_plugin!(Hostile);
