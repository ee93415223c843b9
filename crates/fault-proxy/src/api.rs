//! The HTTP control API (for the proxy as its own process or container):
//! JSON in and out, every refusal a 4xx with `{"error": "...", "code": "..."}`
//! that says what is wrong. The endpoints are listed in docs/network-faults.md.

use crate::{Error, Fault, Proxy, RouteSpec};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

/// The control API over `proxy`.
pub fn router(proxy: Proxy) -> Router {
    Router::new()
        .route("/routes", get(list_routes).post(create_route))
        .route(
            "/routes/{route}",
            get(get_route).patch(patch_route).delete(delete_route),
        )
        .route(
            "/routes/{route}/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/routes/{route}/faults/{fault}", delete(remove_fault))
        .route("/reset", post(reset))
        .fallback(no_endpoint)
        .with_state(proxy)
}

/// A refusal: status, code and message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = match e {
            Error::UnknownRoute(_) | Error::UnknownFault { .. } => StatusCode::NOT_FOUND,
            Error::DuplicateRoute(_) | Error::DuplicateFault { .. } | Error::Bind { .. } => {
                StatusCode::CONFLICT
            }
            Error::InvalidRoute(_) | Error::InvalidFault(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError {
            status,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        // Well-formed JSON of the wrong shape (an unknown fault kind, a
        // negative delay) is 422; anything that is not JSON at all is 400.
        let (status, code) = match r {
            JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_json")
            }
            _ => (StatusCode::BAD_REQUEST, "malformed_json"),
        };
        ApiError {
            status,
            code,
            message: r.body_text(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.message, "code": self.code })),
        )
            .into_response()
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s (axum's own answer in plain text).
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(Body(v))
    }
}

type Answer<T> = Result<T, ApiError>;

async fn list_routes(State(p): State<Proxy>) -> impl IntoResponse {
    Json(p.routes())
}

async fn create_route(State(p): State<Proxy>, Body(spec): Body<RouteSpec>) -> Answer<Response> {
    let info = p.add_route(spec).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn get_route(State(p): State<Proxy>, Path(route): Path<String>) -> Answer<Response> {
    Ok(Json(p.route(&route)?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    enabled: bool,
}

async fn patch_route(
    State(p): State<Proxy>,
    Path(route): Path<String>,
    Body(patch): Body<Patch>,
) -> Answer<Response> {
    Ok(Json(p.set_enabled(&route, patch.enabled).await?).into_response())
}

async fn delete_route(State(p): State<Proxy>, Path(route): Path<String>) -> Answer<StatusCode> {
    p.remove_route(&route)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_faults(State(p): State<Proxy>, Path(route): Path<String>) -> Answer<Response> {
    Ok(Json(p.route(&route)?.faults).into_response())
}

async fn add_fault(
    State(p): State<Proxy>,
    Path(route): Path<String>,
    Body(fault): Body<Fault>,
) -> Answer<Response> {
    let name = p.add_fault(&route, fault)?;
    let added = p
        .route(&route)?
        .faults
        .into_iter()
        .find(|f| f.name.as_deref() == Some(name.as_str()));
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

async fn clear_faults(State(p): State<Proxy>, Path(route): Path<String>) -> Answer<StatusCode> {
    p.clear_faults(&route)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_fault(
    State(p): State<Proxy>,
    Path((route, fault)): Path<(String, String)>,
) -> Answer<StatusCode> {
    p.remove_fault(&route, &fault)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset(State(p): State<Proxy>) -> Answer<StatusCode> {
    p.reset().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn no_endpoint(method: Method, uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "no_endpoint",
        message: format!(
            "no endpoint {method} {uri}; see GET /routes, POST /routes, /routes/{{route}}[/faults[/{{fault}}]], POST /reset"
        ),
    }
}
