//! The slashd plugin SDK.
//!
//! A command plugin implements [`Plugin`] and exports it with [`export_plugin!`]; build it
//! with `cargo build --release --target wasm32-wasip2`. The WIT glue stays behind this API:
//! authors see plain Rust types ([`Manifest`], [`Invocation`], [`Reply`]) and typed helpers
//! for the host's capabilities in [`host`].
//!
//! ```ignore
//! use slashd_plugin_api::{export_plugin, Command, Invocation, Manifest, Plugin, PluginError, Reply};
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn manifest() -> Manifest {
//!         Manifest::new("hello", "0.1.0")
//!             .command(Command::new("hello", "Say hello").usage("/hello [name]"))
//!     }
//!
//!     fn invoke(call: Invocation) -> Result<Reply, PluginError> {
//!         let name = call.args.first().cloned().unwrap_or(call.caller.name);
//!         Ok(Reply::markdown(format!("Hello, **{name}**!")))
//!     }
//! }
//!
//! export_plugin!(Hello);
//! ```

mod backend;
pub mod host;
pub mod native;
mod types;

pub use types::*;

/// The API version this SDK builds plugins against — the one place it is written (the WIT
/// package `wit/since_v…/plugin.wit` carries it too; a test holds the two together). The
/// host reads a component's version from the `slashd:plugin/…@version` interfaces it
/// imports; the custom section [`export_plugin!`] stamps must agree where present.
pub const API_VERSION: &str = "0.2.0";

/// [`API_VERSION`] as the bytes [`export_plugin!`] stamps into the custom section.
#[doc(hidden)]
pub const API_VERSION_BYTES: [u8; API_VERSION.len()] = {
    let text = API_VERSION.as_bytes();
    let mut bytes = [0u8; API_VERSION.len()];
    let mut i = 0;
    while i < text.len() {
        bytes[i] = text[i];
        i += 1;
    }
    bytes
};

/// The custom section that carries [`API_VERSION`] inside a built component.
pub const API_VERSION_SECTION: &str = "slashd-plugin-api";

/// The behaviour of a command plugin.
pub trait Plugin {
    /// Who the plugin is, the commands it offers and the capabilities it needs.
    fn manifest() -> Manifest;

    /// Run one command. A fresh instance runs each call: keep state in [`host::kv`].
    fn invoke(call: Invocation) -> Result<Reply, PluginError>;

    /// Suggest values for an argument declared with [`ArgSpec::completes`]. None by default.
    fn complete(_request: CompletionRequest) -> Vec<Completion> {
        Vec::new()
    }

    /// One of this plugin's buttons was pressed. By default there are none.
    fn on_action(_event: ActionEvent) -> Result<Reply, PluginError> {
        Err(PluginError::Failed("no such action".into()))
    }
}

/// Generated bindings of the WIT world (`wit/since_v0.2.0`, with the `wasi:http` it
/// imports). Not for plugin authors: [`host`] wraps them.
#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "wit/since_v0.2.0",
        world: "plugin",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "::slashd_plugin_api::wit",
    });
}

#[doc(hidden)]
pub mod glue;

/// Export a [`Plugin`] implementation as the component's `manifest`, `invoke`, `complete`
/// and `on-action`, and stamp the component with the API version it was built against.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            struct __SlashdPluginExport;

            impl $crate::wit::Guest for __SlashdPluginExport {
                fn manifest() -> $crate::wit::slashd::plugin::types::Manifest {
                    $crate::glue::manifest::<$plugin>()
                }

                fn invoke(
                    call: $crate::wit::slashd::plugin::types::Invocation,
                ) -> ::core::result::Result<
                    $crate::wit::slashd::plugin::types::Reply,
                    $crate::wit::slashd::plugin::types::PluginError,
                > {
                    $crate::glue::invoke::<$plugin>(call)
                }

                fn complete(
                    request: $crate::wit::slashd::plugin::types::CompletionRequest,
                ) -> ::std::vec::Vec<$crate::wit::slashd::plugin::types::Completion> {
                    $crate::glue::complete::<$plugin>(request)
                }

                fn on_action(
                    event: $crate::wit::slashd::plugin::types::ActionEvent,
                ) -> ::core::result::Result<
                    $crate::wit::slashd::plugin::types::Reply,
                    $crate::wit::slashd::plugin::types::PluginError,
                > {
                    $crate::glue::on_action::<$plugin>(event)
                }
            }

    $crate::wit::__export_world!(__SlashdPluginExport with_types_in $crate::wit);

            #[used]
            #[link_section = "slashd-plugin-api"]
            static __SLASHD_PLUGIN_API_VERSION: [u8; $crate::API_VERSION.len()] =
                $crate::API_VERSION_BYTES;
        };
    };
}

#[cfg(test)]
mod tests {
    /// The WIT world's package and folder name the version [`API_VERSION`] says.
    #[test]
    fn the_wit_package_is_the_api_version() {
        let dir = format!(
            "{}/wit/since_v{}",
            env!("CARGO_MANIFEST_DIR"),
            super::API_VERSION
        );
        let wit = std::fs::read_to_string(format!("{dir}/plugin.wit")).expect("the WIT folder");
        let package = format!("package slashd:plugin@{};", super::API_VERSION);
        assert!(
            wit.contains(&package),
            "{dir}/plugin.wit must declare {package}"
        );
        assert_eq!(super::API_VERSION_BYTES, super::API_VERSION.as_bytes());
    }
}
