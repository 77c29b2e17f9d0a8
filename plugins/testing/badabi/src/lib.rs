//! Test plugin (native only): exports the entry symbol with an ABI version the host does
//! not speak.

use slashd_plugin_api::native::{Buffer, HostTable, PluginVTable};

unsafe extern "C" fn manifest() -> Buffer {
    Buffer::from_vec(b"{}".to_vec())
}

unsafe extern "C" fn invoke(_host: *const HostTable, _request: *const u8, _len: usize) -> Buffer {
    Buffer::from_vec(b"{}".to_vec())
}

unsafe extern "C" fn free(buffer: Buffer) {
    drop(buffer.into_vec());
}

static VTABLE: PluginVTable = PluginVTable {
    abi_version: 99,
    manifest,
    invoke,
    free,
};

#[no_mangle]
pub extern "C" fn slashd_plugin_entry() -> *const PluginVTable {
    &VTABLE
}
