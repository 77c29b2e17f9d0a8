//! Test plugin: claims an API version the host does not speak. It uses the generated glue
//! directly instead of `export_plugin!`, so it can stamp its own version section.

use slashd_plugin_api::{Command, Invocation, Manifest, Plugin, PluginError, Reply};

struct OldApi;

impl Plugin for OldApi {
    fn manifest() -> Manifest {
        Manifest::new("oldapi", "0.1.0").command(Command::new("oldapi", "From the future"))
    }

    fn invoke(_call: Invocation) -> Result<Reply, PluginError> {
        Ok(Reply::plain("should never run"))
    }
}

struct Export;

impl slashd_plugin_api::wit::Guest for Export {
    fn manifest() -> slashd_plugin_api::wit::slashd::plugin::types::Manifest {
        slashd_plugin_api::glue::manifest::<OldApi>()
    }

    fn invoke(
        call: slashd_plugin_api::wit::slashd::plugin::types::Invocation,
    ) -> Result<
        slashd_plugin_api::wit::slashd::plugin::types::Reply,
        slashd_plugin_api::wit::slashd::plugin::types::PluginError,
    > {
        slashd_plugin_api::glue::invoke::<OldApi>(call)
    }

    fn complete(
        request: slashd_plugin_api::wit::slashd::plugin::types::CompletionRequest,
    ) -> Vec<slashd_plugin_api::wit::slashd::plugin::types::Completion> {
        slashd_plugin_api::glue::complete::<OldApi>(request)
    }

    fn on_action(
        event: slashd_plugin_api::wit::slashd::plugin::types::ActionEvent,
    ) -> Result<
        slashd_plugin_api::wit::slashd::plugin::types::Reply,
        slashd_plugin_api::wit::slashd::plugin::types::PluginError,
    > {
        slashd_plugin_api::glue::on_action::<OldApi>(event)
    }
}

slashd_plugin_api::wit::__export_world!(Export with_types_in slashd_plugin_api::wit);

#[used]
#[link_section = "slashd-plugin-api"]
static VERSION: [u8; 5] = *b"9.9.9";
