//! A command stored with its reply: one transaction where there were two.
//!
//! A command's round trip used to be two writes one after the other — its invocation
//! (acked), then, after the plugin ran, its reply — so `/help` could not come under twice a
//! plain message's `message` → `ack`. A command whose plugin acts only through its reply
//! (`Runner::acts_only_through_its_reply`: no network, kv, sessions, jobs, progress or
//! stats grant, no writable directory) now runs *before* its invocation is stored: when the
//! call finishes in its first slice (on this thread, `plugins/first_slice.rs`), the
//! invocation and the reply go into the store together, with consecutive seqs, and are
//! acked and broadcast in that order.
//!
//! What stays as it was:
//! - the reply comes after its invocation (a larger seq), and the ack still means stored;
//! - nothing is left behind when the invocation cannot be stored (an ended session, a
//!   database error): the plugin could only have produced a reply, which is dropped with it
//!   (and, as for any command whose invocation was not stored, there is no audit row: the
//!   invoker hears the error);
//! - a call that does not finish in its first slice (it went over its budget and moved to
//!   the plugin threads, or the plugin is demoted there) is not waited for: the invocation is
//!   stored alone at once, and the call goes on in its own task as any command's does;
//! - an ephemeral reply or an error goes to the invoker after the ack;
//! - a plugin with effects past its reply starts only after its invocation is committed.

use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use super::{
    reply_fields, reply_message, reply_metadata, Approved, Commands, Invocation, ReplyStored,
};
use crate::chat::ChatError;
use crate::plugins::Runner;
use crate::store::{Message, NewMessage};

impl Commands {
    /// Whether `approved` may run before its invocation is stored.
    pub fn runs_before_stored(&self, approved: &Approved) -> bool {
        approved
            .route
            .plugin
            .runner
            .as_ref()
            .is_some_and(Runner::acts_only_through_its_reply)
    }

    /// Run `call`'s first slice, then store `invocation` — with the reply, in one
    /// transaction, when the call finished in that slice — and ack it through `on_stored`.
    /// An error is the invocation's: it was not stored, and neither was anything else.
    pub async fn run_then_store(
        self: &Arc<Self>,
        mut call: Invocation,
        invocation: NewMessage<'_>,
        on_stored: impl FnOnce(&Message),
    ) -> Result<(), ChatError> {
        let started = Instant::now();
        let mut running = self.start_call(&mut call);
        let first = std::future::poll_fn(|cx| Poll::Ready(running.as_mut().poll(cx))).await;
        let Poll::Ready(result) = first else {
            if let Err(err) = self.chat.post(invocation, on_stored).await {
                // Nobody will hear of the rest of the call: stop it (it goes on running on
                // the plugin threads otherwise, unlisted, until its deadline).
                call.running
                    .job
                    .cancel("its invocation could not be stored");
                return Err(err);
            }
            let commands = self.clone();
            self.tasks.spawn(async move {
                let result = running.await;
                commands
                    .finish(call, result, started.elapsed(), ReplyStored::No)
                    .await;
            });
            return Ok(());
        };
        let elapsed = started.elapsed();
        let mut result = result;
        let stored = match &mut result {
            Ok(reply) if !reply.ephemeral => {
                // Unlisted before the reply goes out, as any command's job is: the caller's
                // next command finds its place free.
                call.running.finish();
                let route = &call.approved.route;
                let duration_ms = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
                let metadata = reply_metadata(route, reply, duration_ms, &call.reply_to);
                let metadata = reply_fields(route, metadata, reply);
                let reply = reply_message(&call.session_id, reply, metadata);
                self.chat
                    .post_together(vec![invocation, reply], on_stored)
                    .await?;
                ReplyStored::Yes
            }
            _ => {
                self.chat.post(invocation, on_stored).await?;
                ReplyStored::No
            }
        };
        // The rest (an ephemeral reply or the error, the log line, the audit row) in the
        // command's own task: the connection goes on to its next frame.
        let commands = self.clone();
        self.tasks.spawn(async move {
            commands.finish(call, result, elapsed, stored).await;
        });
        Ok(())
    }
}
