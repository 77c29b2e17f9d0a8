//! Where the host helpers go: WIT imports in a wasm component, the host's callback table
//! in a native plugin.

#[cfg(target_family = "wasm")]
mod wasi_http;
#[cfg(target_family = "wasm")]
mod wasm;
#[cfg(target_family = "wasm")]
pub use wasm::*;

#[cfg(not(target_family = "wasm"))]
mod native;
#[cfg(not(target_family = "wasm"))]
pub use native::*;
