//! Identity: who is calling, and with which role. Used by REST and WebSocket alike.
//!
//! A token proves the subject; the database decides the rest. A token whose `role` claim is
//! not a known role is refused; a user who is unknown (without auto-provisioning) or
//! disabled is refused; the effective role is the database's, so a demotion applies to old
//! tokens at once.

pub mod password;
pub mod throttle;
pub mod token;

/// Roles are the plugin API's: one definition for the SDK and the server.
pub use slashd_plugin_api::Role;
pub use token::{Issued, TokenKeys};

use serde::Serialize;

use crate::store::{CreateUserError, Store, UserStatus};

/// An authenticated caller.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// When the token stops being valid (Unix seconds); long-lived connections close then.
    #[serde(skip)]
    pub expires_at: u64,
}

pub struct Authenticator {
    keys: TokenKeys,
    store: Store,
    auto_provision: bool,
}

impl Authenticator {
    pub fn new(keys: TokenKeys, store: Store, auto_provision: bool) -> Self {
        Authenticator {
            keys,
            store,
            auto_provision,
        }
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// Check a bearer token that arrived over `transport` (`rest` or `ws`). Every refusal
    /// is logged with its reason and answered with a generic `unauthorized` message that
    /// says what is wrong with the token, never whether a user exists.
    pub async fn authenticate(
        &self,
        token: &str,
        transport: &'static str,
    ) -> Result<Principal, AuthError> {
        match self.check(token).await {
            Ok(principal) => Ok(principal),
            Err(Refusal::Client(reason)) => {
                log_refusal(Refused::Token, transport, None, &reason);
                Err(AuthError::Refused(reason))
            }
            Err(Refusal::Subject(reason)) => {
                log_refusal(Refused::Token, transport, None, &reason);
                Err(AuthError::Refused(SUBJECT_REFUSED.into()))
            }
            Err(Refusal::Internal(err)) => Err(AuthError::Internal(err)),
        }
    }

    async fn check(&self, token: &str) -> Result<Principal, Refusal> {
        if token.is_empty() {
            return Err(Refusal::Client("missing token".into()));
        }
        if token.len() > 8192 {
            return Err(Refusal::Client("token is too large".into()));
        }
        let claims = self.keys.verify(token).map_err(Refusal::Client)?;
        if claims.sub.is_empty() {
            return Err(Refusal::Client("token has an empty subject".into()));
        }
        if !crate::store::valid_user_id(&claims.sub) {
            return Err(Refusal::Client(
                "token subject is not a valid user id".into(),
            ));
        }
        let claimed_role: Role = claims
            .role
            .as_deref()
            .ok_or_else(|| Refusal::Client("token lacks a role".into()))?
            .parse()
            .map_err(Refusal::Client)?;
        let user = match self
            .store
            .user_by_id(&claims.sub)
            .await
            .map_err(Refusal::db)?
        {
            Some(user) => user,
            None if self.auto_provision => self.provision(&claims, claimed_role).await?,
            None => return Err(Refusal::Subject("token subject is not a known user".into())),
        };
        if user.status == UserStatus::Disabled {
            return Err(Refusal::Subject("user is disabled".into()));
        }
        Ok(Principal {
            id: user.id,
            name: user.name,
            role: user.role,
            expires_at: claims.exp,
        })
    }

    /// Auto-provisioning (external identity provider): the user is created with the
    /// token's `sub` as id, and its `name` (or, lacking one, the `sub`) and `role`.
    async fn provision(
        &self,
        claims: &token::Claims,
        role: Role,
    ) -> Result<crate::store::User, Refusal> {
        let name = claims.name.clone().unwrap_or_else(|| claims.sub.clone());
        if !crate::store::valid_user_name(&name) || !crate::store::valid_user_id(&claims.sub) {
            return Err(Refusal::Subject(
                "cannot provision: the token's name or sub is not a valid user name or id".into(),
            ));
        }
        match self
            .store
            .create_user_with_id(&claims.sub, &name, role)
            .await
        {
            Ok(_) => {}
            Err(CreateUserError::NameTaken(_)) => {
                // Another node (or a concurrent request) may have provisioned this very
                // subject a moment ago; only someone else's name is a refusal.
                if let Some(user) = self
                    .store
                    .user_by_id(&claims.sub)
                    .await
                    .map_err(Refusal::db)?
                {
                    return Ok(user);
                }
                return Err(Refusal::Subject(
                    "cannot provision: the token's name is taken by another user".into(),
                ));
            }
            Err(CreateUserError::Db(e)) => return Err(Refusal::db(e)),
        }
        tracing::info!(
            user = name.as_str(),
            role = role.as_str(),
            "user provisioned from token"
        );
        self.store
            .user_by_id(&claims.sub)
            .await
            .map_err(Refusal::db)?
            .ok_or_else(|| Refusal::Subject("user could not be provisioned".into()))
    }
}

/// What was refused, as the log line's message.
#[derive(Debug, Clone, Copy)]
pub enum Refused {
    /// A password login.
    Login,
    /// A missing, invalid or expired token (REST or WebSocket).
    Token,
    /// An authenticated caller without the role something needs.
    Role,
}

/// The one structured line (target `slashd::auth`) of every refused login, token or role.
pub fn log_refusal(what: Refused, transport: &'static str, user: Option<&str>, reason: &str) {
    let message = match what {
        Refused::Login => "login refused",
        Refused::Token => "token refused",
        Refused::Role => "role refused",
    };
    tracing::warn!(
        target: "slashd::auth",
        transport,
        user = user.unwrap_or_default(),
        reason,
        "{message}"
    );
}

/// What the client hears when a validly signed token names a subject we refuse (unknown,
/// disabled, not provisionable): the log says which, the client learns nothing about users.
pub const SUBJECT_REFUSED: &str = "token is not accepted";

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Refused; the text is safe to tell the client (and was logged).
    #[error("{0}")]
    Refused(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

enum Refusal {
    /// Something wrong with the token itself; the reason is safe to tell the client.
    Client(String),
    /// A good token for a subject we refuse; the reason goes to the log only.
    Subject(String),
    Internal(anyhow::Error),
}

impl Refusal {
    fn db(err: impl Into<anyhow::Error>) -> Refusal {
        Refusal::Internal(err.into())
    }
}

/// The HS256 secret kept in `<data_dir>/jwt_secret`, created on first use.
pub fn generated_secret(data_dir: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let path = data_dir.join("jwt_secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let secret = text.trim().to_string();
        if secret.len() >= 32 {
            return Ok(secret);
        }
        anyhow::bail!(
            "{} is too short; delete it to generate a new one",
            path.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "no auth.jwt_secret configured: generated one and kept it in the data directory; \
         set auth.jwt_secret (the same on every node) for production"
    );
    Ok(secret)
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

/// A random 20-character password for the first admin.
pub fn random_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 20)
}
