//! `/chat/sessions…`: create, list, read, update, end; history, assistant context, members.
//! Handlers stay thin: validate input, check access, call the store or `chat`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as JsonResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::UserView;
use super::common;
use super::extract::{Auth, Json, Path, Query};
use crate::chat::{Chat, ChatError};
use crate::config::SessionsConfig;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::state::AppState;
use crate::store::{
    Access, Message, Session, SessionMember, SessionPatch, SessionStatus, SessionSummary,
};

/// Most items one page may hold (`limit`).
pub const MAX_PAGE: i64 = 500;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// Trimmed of surrounding whitespace, then 1 to `sessions.max_title_chars` (200 by
    /// default) characters, with no control characters; the trimmed title is stored.
    /// `maxLength` states the default limit.
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    /// A JSON object of at most `sessions.max_metadata_bytes` (16 KiB by default) of JSON.
    /// `null` or absent: `{}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// At least one of `title` and `metadata`, not `null`; otherwise 400 ("nothing to update").
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSession {
    /// The same rules as on create: trimmed, then 1 to `sessions.max_title_chars` (200 by
    /// default) characters, no control characters. `null` or absent: unchanged.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    title: Option<String>,
    /// Replaces the whole metadata object (at most `sessions.max_metadata_bytes`, 16 KiB by
    /// default, of JSON). `null` or absent: unchanged.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many sessions to return; 0 answers an empty page (useful for `total`).
    #[param(minimum = 0, maximum = 500, default = 50)]
    limit: Option<i64>,
    /// How many to skip.
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
    /// `active`, `ended` or `all` (the default; an empty value means `all` too).
    #[param(schema_with = status_filter)]
    status: Option<String>,
}

/// `ListParams.status` as a string enum. (With `schema_with` the parameter takes no doc
/// comment, so the schema carries the description.)
fn status_filter() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["active", "ended", "all"]))
        .default(Some(Value::from("all")))
        .description(Some(
            "Which sessions: `active`, `ended` or `all` (the default; an empty value means `all` too)",
        ))
        .into()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesParams {
    /// How many messages to return. A page also stops at about `sessions.max_page_bytes`
    /// (1 MiB by default) of messages, always holding at least one; then `has_more` is true.
    #[param(minimum = 0, maximum = 500, default = 100)]
    limit: Option<i64>,
    /// How many to skip.
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
    /// Only messages with a greater `seq`.
    #[param(minimum = 0, default = 0)]
    after_seq: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContextParams {
    /// At most this many of the latest messages.
    #[param(minimum = 0, maximum = 500, default = 20)]
    max_messages: Option<i64>,
}

/// Exactly one of `user_id` and `username`, not `null` (neither or both gets 400).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionSummary>,
    total: i64,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersParams {
    /// How many people to return; 0 answers an empty page (useful for `total`).
    #[param(minimum = 0, maximum = 500, default = 500)]
    limit: Option<i64>,
    /// How many to skip.
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberList {
    #[schema(format = "uuid")]
    session_id: String,
    /// The owner first, then members by name.
    members: Vec<SessionMember>,
    /// Everyone in the session, the owner included, not just this page.
    total: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MessagePage {
    #[serde(serialize_with = "crate::protocol::message::serialize_all")]
    #[schema(value_type = Vec<crate::protocol::WireMessage>)]
    messages: Vec<Message>,
    has_more: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ContextMessage {
    #[schema(schema_with = context_role)]
    role: &'static str,
    content: String,
}

/// `ContextMessage.role` as a string enum: the context leaves command messages out.
fn context_role() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["user", "assistant", "system"]))
        .description(Some(
            "Who wrote it. Command invocations and replies are left out",
        ))
        .into()
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Context {
    messages: Vec<ContextMessage>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberAdded {
    #[schema(format = "uuid")]
    session_id: String,
    user: UserView,
}

#[utoipa::path(
    post,
    path = "/chat/sessions",
    tag = "sessions",
    security(("bearer" = [])),
    request_body = CreateSession,
    responses(
        (status = 201, description = "Created", body = Session),
        (status = 400, description = "Malformed JSON, a missing or unknown field, a NUL character, \
                                      an invalid title, or metadata that is not an object or is \
                                      too large", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 409, description = "The caller owns `sessions.max_owned_per_user` (1000 by default) active sessions", body = ErrorBody),
        (status = 413, description = common::TOO_LARGE, body = ErrorBody),
        (status = 415, description = common::NOT_JSON, body = ErrorBody),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Json(req): Json<CreateSession>,
) -> AppResult<(StatusCode, JsonResponse<Session>)> {
    let limits = &state.config.sessions;
    let title = valid_title(&req.title, limits)?;
    let metadata =
        valid_metadata(req.metadata, limits)?.unwrap_or_else(|| Value::Object(Default::default()));
    let session = state
        .chat
        .store
        .create_session(&caller.id, title, &metadata, limits.max_owned_per_user)
        .await?
        .ok_or_else(|| {
            AppError::Conflict(format!(
                "you own {} active sessions, the most allowed: end one first",
                limits.max_owned_per_user
            ))
        })?;
    Ok((StatusCode::CREATED, JsonResponse(session)))
}

#[utoipa::path(
    get,
    path = "/chat/sessions",
    tag = "sessions",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "The caller's sessions, newest activity first", body = SessionList),
        (status = 400, description = "`limit` or `offset` out of range or not a number, an unknown `status`, or a NUL character", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<ListParams>,
) -> AppResult<JsonResponse<SessionList>> {
    let (limit, offset) = page(params.limit, params.offset, 50)?;
    let status = match params.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some("active") => Some(SessionStatus::Active),
        Some("ended") => Some(SessionStatus::Ended),
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "status must be active, ended or all, not {other:?}"
            )))
        }
    };
    let (sessions, total) = state
        .chat
        .store
        .list_sessions(&caller.id, status, limit, offset)
        .await?;
    Ok(JsonResponse(SessionList { sessions, total }))
}

