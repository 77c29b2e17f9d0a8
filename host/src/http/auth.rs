//! `POST /auth/login`: a token for a local user.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::Json as JsonResponse;
use serde::{Deserialize, Serialize};

use super::common;
use super::extract::Json;
use crate::auth::{log_refusal, password, Refused, Role};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::state::AppState;
use crate::store::UserStatus;
use crate::time_fmt::rfc3339;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// At most 64 bytes of UTF-8 (longer gets 400; `maxLength` counts characters, so it is
    /// the looser bound).
    #[schema(max_length = 64)]
    username: String,
    /// At most 1024 bytes of UTF-8 (longer gets 400; `maxLength` counts characters, so it
    /// is the looser bound).
    #[schema(max_length = 1024, format = Password)]
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    token: String,
    #[schema(format = DateTime)]
    expires_at: String,
    user: UserView,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// A token for a local user.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Malformed JSON, a missing or unknown field, a NUL character, \
                                      a username over 64 bytes or a password over 1024 bytes, \
                                      or local login is off", body = ErrorBody),
        (status = 401, description = "Wrong username or password, or a disabled account", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 413, description = common::TOO_LARGE, body = ErrorBody),
        (status = 415, description = common::NOT_JSON, body = ErrorBody),
        (status = 429, description = "Too many attempts from this address or for this user name, \
                                      or too many logins waiting (code `rate_limited`)",
         body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait before trying again (whole seconds, rounded up; at least 1)"))),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(req): Json<LoginRequest>,
) -> AppResult<JsonResponse<LoginResponse>> {
    let keys = state.auth.keys();
    if !keys.can_issue() {
        return Err(AppError::BadRequest(
            "local login is off: tokens come from the external identity provider".into(),
        ));
    }
    if req.username.len() > 64 || req.password.len() > password::MAX_PASSWORD_BYTES {
        return Err(AppError::BadRequest(
            "username or password is too long".into(),
        ));
    }
    let _queued = state
        .login_throttle
        .admit(peer.ip(), &req.username)
        .await
        .map_err(|throttled| {
            state.chat.metrics.limit_hit(throttled.limit);
            log_refusal(Refused::Login, "rest", Some(&req.username), throttled.limit);
            AppError::RetryLater {
                message: "too many login attempts; retry later".into(),
                retry_after: throttled.retry_after,
            }
        })?;
    let user = state.chat.store.user_by_name(&req.username).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let verified = password::verify(req.password, hash).await;
    let user = match user {
        Some(user) if verified => {
            state.login_throttle.succeeded(&req.username).await;
            user
        }
        _ => {
            log_refusal(
                Refused::Login,
                "rest",
                Some(&req.username),
                "bad credentials",
            );
            return Err(AppError::Unauthorized(
                "invalid username or password".into(),
            ));
        }
    };
    if user.status == UserStatus::Disabled {
        log_refusal(Refused::Login, "rest", Some(&user.name), "disabled");
        return Err(AppError::Unauthorized("this account is disabled".into()));
    }
    let issued = keys
        .issue(&user.id, &user.name, user.role, None)
        .map_err(AppError::internal)?;
    tracing::info!(user = user.name.as_str(), "login");
    Ok(JsonResponse(LoginResponse {
        token: issued.token,
        expires_at: rfc3339(issued.expires_at as i64 * 1000),
        user: UserView {
            id: user.id,
            name: user.name,
            role: user.role,
        },
    }))
}
