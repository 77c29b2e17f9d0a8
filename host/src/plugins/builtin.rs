//! The built-in plugins: wasm components built from `plugins/` by `build.rs` and embedded
//! in the binary, each with the grants it needs by default.

use super::manifest::Capability;

pub struct BuiltIn {
    pub name: &'static str,
    pub wasm: &'static [u8],
    pub grants: &'static [Capability],
}

macro_rules! wasm {
    ($name:literal) => {
        include_bytes!(concat!(env!("BUILT_PLUGIN_WASM_DIR"), "/", $name, ".wasm"))
    };
}

pub const BUILTINS: &[BuiltIn] = &[
    BuiltIn {
        name: "help",
        wasm: wasm!("help"),
        grants: &[Capability::Commands],
    },
    BuiltIn {
        name: "status",
        wasm: wasm!("status"),
        grants: &[Capability::Sessions],
    },
    BuiltIn {
        name: "sessions",
        wasm: wasm!("sessions"),
        grants: &[Capability::Sessions],
    },
    BuiltIn {
        name: "logs",
        wasm: wasm!("logs"),
        grants: &[Capability::Stats, Capability::Kv],
    },
    BuiltIn {
        name: "jobs",
        wasm: wasm!("jobs"),
        grants: &[Capability::Jobs],
    },
];

pub fn find(name: &str) -> Option<&'static BuiltIn> {
    BUILTINS.iter().find(|b| b.name == name)
}
