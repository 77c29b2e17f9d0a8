//! Host bindings of the WIT world `slashd:plugin@0.1.0`. Generated types stay inside
//! `plugins/`; the rest of the server sees only the plain types of `manifest.rs` and
//! `capabilities.rs`.

wasmtime::component::bindgen!({
    path: "../plugin-api/wit/since_v0.1.0",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::slashd::plugin::types;
