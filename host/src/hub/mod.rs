//! The hub: which connection is in which session's room, presence, and fan-out. It deals
//! in connections' queues ([`Outbound`]) and already-serialized frames; the sockets that
//! drain the queues are the realtime layer's.
//!
//! Fan-out seam: everything that reaches a room goes through [`Hub::broadcast`]. In one
//! node it delivers to local queues; a cluster transport (Redis) publishes there as well and
//! feeds remote events into [`Hub::deliver_local`].
//!
//! Ordering: posts to a session take the room's `post_lock` around "store, ack, broadcast",
//! and joins take it around "register, read the backlog, answer", so every connection sees
//! messages in `seq` order and a joiner sees each message exactly once.

use std::sync::{Arc, Mutex, MutexGuard};

use dashmap::DashMap;

use crate::protocol::frames::{PresenceState, ServerFrame};
use crate::protocol::Text;

pub mod outbound;

pub use outbound::Outbound;

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
    /// Delivers `message` frames in seq order when they come from several nodes.
    sequencer: Mutex<Sequencer>,
}

/// Messages of one room, delivered in seq order. Frames posted on this node arrive in
/// order already; frames from other nodes may overtake each other, so one that skips ahead
/// waits (bounded, briefly) for the ones before it. A gap that outlives the wait is given up
/// on — a lost pub/sub message — and clients recover it with `join.since_seq`.
#[derive(Default)]
struct Sequencer {
    /// The seq expected next; 0 until the room's first join has read where it stands.
    next: i64,
    /// Nothing goes out yet: a new room's first join is reading history and has not sent
    /// `joined`; what arrives meanwhile waits in `pending` (see [`Hub::note_last_seq`]).
    held: bool,
    pending: std::collections::BTreeMap<i64, Text>,
    /// When the current gap opened (messages started waiting).
    gap_since: Option<std::time::Instant>,
    gap_timer: bool,
}

/// Most out-of-order messages a room holds while waiting for a gap to fill.
const MAX_PENDING: usize = 1024;
/// How long a gap may stay open before the waiting messages go out anyway.
const GAP_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

impl Sequencer {
    /// Accept `seq`; returns what may be delivered now, in order, and whether a gap is open.
    fn accept(&mut self, seq: i64, text: Text) -> (Vec<Text>, bool) {
        if seq < self.next {
            return (Vec::new(), false); // already delivered
        }
        if self.next == 0 || self.held {
            // Not anchored yet: a message from another node may overtake an earlier one
            // here, so nothing can be told delivered until the join says where it stands.
            if self.pending.len() < MAX_PENDING {
                self.pending.insert(seq, text);
            }
            return (Vec::new(), false);
        }
        self.pending.insert(seq, text);
        self.flush()
    }

    /// What may go out now from `pending`, in order, and whether a gap is open.
    fn flush(&mut self) -> (Vec<Text>, bool) {
        let mut ready = Vec::new();
        while let Some(text) = self.pending.remove(&self.next) {
            ready.push(text);
            self.next += 1;
        }
        if self.pending.len() > MAX_PENDING {
            ready.extend(self.skip_gap());
        }
        if self.pending.is_empty() {
            self.gap_since = None;
        } else if self.gap_since.is_none() {
            self.gap_since = Some(std::time::Instant::now());
        }
        (ready, !self.pending.is_empty())
    }

    /// A new room's first join read history up to `last_seq`: expect `last_seq + 1`, drop
    /// what arrived early that the history holds, and keep holding the rest until
    /// [`Sequencer::release`]. A room already delivering keeps its place.
    fn anchor(&mut self, last_seq: i64) {
        if self.next == 0 {
            self.next = last_seq.saturating_add(1);
            self.held = true;
            let next = self.next;
            self.pending.retain(|&seq, _| seq >= next);
        }
    }