#[utoipa::path(
    get,
    path = "/chat/sessions/{id}",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "Session id (a UUID; anything else gets 400)")),
    responses(
        (status = 200, description = "The session", body = Session),
        (status = 400, description = "Malformed id (not a UUID, or a NUL character)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such session, or not the caller's", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn get(
    State(chat): State<Chat>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> AppResult<JsonResponse<Session>> {
    let (session, _) = chat.visible_session(&caller.id, &id).await?;
    Ok(JsonResponse(session))
}

#[utoipa::path(
    put,
    path = "/chat/sessions/{id}",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "Session id (a UUID; anything else gets 400)")),
    request_body = UpdateSession,
    responses(
        (status = 200, description = "Updated", body = Session),
        (status = 400, description = "Malformed id, malformed JSON, an unknown field, a NUL \
                                      character, an invalid title or metadata, or nothing to \
                                      update (neither `title` nor `metadata`, or both `null`)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A member, not the owner", body = ErrorBody),
        (status = 404, description = "No such session, or not the caller's", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 409, description = "The session has ended", body = ErrorBody),
        (status = 413, description = common::TOO_LARGE, body = ErrorBody),
        (status = 415, description = common::NOT_JSON, body = ErrorBody),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateSession>,
) -> AppResult<JsonResponse<Session>> {
    let session = owned_session(&state.chat, &caller.id, &id).await?;
    let limits = &state.config.sessions;
    let patch = SessionPatch {
        title: req
            .title
            .as_deref()
            .map(|t| valid_title(t, limits))
            .transpose()?
            .map(str::to_string),
        metadata: valid_metadata(req.metadata, limits)?,
    };
    if patch.title.is_none() && patch.metadata.is_none() {
        return Err(AppError::BadRequest(
            "nothing to update: send title and/or metadata".into(),
        ));
    }
    if session.status == SessionStatus::Ended {
        return Err(ChatError::Ended.into());
    }
    let updated = state
        .chat
        .store
        .update_session(&id, &patch)
        .await?
        .ok_or(ChatError::Ended)?;
    Ok(JsonResponse(updated))
}

#[utoipa::path(
    delete,
    path = "/chat/sessions/{id}",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "Session id (a UUID; anything else gets 400)")),
    responses(
        (status = 200, description = "Ended (idempotent); the session is kept", body = Session),
        (status = 400, description = "Malformed id (not a UUID, or a NUL character)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A member, not the owner", body = ErrorBody),
        (status = 404, description = "No such session, or not the caller's", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn end(
    State(chat): State<Chat>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> AppResult<JsonResponse<Session>> {
    owned_session(&chat, &caller.id, &id).await?;
    Ok(JsonResponse(chat.end_session(&id).await?))
}

#[utoipa::path(
    get,
    path = "/chat/sessions/{id}/messages",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "Session id (a UUID; anything else gets 400)"), MessagesParams),
    responses(
        (status = 200, description = "History, oldest first", body = MessagePage),
        (status = 400, description = "Malformed id, `limit`, `offset` or `after_seq` out of range \
                                      or not a number, or a NUL character", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such session, or not the caller's", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn messages(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(params): Query<MessagesParams>,
) -> AppResult<JsonResponse<MessagePage>> {
    state.chat.visible_session(&caller.id, &id).await?;
    let (limit, offset) = page(params.limit, params.offset, 100)?;
    let after_seq = non_negative("after_seq", params.after_seq.unwrap_or(0))?;
    let (messages, has_more) = state
        .chat
        .store
        .messages_page(
            &id,
            after_seq,
            limit,
            offset,
            state.config.sessions.max_page_bytes,
        )
        .await?;
    Ok(JsonResponse(MessagePage { messages, has_more }))
}

#[utoipa::path(
    get,
    path = "/chat/sessions/{id}/context",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "Session id (a UUID; anything else gets 400)"), ContextParams),
    responses(
        (status = 200, description = "What the assistant would see, oldest first", body = Context),
        (status = 400, description = "Malformed id, `max_messages` out of range or not a number, \
                                      or a NUL character", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such session, or not the caller's", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn context(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(params): Query<ContextParams>,
) -> AppResult<JsonResponse<Context>> {
    state.chat.visible_session(&caller.id, &id).await?;
    let max = params.max_messages.unwrap_or(20);
    if !(0..=MAX_PAGE).contains(&max) {
        return Err(AppError::BadRequest(format!(
            "max_messages must be between 0 and {MAX_PAGE}"
        )));
    }
    let messages = state
        .chat
        .store
        .context_messages(&id, max)
        .await?
        .into_iter()
        .map(|m| ContextMessage {
            role: m.role.as_str(),
            content: m.content,
        })
        .collect();
    Ok(JsonResponse(Context { messages }))
}

#[utoipa::path(
    get,
    path = "/chat/sessions/{id}/members",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "Session id (a UUID; anything else gets 400)"), MembersParams),
    responses(
        (status = 200, description = "Who is in the session: names, roles, owner or member", body = MemberList),
        (status = 400, description = "Malformed id, `limit` or `offset` out of range or not a \
                                      number, or a NUL character", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such session, or not the caller's", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn members(
    State(chat): State<Chat>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(params): Query<MembersParams>,
) -> AppResult<JsonResponse<MemberList>> {
    chat.visible_session(&caller.id, &id).await?;
    let (limit, offset) = page(params.limit, params.offset, MAX_PAGE)?;
    let (members, total) = chat.store.members(&id, limit, offset).await?;
    Ok(JsonResponse(MemberList {
        session_id: id,
        members,
        total,
    }))
}

#[utoipa::path(
    post,
    path = "/chat/sessions/{id}/members",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "Session id (a UUID; anything else gets 400)")),
    request_body = AddMember,
    responses(
        (status = 201, description = "Added; also answered (idempotent, nothing changes) when the \
                                      user is already a member", body = MemberAdded),
        (status = 400, description = "Malformed id, malformed JSON, an unknown field, a NUL \
                                      character, neither or both of `user_id` and `username`, \
                                      or the user is the owner", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A member, not the owner", body = ErrorBody),
        (status = 404, description = "No such session (or not the caller's), or no such user", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 409, description = "The session has ended", body = ErrorBody),
        (status = 413, description = common::TOO_LARGE, body = ErrorBody),
        (status = 415, description = common::NOT_JSON, body = ErrorBody),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn add_member(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Json(req): Json<AddMember>,
) -> AppResult<(StatusCode, JsonResponse<MemberAdded>)> {
    let session = owned_session(&state.chat, &caller.id, &id).await?;
    if session.status == SessionStatus::Ended {
        return Err(ChatError::Ended.into());
    }
    let user = match (req.user_id.as_deref(), req.username.as_deref()) {
        (Some(user_id), None) => state.chat.store.user_by_id(user_id).await?,
        (None, Some(name)) => state.chat.store.user_by_name(name).await?,
        _ => {
            return Err(AppError::BadRequest(
                "send exactly one of user_id and username".into(),
            ))
        }
    }
    .ok_or_else(|| AppError::NotFound("no such user".into()))?;
    if user.id == session.owner_id {
        return Err(AppError::BadRequest(
            "the owner is already in the session".into(),
        ));
    }
    state.chat.store.add_member(&id, &user.id).await?;
    Ok((
        StatusCode::CREATED,
        JsonResponse(MemberAdded {
            session_id: id,
            user: UserView {
                id: user.id,
                name: user.name,
                role: user.role,
            },
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/chat/sessions/{id}/members/{user_id}",
    tag = "sessions",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = "uuid", description = "Session id (a UUID; anything else gets 400)"),
        ("user_id" = String, Path, description = "The member to remove: a user id (a UUID for a \
                                                 local user; an external identity provider's \
                                                 `sub`, 1–255 bytes, for a provisioned one)"),
    ),
    responses(
        (status = 204, description = "Removed; their open sockets left the session"),
        (status = 400, description = "Malformed session id (not a UUID, or a NUL character), or \
                                      the owner cannot be removed", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "A member removing someone else", body = ErrorBody),
        (status = 404, description = "No such session (or not the caller's), or the user is not a member", body = ErrorBody),
        (status = 408, description = common::TIMED_OUT),
        (status = 500, description = common::INTERNAL,
         content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 503, description = common::AT_CAPACITY, body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait: always 1"))),
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((id, user_id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let (session, access) = state.chat.visible_session(&caller.id, &id).await?;
    if user_id == session.owner_id {
        return Err(AppError::BadRequest(
            "the owner cannot be removed from their session".into(),
        ));
    }
    if access == Access::Member && user_id != caller.id {
        return Err(AppError::Forbidden(
            "only the session's owner may remove other members".into(),
        ));
    }
    if !state.chat.store.remove_member(&id, &user_id).await? {
        return Err(AppError::NotFound("no such member".into()));
    }
    state.chat.hub.expel(&id, &user_id);
    Ok(StatusCode::NO_CONTENT)
}

/// The session if the caller owns it. Members may read but not change it (403); anyone
/// else gets 404.
async fn owned_session(chat: &Chat, user_id: &str, id: &str) -> AppResult<Session> {
    match chat.visible_session(user_id, id).await? {
        (session, Access::Owner) => Ok(session),
        (_, Access::Member) => Err(AppError::Forbidden(
            "only the session's owner may do that".into(),
        )),
    }
}

fn valid_title<'a>(title: &'a str, limits: &SessionsConfig) -> AppResult<&'a str> {
    let title = title.trim();
    if title.is_empty() {
        return Err(AppError::BadRequest("title must not be empty".into()));
    }
    if title.chars().count() > limits.max_title_chars {
        return Err(AppError::BadRequest(format!(
            "title must be at most {} characters",
            limits.max_title_chars
        )));
    }
    if title.chars().any(char::is_control) {
        return Err(AppError::BadRequest(
            "title must not contain control characters".into(),
        ));
    }
    Ok(title)
}

fn valid_metadata(metadata: Option<Value>, limits: &SessionsConfig) -> AppResult<Option<Value>> {
    match metadata {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            let value = Value::Object(map);
            if value.to_string().len() > limits.max_metadata_bytes {
                return Err(AppError::BadRequest(format!(
                    "metadata must be at most {} bytes of JSON",
                    limits.max_metadata_bytes
                )));
            }
            Ok(Some(value))
        }
        Some(_) => Err(AppError::BadRequest(
            "metadata must be a JSON object".into(),
        )),
    }
}

/// `limit` in 0..=500 (0 answers an empty page, useful for `total`), `offset` ≥ 0.
pub(super) fn page(
    limit: Option<i64>,
    offset: Option<i64>,
    default_limit: i64,
) -> AppResult<(i64, i64)> {
    let limit = limit.unwrap_or(default_limit);
    if !(0..=MAX_PAGE).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit must be between 0 and {MAX_PAGE}"
        )));
    }
    Ok((limit, non_negative("offset", offset.unwrap_or(0))?))
}

fn non_negative(name: &str, value: i64) -> AppResult<i64> {
    if value < 0 {
        return Err(AppError::BadRequest(format!("{name} must be 0 or more")));
    }
    Ok(value)
}
