//! A plugin's next instance, made off the reply path.
//!
//! Making a fresh instance and dropping its store are most of a small plugin's call
//! (plugin-compare, `hello`: ~16 µs of 27 µs back to back — the pool slot's memory reset,
//! the instance's function tables, the WASI context). So after a call that ran on the
//! caller's thread, the old store is dropped and the plugin's next instance made in a task
//! of its own on the caller's runtime. Spawned from a tokio worker it waits in that
//! worker's next-task slot, without waking another thread, and runs when the caller next
//! waits (on storing the reply, on its socket) — after the reply has left, not before it.
//! The next call takes it: an instance never called before, whose store is given the
//! call's context, deadline and CPU place (`CallState::begin`). Each call still gets an
//! instance of its own; only the moment it is made moves.
//!
//! Bounds: at most one spare per plugin and [`MAX_SPARES`] in all (each holds a pool slot
//! and the memory its start functions touched). Making one is a first slice like a call's
//! (`first_slice.rs`): it stops at the plugin's budget, an overrun counts against the
//! plugin as a slow call's does, and a demoted plugin — whose calls start on the plugin
//! threads — gets no spares. Start functions of a spare run with no call context, as for
//! `manifest()`: capabilities are refused to them (no toolchain slashd supports calls one
//! there).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;

use super::capabilities::CallState;
use super::wit::Instance;

/// Spares alive at once, over all plugins; the instance pool has room for them beside
/// `commands.max_jobs` calls.
pub const MAX_SPARES: u32 = 16;

/// An instance made ahead of its call, with the place it holds in the pool.
pub struct Spare {
    pub store: Store<CallState>,
    pub instance: Instance,
    pub _place: OwnedSemaphorePermit,
}

/// One plugin's spare, if any, and whether one is being made.
#[derive(Default)]
pub struct Spares {
    ready: Mutex<Option<Spare>>,
    refilling: AtomicBool,
    /// Calls that used a spare.
    taken: AtomicU64,
}

impl Spares {
    /// The spare, for a call to use; its pool place is released (the call holds its own).
    pub fn take(&self) -> Option<(Store<CallState>, Instance)> {
        let spare = self.ready.lock().ok()?.take()?;
        self.taken.fetch_add(1, Ordering::Relaxed);
        Some((spare.store, spare.instance))
    }

    /// Whether to make a spare now: none is ready or being made. The caller that gets
    /// `true` must end with [`Spares::made`].
    pub fn begin_refill(&self) -> bool {
        let empty = self.ready.lock().is_ok_and(|ready| ready.is_none());
        empty && !self.refilling.swap(true, Ordering::AcqRel)
    }

    /// A refill ended with `spare` (none when there was no pool place for it, or making it
    /// failed or overran its slice).
    pub fn made(&self, spare: Option<Spare>) {
        if let (Some(spare), Ok(mut ready)) = (spare, self.ready.lock()) {
            *ready = Some(spare);
        }
        self.refilling.store(false, Ordering::Release);
    }

    /// How many calls used a spare so far.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }
}
