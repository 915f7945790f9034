//! RabbitMQ's error answers: a status code and `{"error": …, "reason": …}`, with the same
//! words RabbitMQ 3.10 uses, so scripts that match on them keep working.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use warren_protocol::{AmqpError, reply};

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
    /// 404 `not_found` with a reason: something an operation needs is missing (RabbitMQ:
    /// `vhost_not_found`, `no queue 'q' in vhost '/'`).
    Missing(String),
    /// 400 with RabbitMQ's reason.
    BadRequest(String),
    /// 400 with an error name of its own (pagination: `page_out_of_range` …).
    BadRequestNamed(&'static str, String),
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
            ApiError::Missing(reason) => (StatusCode::NOT_FOUND, "not_found".to_string(), reason),
            ApiError::BadRequestNamed(error, reason) => {
                (StatusCode::BAD_REQUEST, error.to_string(), reason)
            }
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

/// An AMQP refusal from a broker operation, as RabbitMQ's API reports it: the reply text
/// without its `CODE_NAME - ` prefix as the reason.
impl From<AmqpError> for ApiError {
    fn from(e: AmqpError) -> Self {
        let detail = e
            .text
            .split_once(" - ")
            .map_or(e.text.as_str(), |(_, detail)| detail)
            .to_string();
        match e.code {
            reply::ACCESS_REFUSED => ApiError::NotAuthorised("Access refused."),
            reply::NOT_FOUND => ApiError::Missing(detail),
            reply::PRECONDITION_FAILED | reply::RESOURCE_LOCKED | reply::NOT_ALLOWED => {
                ApiError::BadRequest(detail)
            }
            reply::CONNECTION_FORCED => ApiError::Missing("vhost_not_found".into()),
            _ => ApiError::Internal(detail),
        }
    }
}

/// Paths the API does not have.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}
