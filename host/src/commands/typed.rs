//! Typed arguments' values for the plugin: what `protocol::args` bound and checked, with
//! `user` and `session` arguments resolved against what the caller may see.
//!
//! - A `user` names one of the session's people: its owner or a member, active. Anyone
//!   else — unknown, disabled, or outside this session — is "no user X in this session":
//!   a command cannot be used to learn who has an account.
//! - A `session` is an id of a session the caller owns or is a member of; any other id,
//!   existing or not, is "no session X that you can see".

use slashd_plugin_api::{NamedValue, SessionRef, UserRef, Value};

use crate::auth::Principal;
use crate::chat::{Chat, ChatError};
use crate::protocol::args::{Bound, BoundArg};
use crate::store::{valid_user_name, UserStatus};

pub enum ResolveError {
    /// The text after `usage: `.
    Usage(String),
    Chat(ChatError),
}

impl From<sqlx::Error> for ResolveError {
    fn from(e: sqlx::Error) -> Self {
        ResolveError::Chat(ChatError::Db(e))
    }
}

/// Longest piece of a typed name or id quoted back.
const MAX_QUOTED: usize = 64;

pub async fn resolve(
    chat: &Chat,
    caller: &Principal,
    session_id: &str,
    bound: Vec<BoundArg>,
) -> Result<Vec<NamedValue>, ResolveError> {
    let mut values = Vec::with_capacity(bound.len());
    for arg in bound {
        let value = match arg.value {
            Bound::Value(value) => value,
            Bound::User(name) => Value::User(user(chat, session_id, &arg.name, &name).await?),
            Bound::Session(id) => Value::Session(session(chat, caller, &arg.name, &id).await?),
        };
        values.push(NamedValue {
            name: arg.name,
            value,
        });
    }
    Ok(values)
}

async fn user(
    chat: &Chat,
    session_id: &str,
    arg: &str,
    name: &str,
) -> Result<UserRef, ResolveError> {
    let refused =
        || ResolveError::Usage(format!("--{arg}: no user {} in this session", shown(name)));
    if !valid_user_name(name) {
        return Err(refused());
    }
    let Some(user) = chat.store.user_by_name(name).await? else {
        return Err(refused());
    };
    if user.status != UserStatus::Active
        || chat
            .store
            .session_for(session_id, &user.id)
            .await?
            .is_none()
    {
        return Err(refused());
    }
    Ok(UserRef {
        id: user.id,
        name: user.name,
        role: user.role,
    })
}

async fn session(
    chat: &Chat,
    caller: &Principal,
    arg: &str,
    id: &str,
) -> Result<SessionRef, ResolveError> {
    match chat.visible_session(&caller.id, id).await {
        Ok((session, _)) => Ok(SessionRef {
            id: session.id,
            title: session.title,
        }),
        Err(ChatError::Db(e)) => Err(ResolveError::Chat(ChatError::Db(e))),
        Err(_) => Err(ResolveError::Usage(format!(
            "--{arg}: no session {} that you can see",
            shown(id)
        ))),
    }
}

fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_QUOTED).collect();
    if text.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    format!("{out:?}")
}
