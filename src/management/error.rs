//! RabbitMQ's error answers: a status code and `{"error": …, "reason": …}`, with the same
//! words RabbitMQ 3.10 uses, so scripts that match on them keep working.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::broker::tenancy::TenancyError;

#[derive(Debug)]
pub enum ApiError {
    /// 401 with a `WWW-Authenticate` challenge and no body: the request had no credentials.
    NoCredentials,
    /// 401 `not_authorized` with a `WWW-Authenticate` challenge: wrong credentials, or a user
    /// without any management tag.
    LoginFailed(&'static str),
    /// 401 `not_authorised` (RabbitMQ's spelling here), no challenge: a user whose tags or
    /// permissions do not allow the call.
    NotAuthorised(&'static str),
    /// 404 for an object (vhost, user, permission …) that does not exist.
    NotFound,
    /// 400 with RabbitMQ's reason.
    BadRequest(String),
    /// 500: the store could not commit the change (nothing changed).
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, reason) = match self {
            ApiError::NoCredentials => return challenge(StatusCode::UNAUTHORIZED.into_response()),
            ApiError::LoginFailed(reason) => {
                let body = json!({"error": "not_authorized", "reason": reason});
                return challenge((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response());
            }
            ApiError::NotAuthorised(reason) => (
                StatusCode::UNAUTHORIZED,
                "not_authorised".to_string(),
                reason.to_string(),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "Object Not Found".to_string(),
                "Not Found".to_string(),
            ),
            ApiError::BadRequest(reason) => {
                (StatusCode::BAD_REQUEST, "bad_request".to_string(), reason)
            }
            ApiError::Internal(reason) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error".to_string(),
                reason,
            ),
        };
        (
            status,
            axum::Json(json!({"error": error, "reason": reason})),
        )
            .into_response()
    }
}

/// Adds RabbitMQ's basic-auth challenge to a 401.
fn challenge(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""),
    );
    response
}

impl From<TenancyError> for ApiError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::NotFound(_) => ApiError::NotFound,
            TenancyError::Invalid(reason) => ApiError::BadRequest(reason),
            TenancyError::Store(reason) => ApiError::Internal(reason),
        }
    }
}

/// Paths the API does not have.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
