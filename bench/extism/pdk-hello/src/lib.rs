//! The same logic as slashd's template plugin (`plugins/template`), as an Extism plugin:
//! input `world` → output `Hello, **world**!`.

use extism_pdk::*;

#[plugin_fn]
pub fn hello(name: String) -> FnResult<String> {
    Ok(format!("Hello, **{name}**!"))
}
