//! Extractors whose rejections speak the API's error format.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::auth::{log_refusal, Authenticator, Principal, Refused};
use crate::error::AppError;
use crate::realtime::bearer;
use crate::store::nul;

/// A JSON request body; syntax, type, size and NUL problems become `AppError`s.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        if !is_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await?;
        if nul::may_be_in_json_text(&bytes) {
            let value: serde_json::Value = axum::Json::from_bytes(&bytes)?.0;
            if nul::in_json(&value) {
                return Err(AppError::BadRequest(nul::REFUSED.into()));
            }
        }
        Ok(Json(axum::Json::<T>::from_bytes(&bytes)?.0))
    }
}

/// `application/json` or `application/…+json`, as axum's own `Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some(subtype) = essence
        .split_once('/')
        .filter(|(ty, _)| ty.eq_ignore_ascii_case("application"))
        .map(|(_, sub)| sub.to_ascii_lowercase())
    else {
        return false;
    };
    subtype == "json" || subtype.ends_with("+json")
}

/// Query parameters; a percent-encoded NUL is refused before anything looks them up.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        if parts.uri.query().is_some_and(nul::in_uri) {
            return Err(AppError::BadRequest(nul::REFUSED.into()));
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// Path parameters; a percent-encoded NUL is refused.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        if nul::in_uri(parts.uri.path()) {
            return Err(AppError::BadRequest(nul::REFUSED.into()));
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

impl From<BytesRejection> for AppError {
    fn from(rejection: BytesRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge("request body is too large".into()),
            _ => AppError::BadRequest(rejection.body_text()),
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge("request body is too large".into()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                AppError::UnsupportedMediaType("expected Content-Type: application/json".into())
            }
            _ => AppError::BadRequest(rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}

/// The authenticated caller of a REST request (`Authorization: Bearer`).
pub struct Auth(pub Principal);

/// Any state that holds the authenticator (`FromRef`) can authenticate a request.
impl<S> FromRequestParts<S> for Auth
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            let reason = "missing bearer token";
            log_refusal(Refused::Token, "rest", None, reason);
            AppError::Unauthorized(reason.into())
        })?;
        Arc::<Authenticator>::from_ref(state)
            .authenticate(token, "rest")
            .await
            .map(Auth)
            .map_err(Into::into)
    }
}
