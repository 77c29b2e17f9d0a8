//! The one error type of the transports. Every failure a client can see passes through
//! [`AppError`], which decides — in one place — the HTTP status and the protocol code. The
//! layers below speak their own errors (`ChatError`, `CommandError`, `AuthError`,
//! `AdminError`); their `From` impls here are the only place those become statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::chat::ChatError;
use crate::commands::CommandError;
use crate::plugins::AdminError;
pub use crate::protocol::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The request is well-formed but the target's state forbids it (an ended session).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    RateLimited(String),
    /// Rate-limited, with when to come back (`Retry-After` on REST).
    #[error("{message}")]
    RetryLater {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("{0}")]
    UnknownCommand(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    PluginFailed(String),
    #[error("{0}")]
    PluginTimeout(String),
    /// The model endpoint failed, stalled, or sent something unusable.
    #[error("{0}")]
    AssistantFailed(String),
    /// A running command was cancelled; the text says by whom.
    #[error("{0}")]
    Cancelled(String),
    #[error("request timed out")]
    Timeout,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Unauthorized(_) => ErrorCode::Unauthorized,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::BadRequest(_) | AppError::Conflict(_) => ErrorCode::BadRequest,
            AppError::UnsupportedMediaType(_) => ErrorCode::BadRequest,
            AppError::TooLarge(_) => ErrorCode::TooLarge,
            AppError::RateLimited(_) | AppError::RetryLater { .. } => ErrorCode::RateLimited,
            AppError::UnknownCommand(_) => ErrorCode::UnknownCommand,
            AppError::Usage(_) => ErrorCode::Usage,
            AppError::PluginFailed(_) => ErrorCode::PluginFailed,
            AppError::PluginTimeout(_) => ErrorCode::PluginTimeout,
            AppError::AssistantFailed(_) => ErrorCode::AssistantFailed,
            AppError::Cancelled(_) => ErrorCode::Cancelled,
            AppError::Timeout | AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::RateLimited(_) | AppError::RetryLater { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::UnknownCommand(_) => StatusCode::NOT_FOUND,
            AppError::Usage(_) => StatusCode::BAD_REQUEST,
            AppError::PluginFailed(_) => StatusCode::BAD_GATEWAY,
            AppError::PluginTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            AppError::AssistantFailed(_) => StatusCode::BAD_GATEWAY,
            // nginx's "client closed request" has no standard peer; a conflict is closest.
            AppError::Cancelled(_) => StatusCode::CONFLICT,
            AppError::Timeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a client may see. Internal errors never leak their cause.
    pub fn public_message(&self) -> String {
        self.to_string()
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(err.into())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        AppError::Internal(err.into())
    }
}

impl From<ChatError> for AppError {
    fn from(err: ChatError) -> Self {
        match err {
            ChatError::BadSessionId => AppError::BadRequest(err.to_string()),
            ChatError::NoSession => AppError::NotFound(err.to_string()),
            ChatError::Ended => AppError::Conflict(err.to_string()),
            ChatError::Db(e) => AppError::Internal(e.into()),
        }
    }
}

impl From<CommandError> for AppError {
    fn from(err: CommandError) -> Self {
        match err {
            CommandError::NotACommand => AppError::BadRequest(err.to_string()),
            CommandError::RateLimited | CommandError::TooManyRunning(_) => {
                AppError::RateLimited(err.to_string())
            }
            CommandError::Unknown(m) => AppError::UnknownCommand(m),
            CommandError::Forbidden(m) => AppError::Forbidden(m),
            CommandError::Usage(m) => AppError::Usage(m),
            CommandError::Failed(m) => AppError::PluginFailed(m),
            CommandError::Timeout(m) => AppError::PluginTimeout(m),
            CommandError::Cancelled(m) => AppError::Cancelled(m),
            CommandError::NoSuchJob(m) | CommandError::NoSuchAction(m) => AppError::NotFound(m),
            CommandError::NoSuchConfirmation => AppError::NotFound(err.to_string()),
            CommandError::AlreadyUsed => AppError::Conflict(err.to_string()),
            CommandError::TooManyConfirmations => AppError::RateLimited(err.to_string()),
            CommandError::Chat(e) => e.into(),
        }
    }
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Refused(reason) => AppError::Unauthorized(reason),
            AuthError::Internal(e) => AppError::Internal(e),
        }
    }
}