    /// Stop holding: what may go out now, and whether a gap is open; `None` if not held.
    fn release(&mut self) -> Option<(Vec<Text>, bool)> {
        std::mem::take(&mut self.held).then(|| self.flush())
    }

    /// Give up on the gap: everything waiting goes out in order.
    fn skip_gap(&mut self) -> Vec<Text> {
        self.gap_since = None;
        let pending = std::mem::take(&mut self.pending);
        if let Some((&last, _)) = pending.last_key_value() {
            self.next = last + 1;
        }
        pending.into_values().collect()
    }
}

/// An event for a session's room, as it crosses between nodes.
#[derive(Debug, Clone)]
pub struct RoomEvent {
    pub session_id: String,
    pub text: Text,
    pub skip_user: Option<String>,
    /// For `message` frames: its seq, so receivers deliver in order.
    pub seq: Option<i64>,
}

/// The cross-node transport behind the hub (Redis in a cluster). A node hears only the
/// sessions it watches: the ones with a connection here.
pub trait Fanout: Send + Sync {
    fn publish(&self, event: RoomEvent);
    /// A user was removed from a session: every node's connections of theirs leave it.
    fn expel(&self, session_id: &str, user_id: &str);
    /// A connection here is joining `session_id`: resolves once this node hears the
    /// session's events from the others (or gave up trying: recovery covers the rest), so
    /// history read after it misses nothing live.
    fn watch(&self, session_id: &str) -> futures_util::future::BoxFuture<'static, ()>;
    /// No connection here is in `session_id` any more.
    fn unwatch(&self, session_id: &str);
}

/// Who is present in a session on other nodes: the seam the cluster fills (a sorted set
/// per session in Redis). Absent, a session's participants are this node's.
#[async_trait::async_trait]
pub trait Presence: Send + Sync {
    /// `user_id` joined `session_id` here; `true` if already present through another node.
    async fn join(&self, session_id: &str, user_id: &str) -> bool;
    /// `user_id`'s last connection here left; `true` if still present through another node.
    async fn leave(&self, session_id: &str, user_id: &str) -> bool;
    /// Everyone present on any node; `None` when that cannot be read now.
    async fn participants(&self, session_id: &str) -> Option<Vec<String>>;
}

impl Room {
    fn members(&self) -> MutexGuard<'_, Vec<Member>> {
        // A panic while holding this lock cannot leave the Vec inconsistent; keep serving.
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_empty(&self) -> bool {
        self.members().is_empty()
    }

    /// Distinct users in the room, in join order.
    fn users(&self) -> Vec<String> {
        let members = self.members();
        let mut users: Vec<String> = Vec::with_capacity(members.len());
        for m in members.iter() {
            if !users.iter().any(|u| **u == *m.user_id) {
                users.push(m.user_id.to_string());
            }
        }
        users
    }
}

/// A connection as the hub knows it.
#[derive(Clone)]
pub struct ConnHandle {
    pub conn_id: ConnId,
    pub user_id: Arc<str>,
    pub out: Outbound,
    /// The user's role and status as the database now says; the connection task watches
    /// it, so a demotion or a disable reaches an open socket (see `revocation.rs`).
    pub standing: Arc<tokio::sync::watch::Sender<Standing>>,
}

/// What an open connection may do, as of the last account change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub role: crate::auth::Role,
    pub disabled: bool,
}

#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Default)]
struct HubInner {
    /// Set once at start in cluster mode.
    fanout: std::sync::OnceLock<Arc<dyn Fanout>>,
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

