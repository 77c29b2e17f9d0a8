//! The hub: which connection is in which session's room, presence, and fan-out.
//!
//! Fan-out seam: everything that reaches a room goes through [`Hub::broadcast`]. In one
//! node it delivers to local queues; a cluster transport (Redis) publishes there as well and
//! feeds remote events into [`Hub::deliver_local`].
//!
//! Ordering: posts to a session take the room's `post_lock` around "store, ack, broadcast",
//! and joins take it around "register, read the backlog, answer", so every connection sees
//! messages in `seq` order and a joiner sees each message exactly once.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;

use super::outbound::Outbound;

pub type ConnId = Arc<str>;

#[derive(Clone)]
struct Member {
    conn_id: ConnId,
    user_id: Arc<str>,
    out: Outbound,
}

#[derive(Default)]
pub struct Room {
    /// Serializes "store + ack + broadcast" and "join + backlog" within this session.
    pub post_lock: tokio::sync::Mutex<()>,
    members: Mutex<Vec<Member>>,
}

impl Room {
    fn members(&self) -> MutexGuard<'_, Vec<Member>> {
        // A panic while holding this lock cannot leave the Vec inconsistent; keep serving.
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_empty(&self) -> bool {
        self.members().is_empty()
    }
}

/// A connection as the hub knows it.
#[derive(Clone)]
pub struct ConnHandle {
    pub conn_id: ConnId,
    pub user_id: Arc<str>,
    pub out: Outbound,
}

#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Default)]
struct HubInner {
    rooms: DashMap<String, Arc<Room>>,
    /// Every live connection by user: for per-user limits, presence and "send to user".
    users: DashMap<Arc<str>, Vec<ConnHandle>>,
}

/// Outcome of a join: was this the user's first connection in the room?
pub struct Joined {
    pub first_for_user: bool,
}

impl Hub {
    /// Register a connection; refused when the user already has `max` connections.
    pub fn register(&self, conn: ConnHandle, max: usize) -> bool {
        let mut conns = self.inner.users.entry(conn.user_id.clone()).or_default();
        if conns.len() >= max {
            return false;
        }
        conns.push(conn);
        true
    }

    pub fn unregister(&self, conn_id: &str, user_id: &str) {
        self.inner.users.remove_if_mut(user_id, |_, conns| {
            conns.retain(|c| &*c.conn_id != conn_id);
            conns.is_empty()
        });
    }

    /// Live connections on this node.
    pub fn connection_count(&self) -> usize {
        self.inner.users.iter().map(|e| e.value().len()).sum()
    }

    /// Distinct users with a live connection on this node.
    pub fn users_online(&self) -> usize {
        self.inner.users.len()
    }

    /// The room of a session, created on first use.
    pub fn room(&self, session_id: &str) -> Arc<Room> {
        self.inner
            .rooms
            .entry(session_id.to_string())
            .or_default()
            .clone()
    }

    /// The room of a session if anyone on this node is in it.
    pub fn existing_room(&self, session_id: &str) -> Option<Arc<Room>> {
        self.inner.rooms.get(session_id).map(|r| r.clone())
    }

    /// Add a connection to `room`. Call with the room's `post_lock` held. Returns `None`
    /// when the room was retired meanwhile (its last member left); fetch it again and retry.
    pub fn add_member(
        &self,
        session_id: &str,
        room: &Arc<Room>,
        conn: &ConnHandle,
    ) -> Option<Joined> {
        let current = self.inner.rooms.get(session_id)?;
        if !Arc::ptr_eq(&current, room) {
            return None;
        }
        let mut members = room.members();
        if members.iter().any(|m| m.conn_id == conn.conn_id) {
            return Some(Joined {
                first_for_user: false,
            });
        }
        let first_for_user = !members.iter().any(|m| m.user_id == conn.user_id);
        members.push(Member {
            conn_id: conn.conn_id.clone(),
            user_id: conn.user_id.clone(),
            out: conn.out.clone(),
        });
        Some(Joined { first_for_user })
    }

    /// Remove a connection from a room. Returns whether it was there, and whether that was
    /// the user's last connection in the room.
    pub fn remove_member(&self, session_id: &str, conn_id: &str) -> Option<(Arc<str>, bool)> {
        let room = self.existing_room(session_id)?;
        let removed = {
            let mut members = room.members();
            let pos = members.iter().position(|m| &*m.conn_id == conn_id)?;
            let member = members.swap_remove(pos);
            let last = !members.iter().any(|m| m.user_id == member.user_id);
            (member.user_id, last)
        };
        self.inner
            .rooms
            .remove_if(session_id, |_, r| Arc::ptr_eq(r, &room) && r.is_empty());
        Some(removed)
    }

    pub fn is_member(&self, session_id: &str, conn_id: &str) -> bool {
        self.existing_room(session_id)
            .is_some_and(|room| room.members().iter().any(|m| &*m.conn_id == conn_id))
    }

    /// Distinct users present in a session's room, in join order.
    pub fn participants(&self, session_id: &str) -> Vec<String> {
        let Some(room) = self.existing_room(session_id) else {
            return Vec::new();
        };
        let members = room.members();
        let mut users: Vec<String> = Vec::with_capacity(members.len());
        for m in members.iter() {
            if !users.iter().any(|u| **u == *m.user_id) {
                users.push(m.user_id.to_string());
            }
        }
        users
    }

    /// Send a frame to everyone in a session's room (except `skip_user`'s connections).
    /// This is the fan-out seam: the cluster transport hooks in here.
    pub fn broadcast(&self, session_id: &str, text: Utf8Bytes, skip_user: Option<&str>) {
        self.deliver_local(session_id, text, skip_user);
    }

    /// Deliver to this node's connections in the room. Never waits: a full queue closes
    /// that connection instead.
    pub fn deliver_local(&self, session_id: &str, text: Utf8Bytes, skip_user: Option<&str>) {
        let Some(room) = self.existing_room(session_id) else {
            return;
        };
        for member in room.members().iter() {
            if skip_user.is_some_and(|u| *member.user_id == *u) {
                continue;
            }
            member.out.push(text.clone());
        }
    }

    /// Empty a session's room (it has ended): nobody stays joined.
    pub fn close_room(&self, session_id: &str) {
        if let Some((_, room)) = self.inner.rooms.remove(session_id) {
            room.members().clear();
        }
    }

    /// Send a frame to every connection of one user.
    pub fn send_to_user(&self, user_id: &str, text: Utf8Bytes) {
        if let Some(conns) = self.inner.users.get(user_id) {
            for conn in conns.iter() {
                conn.out.push(text.clone());
            }
        }
    }
}