impl From<AdminError> for AppError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::NoSuchPlugin(_) => AppError::NotFound(err.to_string()),
            AdminError::Refused(_) => AppError::Conflict(err.to_string()),
            AdminError::InvalidConfig(_) => AppError::BadRequest(err.to_string()),
        }
    }
}

/// Every REST error: `{"error":{"code","message"}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    code: ErrorCode,
    /// For people; clients should act on `code`.
    message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(err) = &self {
            tracing::error!(error = format!("{err:#}"), "internal error");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
            },
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let AppError::RetryLater { retry_after, .. } = &self {
            // Whole seconds, rounded up: a client that waits that long gets through.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs.max(1)),
            );
        }
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// `check(domain error, status, code)`: what each refusal becomes on the wire.
    #[test]
    fn domain_errors_map_to_one_status_and_code() {
        fn check(err: impl Into<AppError>, status: u16, code: ErrorCode, message: &str) {
            let err = err.into();
            assert_eq!(
                (err.status().as_u16(), err.code(), err.public_message()),
                (status, code, message.to_string())
            );
        }
        use ErrorCode::*;
        check(
            ChatError::BadSessionId,
            400,
            BadRequest,
            "session_id must be a UUID",
        );
        check(ChatError::NoSession, 404, NotFound, "no such session");
        check(ChatError::Ended, 409, BadRequest, "the session has ended");
        check(
            ChatError::Db(sqlx::Error::PoolTimedOut),
            500,
            Internal,
            "internal error",
        );
        check(CommandError::NotACommand, 400, BadRequest, "not a command");
        let slow = "too many commands; slow down";
        check(CommandError::RateLimited, 429, RateLimited, slow);
        check(
            CommandError::Unknown("/x?".into()),
            404,
            UnknownCommand,
            "/x?",
        );
        check(
            CommandError::Forbidden("admin".into()),
            403,
            Forbidden,
            "admin",
        );
        check(
            CommandError::Usage("usage: /x".into()),
            400,
            Usage,
            "usage: /x",
        );
        check(
            CommandError::Failed("boom".into()),
            502,
            PluginFailed,
            "boom",
        );
        check(
            CommandError::Timeout("slow".into()),
            504,
            PluginTimeout,
            "slow",
        );
        check(
            CommandError::Cancelled("/deploy: cancelled by ann".into()),
            409,
            Cancelled,
            "/deploy: cancelled by ann",
        );
        check(
            CommandError::NoSuchJob("no running command has id x".into()),
            404,
            NotFound,
            "no running command has id x",
        );
        check(
            CommandError::NoSuchAction("no such button".into()),
            404,
            NotFound,
            "no such button",
        );
        check(
            CommandError::AlreadyUsed,
            409,
            BadRequest,
            "this button was already used",
        );
        check(
            CommandError::NoSuchConfirmation,
            404,
            NotFound,
            "no such confirmation (it may have expired)",
        );
        check(
            CommandError::TooManyConfirmations,
            429,
            RateLimited,
            "too many confirmations waiting; answer one first",
        );
        check(
            CommandError::Chat(ChatError::Ended),
            409,
            BadRequest,
            "the session has ended",
        );
        check(
            AuthError::Refused("expired".into()),
            401,
            Unauthorized,
            "expired",
        );
        let internal = AuthError::Internal(anyhow::anyhow!("db password=hunter2"));
        check(internal, 500, Internal, "internal error");
        let missing = AdminError::NoSuchPlugin("x".into());
        check(missing, 404, NotFound, "no plugin named \"x\"");
        let refused = AdminError::Refused("bad".into());
        check(refused, 409, BadRequest, "the plugin was refused: bad");
        let invalid = AdminError::InvalidConfig("line 3".into());
        check(
            invalid,
            400,
            BadRequest,
            "invalid config, nothing changed: line 3",
        );
    }
}
