//! The one place where errors become Prometheus API responses (`errorType` and HTTP status).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("{0}")]
    BadData(String),
    #[error("{0}")]
    Execution(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Canceled(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    NotFound(String),
}

impl ApiError {
    pub fn bad_param(name: &str, err: impl std::fmt::Display) -> ApiError {
        ApiError::BadData(format!("invalid parameter {name:?}: {err}"))
    }

    fn kind(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::BadData(_) => ("bad_data", StatusCode::BAD_REQUEST),
            ApiError::Execution(_) => ("execution", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::Timeout(_) => ("timeout", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Canceled(_) => ("canceled", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
            ApiError::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
        }
    }
}

impl From<promql::QueryError> for ApiError {
    fn from(e: promql::QueryError) -> Self {
        let msg = e.to_string();
        match e.error_type() {
            "bad_data" => ApiError::BadData(msg),
            "execution" => ApiError::Execution(msg),
            "timeout" => ApiError::Timeout(msg),
            "canceled" => ApiError::Canceled(msg),
            _ => ApiError::Internal(msg),
        }
    }
}

impl From<model::StorageError> for ApiError {
    fn from(e: model::StorageError) -> Self {
        match e {
            model::StorageError::Canceled => ApiError::Canceled(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (typ, status) = self.kind();
        let mut body = String::with_capacity(64);
        body.push_str(r#"{"status":"error","errorType":""#);
        body.push_str(typ);
        body.push_str(r#"","error":"#);
        crate::json::push_str(&mut body, &self.to_string());
        body.push('}');
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// A success envelope around pre-rendered `data` JSON.
pub fn success(data: String, warnings: &[String]) -> Response {
    let mut body = String::with_capacity(data.len() + 40);
    body.push_str(r#"{"status":"success","data":"#);
    body.push_str(&data);
    if !warnings.is_empty() {
        body.push_str(r#","warnings":"#);
        crate::json::push_str_array(&mut body, warnings);
    }
    body.push('}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