    /// Every live connection on this node, as (user id, connection id).
    pub fn local_connections(&self) -> Vec<(Arc<str>, ConnId)> {
        self.inner
            .users
            .iter()
            .flat_map(|entry| {
                entry
                    .value()
                    .iter()
                    .map(|c| (c.user_id.clone(), c.conn_id.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
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
            // `remove`, not `swap_remove`: participants are listed in join order.
            let member = members.remove(pos);
            let last = !members.iter().any(|m| m.user_id == member.user_id);
            (member.user_id, last)
        };
        let retired = self
            .inner
            .rooms
            .remove_if(session_id, |_, r| Arc::ptr_eq(r, &room) && r.is_empty());
        if retired.is_some() {
            self.unwatch(session_id);
        }
        Some(removed)
    }

    /// Be sure this node hears `session_id`'s events from other nodes (see
    /// [`Fanout::watch`]); at once without a cluster.
    pub async fn watch(&self, session_id: &str) {
        if let Some(fanout) = self.inner.fanout.get() {
            fanout.watch(session_id).await;
        }
    }

    fn unwatch(&self, session_id: &str) {
        if let Some(fanout) = self.inner.fanout.get() {
            fanout.unwatch(session_id);
        }
    }

    /// Whether anyone on this node is in `session_id`'s room.
    pub fn has_local_members(&self, session_id: &str) -> bool {
        self.existing_room(session_id)
            .is_some_and(|room| !room.is_empty())
    }

    /// The sessions someone on this node is in.
    pub fn local_sessions(&self) -> Vec<String> {
        self.inner
            .rooms
            .iter()
            .filter(|entry| !entry.value().is_empty())
            .map(|entry| entry.key().clone())
            .collect()
    }

    pub fn is_member(&self, session_id: &str, conn_id: &str) -> bool {
        self.existing_room(session_id)
            .is_some_and(|room| room.members().iter().any(|m| &*m.conn_id == conn_id))
    }

    /// Distinct users present in a session's room, in join order.
    pub fn participants(&self, session_id: &str) -> Vec<String> {
        self.existing_room(session_id)
            .map(|room| room.users())
            .unwrap_or_default()
    }

    /// Connect the cross-node transport (once, at start).
    pub fn set_fanout(&self, fanout: Arc<dyn Fanout>) {
        let _ = self.inner.fanout.set(fanout);
    }

    /// Send a frame to everyone in a session's room (except `skip_user`'s connections), on
    /// this node and — through the fan-out seam — on every other.
    pub fn broadcast(&self, session_id: &str, text: Text, skip_user: Option<&str>) {
        self.deliver_local(session_id, text.clone(), skip_user);
        self.publish(session_id, text, skip_user, None);
    }

    /// Broadcast a stored `message` frame; receivers deliver messages in seq order.
    pub fn broadcast_message(&self, session_id: &str, seq: i64, text: Text) {
        self.deliver_message(session_id, seq, text.clone());
        self.publish(session_id, text, None, Some(seq));
    }

    fn publish(&self, session_id: &str, text: Text, skip_user: Option<&str>, seq: Option<i64>) {
        if let Some(fanout) = self.inner.fanout.get() {
            fanout.publish(RoomEvent {
                session_id: session_id.to_string(),
                text,
                skip_user: skip_user.map(str::to_string),
                seq,
            });
        }
    }

    /// Deliver an event that another node published.
    pub fn deliver_remote(&self, event: RoomEvent) {
        match event.seq {
            Some(seq) => self.deliver_message(&event.session_id, seq, event.text),
            None => self.deliver_local(&event.session_id, event.text, event.skip_user.as_deref()),
        }
    }

    fn deliver_message(&self, session_id: &str, seq: i64, text: Text) {
        let Some(room) = self.existing_room(session_id) else {
            return;
        };
        // Deliver under the sequencer's lock: two threads (a local post, a remote event)
        // must not take their turns in order and then deliver out of it. Delivery only
        // queues (`try_send`), so the lock is held briefly.
        let mut sequencer = room.sequencer.lock().unwrap_or_else(|p| p.into_inner());
        let (ready, gap) = sequencer.accept(seq, text);
        self.after_accept(session_id, &room, &mut sequencer, ready, gap);
    }

    /// Deliver what the sequencer let out, and if a gap is open (and no timer waits on it
    /// yet), give it [`GAP_WAIT`] to fill before the waiting messages go out anyway.
    fn after_accept(
        &self,
        session_id: &str,
        room: &Arc<Room>,
        sequencer: &mut Sequencer,
        ready: Vec<Text>,
        gap: bool,
    ) {
        for text in ready {
            self.deliver_local(session_id, text, None);
        }
        if !gap || sequencer.gap_timer {
            return;
        }
        sequencer.gap_timer = true;
        let (hub, session_id, room) = (self.clone(), session_id.to_string(), room.clone());
        tokio::spawn(async move {
            let mut wait = GAP_WAIT;
            loop {
                tokio::time::sleep(wait).await;
                let mut sequencer = room.sequencer.lock().unwrap_or_else(|p| p.into_inner());
                match sequencer.gap_since {
                    // The gap closed; a newer one gets its full wait.
                    Some(since) if since.elapsed() < GAP_WAIT => {
                        wait = GAP_WAIT - since.elapsed();
                        continue;
                    }
                    Some(_) => {
                        tracing::warn!(session = session_id.as_str(), "gave up waiting for a missing message; clients recover it with since_seq");
                        for text in sequencer.skip_gap() {
                            hub.deliver_local(&session_id, text, None);
                        }
                    }
                    None => {}
                }
                sequencer.gap_timer = false;
                return;
            }
        });
    }

    /// Start a new room's sequencer at `last_seq + 1` (read by the first join). A room that
    /// is already delivering keeps its place: messages still in flight from other nodes must
    /// reach the members who were there (a joiner may then see one twice; seq tells).
    ///
    /// A new room holds what arrives from other nodes until [`Hub::release`]: the first
    /// join calls that once its `joined` (with history up to `last_seq`) has been queued,
    /// so its client sees `joined`, then what came later, in seq order.
    pub fn note_last_seq(&self, session_id: &str, last_seq: i64) {
        if let Some(room) = self.existing_room(session_id) {
            let mut sequencer = room.sequencer.lock().unwrap_or_else(|p| p.into_inner());
            sequencer.anchor(last_seq);
        }
    }

    /// Let out what a new room held while its first join read history.
    pub fn release(&self, session_id: &str) {
        let Some(room) = self.existing_room(session_id) else {
            return;
        };
        let mut sequencer = room.sequencer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((ready, gap)) = sequencer.release() {
            self.after_accept(session_id, &room, &mut sequencer, ready, gap);
        }
    }

    /// Every session with a room on this node, and the distinct users in it.
    pub fn local_presence(&self) -> Vec<(String, Vec<String>)> {
        // Collect first: looking rooms up while iterating the map could deadlock a shard.
        let rooms: Vec<(String, Arc<Room>)> = self
            .inner
            .rooms
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect();
        rooms
            .into_iter()
            .map(|(session_id, room)| (session_id, room.users()))
            .collect()
    }

    /// Deliver to this node's connections in the room. Never waits: a full queue closes
    /// that connection instead.
    pub fn deliver_local(&self, session_id: &str, text: Text, skip_user: Option<&str>) {
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
            self.unwatch(session_id);
        }
    }

    /// Tell every open connection of `user_id` its account's current standing (each
    /// connection acts only on a change).
    pub fn update_standing(&self, user_id: &str, standing: Standing) {
        if let Some(conns) = self.inner.users.get(user_id) {
            for conn in conns.iter() {
                conn.standing.send_if_modified(|current| {
                    let changed = *current != standing;
                    *current = standing;
                    changed
                });
            }
        }
    }

    /// `user_id` was removed from a session: their connections leave its room, here and —
    /// through the fan-out seam — on every other node.
    pub fn expel(&self, session_id: &str, user_id: &str) {
        self.expel_local(session_id, user_id);
        if let Some(fanout) = self.inner.fanout.get() {
            fanout.expel(session_id, user_id);
        }
    }

    /// [`Hub::expel`] on this node only: each of the user's connections in the room is
    /// told `left`, and the others see the user leave.
    pub fn expel_local(&self, session_id: &str, user_id: &str) {
        let gone = self.remove_user_from_room(session_id, user_id);
        if gone.is_empty() {
            return;
        }
        let left = ServerFrame::Left {
            id: &None,
            session_id,
        }
        .to_text();
        for out in &gone {
            out.push(left.clone());
        }
        // To every node: the others' members see the user leave too.
        let presence = ServerFrame::Presence {
            session_id,
            user_id,
            state: PresenceState::Left,
        };
        self.broadcast(session_id, presence.to_text(), Some(user_id));
    }

    fn remove_user_from_room(&self, session_id: &str, user_id: &str) -> Vec<Outbound> {
        let Some(room) = self.existing_room(session_id) else {
            return Vec::new();
        };
        let removed: Vec<Outbound> = {
            let mut members = room.members();
            let (gone, kept): (Vec<Member>, Vec<Member>) =
                members.drain(..).partition(|m| *m.user_id == *user_id);
            *members = kept;
            gone.into_iter().map(|m| m.out).collect()
        };
        let retired = self
            .inner
            .rooms
            .remove_if(session_id, |_, r| Arc::ptr_eq(r, &room) && r.is_empty());
        if retired.is_some() {
            self.unwatch(session_id);
        }
        removed
    }

    /// Send a frame to every connection of one user.
    pub fn send_to_user(&self, user_id: &str, text: Text) {
        if let Some(conns) = self.inner.users.get(user_id) {
            for conn in conns.iter() {
                conn.out.push(text.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Sequencer;
    use crate::protocol::Text;

    fn t(seq: i64) -> Text {
        Text::from(seq.to_string())
    }

    fn seqs(v: Vec<Text>) -> Vec<String> {
        v.iter().map(|t| t.as_str().to_string()).collect()
    }

    #[test]
    fn delivers_in_order_and_drops_duplicates() {
        let mut s = Sequencer {
            next: 5,
            ..Default::default()
        };
        assert_eq!(seqs(s.accept(5, t(5)).0), ["5"]);
        let (ready, gap) = s.accept(7, t(7));
        assert!(ready.is_empty() && gap, "7 waits for 6");
        assert_eq!(seqs(s.accept(6, t(6)).0), ["6", "7"]);
        assert!(s.accept(6, t(6)).0.is_empty(), "a duplicate is dropped");
        s.accept(10, t(10));
        assert_eq!(seqs(s.skip_gap()), ["10"]);
        assert_eq!(seqs(s.accept(11, t(11)).0), ["11"]);
    }

    /// A new room: messages from other nodes that arrive before its first join has read
    /// history wait — one overtaking another must not make the earlier one a "duplicate" —
    /// and go out in order once the join has sent `joined`; what the history held is
    /// dropped.
    #[test]
    fn a_new_room_holds_early_messages_until_its_first_join_is_answered() {
        let mut s = Sequencer::default();
        assert!(s.accept(7, t(7)).0.is_empty(), "7 overtook 6: held");
        assert!(
            s.accept(6, t(6)).0.is_empty(),
            "6 is not taken for a duplicate"
        );
        assert!(s.accept(5, t(5)).0.is_empty());
        s.anchor(5);
        assert!(s.accept(8, t(8)).0.is_empty(), "still held until released");
        let (ready, gap) = s.release().expect("it was held");
        assert_eq!(seqs(ready), ["6", "7", "8"], "5 was in the history");
        assert!(!gap);
        assert!(s.release().is_none());
        assert_eq!(seqs(s.accept(9, t(9)).0), ["9"]);
        s.anchor(100);
        assert_eq!(
            seqs(s.accept(10, t(10)).0),
            ["10"],
            "a delivering room keeps its place"
        );
    }
}
