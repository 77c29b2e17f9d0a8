//! The native plugin ABI, version [`ABI_VERSION`]: for trusted, **unsandboxed** plugins
//! loaded with `libloading` when the admin sets `native = true`.
//!
//! A native plugin is a `cdylib` exporting one symbol, [`ENTRY_SYMBOL`], a function that
//! returns a pointer to a static [`PluginVTable`]. Everything crosses as UTF-8 JSON bytes:
//!
//! - `manifest()` → a [`crate::Manifest`];
//! - `invoke(host, request)` with a [`crate::Invocation`] → `{"ok": Reply}`,
//!   `{"usage": "…"}` or `{"failed": "…"}`;
//! - host capabilities: `host.call(host.ctx, request)` with `{"op": "kv.get", …}` →
//!   `{"ok": value}` or `{"err": "…"}`.
//!
//! Ownership: a [`Buffer`] is freed by the side that allocated it — buffers the plugin
//! returns go back to the vtable's `free`, buffers the host returns go back to the host
//! table's `free`. Input pointers are borrowed for the duration of the call only. The host
//! table is valid only during `invoke`, on the calling thread. Panics never cross the
//! boundary: [`export_native_plugin!`](crate::export_native_plugin) catches them and answers
//! `failed`.

use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::{Invocation, Plugin, PluginError};

pub const ABI_VERSION: u32 = 1;
pub const ENTRY_SYMBOL: &str = "slashd_plugin_entry";

/// Bytes owned by one side of the boundary.
#[repr(C)]
pub struct Buffer {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buffer {
    pub fn from_vec(bytes: Vec<u8>) -> Buffer {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        Buffer {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    /// # Safety
    /// Only on a buffer made by [`Buffer::from_vec`] in this same library, once.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        Vec::from_raw_parts(self.ptr, self.len, self.cap)
    }

    /// # Safety
    /// The buffer must be live (not yet freed).
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(self.ptr, self.len)
        }
    }
}

/// What the host lends a plugin during `invoke`.
#[repr(C)]
pub struct HostTable {
    pub abi_version: u32,
    pub ctx: *const c_void,
    pub call: unsafe extern "C" fn(ctx: *const c_void, request: *const u8, len: usize) -> Buffer,
    pub free: unsafe extern "C" fn(buffer: Buffer),
}

/// What a plugin exports.
#[repr(C)]
pub struct PluginVTable {
    pub abi_version: u32,
    pub manifest: unsafe extern "C" fn() -> Buffer,
    pub invoke:
        unsafe extern "C" fn(host: *const HostTable, request: *const u8, len: usize) -> Buffer,
    pub free: unsafe extern "C" fn(buffer: Buffer),
}

thread_local! {
    static HOST: Cell<*const HostTable> = const { Cell::new(std::ptr::null()) };
}

/// The host table of the `invoke` running on this thread.
#[cfg(not(target_family = "wasm"))]
pub(crate) fn current_host() -> Option<&'static HostTable> {
    let ptr = HOST.with(Cell::get);
    // Safety: set only for the duration of `invoke_json`, by the host's valid pointer.
    unsafe { ptr.as_ref() }
}

/// Glue used by [`export_native_plugin!`](crate::export_native_plugin).
#[doc(hidden)]
pub mod export {
    use super::*;

    pub fn manifest<P: Plugin>() -> Buffer {
        let json = catch_unwind(|| serde_json::to_vec(&P::manifest()).unwrap_or_default())
            .unwrap_or_default();
        Buffer::from_vec(json)
    }

    /// # Safety
    /// `host` must be valid for this call; `request` must point to `len` readable bytes.
    pub unsafe fn invoke<P: Plugin>(
        host: *const HostTable,
        request: *const u8,
        len: usize,
    ) -> Buffer {
        let request = if request.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(request, len)
        };
        HOST.with(|h| h.set(host));
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match serde_json::from_slice::<Invocation>(request) {
                Ok(call) => P::invoke(call),
                Err(e) => Err(PluginError::Failed(format!("malformed invocation: {e}"))),
            }
        }));
        HOST.with(|h| h.set(std::ptr::null()));
        let answer = match outcome {
            Ok(Ok(reply)) => serde_json::json!({ "ok": reply }),
            Ok(Err(PluginError::Usage(text))) => serde_json::json!({ "usage": text }),
            Ok(Err(PluginError::Failed(text))) => serde_json::json!({ "failed": text }),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown".into());
                serde_json::json!({ "failed": format!("the plugin panicked: {why}") })
            }
        };
        Buffer::from_vec(answer.to_string().into_bytes())
    }

    /// # Safety
    /// Only on buffers this library returned, once.
    pub unsafe fn free(buffer: Buffer) {
        drop(buffer.into_vec());
    }
}

/// Export a [`Plugin`](crate::Plugin) as a native library (a `cdylib` built for the host).
/// Use it beside [`export_plugin!`](crate::export_plugin) to build one source both ways;
/// each macro only expands for its own kind of target.
#[macro_export]
macro_rules! export_native_plugin {
    ($plugin:ty) => {
        #[cfg(not(target_family = "wasm"))]
        const _: () = {
            unsafe extern "C" fn __slashd_manifest() -> $crate::native::Buffer {
                $crate::native::export::manifest::<$plugin>()
            }

            unsafe extern "C" fn __slashd_invoke(
                host: *const $crate::native::HostTable,
                request: *const u8,
                len: usize,
            ) -> $crate::native::Buffer {
                $crate::native::export::invoke::<$plugin>(host, request, len)
            }

            unsafe extern "C" fn __slashd_free(buffer: $crate::native::Buffer) {
                $crate::native::export::free(buffer)
            }

            static VTABLE: $crate::native::PluginVTable = $crate::native::PluginVTable {
                abi_version: $crate::native::ABI_VERSION,
                manifest: __slashd_manifest,
                invoke: __slashd_invoke,
                free: __slashd_free,
            };

            #[no_mangle]
            pub extern "C" fn slashd_plugin_entry() -> *const $crate::native::PluginVTable {
                &VTABLE
            }
        };
    };
}
