//! Query strings, read one way by every endpoint: a parameter an operation does not take is
//! refused (400 `unknown_query_parameter`, `field` naming it) and a value that does not
//! parse is refused (400 `invalid_query`, `field` naming the parameter) — never ignored.
//!
//! - [`refuse_unknown_parameters`]: middleware on every route. The parameters an operation
//!   takes are the `in: query` parameters the OpenAPI document ([`super::openapi::ApiDoc`])
//!   gives it, so the document and the behaviour cannot drift apart: an operation without
//!   documented parameters (a write, `GET /v1/reports/days`) refuses any.
//! - [`StrictQuery`]: the extractor of the operations that take parameters; it parses the
//!   values into the operation's query type (`#[serde(deny_unknown_fields)]`), answering a
//!   malformed value with the parameter's name.

use super::error::ApiError;
use axum::extract::{FromRequestParts, MatchedPath, Query, Request};
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

/// Code of a query parameter the operation does not take.
pub const UNKNOWN_PARAMETER_CODE: &str = "unknown_query_parameter";
/// Code of a query parameter whose value is malformed (or given twice).
pub const INVALID_QUERY_CODE: &str = "invalid_query";

/// A request's query string parsed into `T` (use `#[serde(deny_unknown_fields)]` on `T`).
///
/// # Errors (the rejection)
/// 400 `invalid_query` with the offending parameter in `field` for a value that does not
/// parse or a parameter given twice; 400 `unknown_query_parameter` for a parameter `T`
/// does not have (normally refused earlier by [`refuse_unknown_parameters`]).
#[derive(Debug)]
pub struct StrictQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| StrictQuery(value))
            .map_err(|rejection| query_error(&rejection))
    }
}

/// The answer to a query string `Query` could not parse: the parameter it names, from
/// the error axum keeps inside the rejection (a `serde_path_to_error` error over serde's
/// value error, which is what `serde_urlencoded` reports).
fn query_error(rejection: &axum::extract::rejection::QueryRejection) -> ApiError {
    use std::error::Error;
    let inner = rejection
        .source()
        .and_then(Error::source)
        .and_then(|e| e.downcast_ref::<serde_path_to_error::Error<serde::de::value::Error>>());
    let Some(inner) = inner else {
        return ApiError::bad_request(INVALID_QUERY_CODE, rejection.body_text(), None);
    };
    let path = inner.path().to_string();
    let message = inner.inner().to_string();
    parameter_error(&path, &message)
}

/// The refusal of a query string whose deserialisation failed at `path` with `message`.
fn parameter_error(path: &str, message: &str) -> ApiError {
    if let Some(name) = named_in(message, "unknown field `") {
        return unknown_parameter(&name);
    }
    let field = named_in(message, "duplicate field `")
        .or_else(|| named_in(message, "missing field `"))
        .or_else(|| (path != "." && path != "?").then(|| path.to_owned()));
    let text = match &field {
        Some(field) => format!("query parameter {field}: {message}"),
        None => format!("query string: {message}"),
    };
    ApiError::bad_request(INVALID_QUERY_CODE, text, field.as_deref())
}

/// The name serde quotes after `prefix` in `message` (`unknown field `foo`, expected …`).
fn named_in(message: &str, prefix: &str) -> Option<String> {
    message
        .strip_prefix(prefix)
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned)
}

fn unknown_parameter(name: &str) -> ApiError {
    ApiError::bad_request(
        UNKNOWN_PARAMETER_CODE,
        format!("this operation takes no query parameter {name:?} (see /openapi.json)"),
        Some(name),
    )
}

/// Per (route template, method), the query parameters the OpenAPI document gives it.
type Documented = HashMap<(String, Method), BTreeSet<String>>;

fn documented() -> &'static Documented {
    static DOCUMENTED: OnceLock<Documented> = OnceLock::new();
    DOCUMENTED.get_or_init(|| {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::OpenApi;
        let document = super::openapi::ApiDoc::openapi();
        let mut documented = Documented::new();
        for (path, item) in &document.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                let names = operation
                    .parameters
                    .iter()
                    .flatten()
                    .filter(|p| matches!(p.parameter_in, ParameterIn::Query))
                    .map(|p| p.name.clone())
                    .collect();
                documented.insert((path.clone(), method), names);
            }
        }
        documented
    })
}

/// The first parameter of `query` that `allowed` lacks (names percent-decoded).
fn first_unknown(query: &str, allowed: &BTreeSet<String>) -> Option<String> {
    let uri: axum::http::Uri = format!("/?{query}").parse().ok()?;
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&uri).ok()?;
    pairs
        .into_iter()
        .map(|(name, _)| name)
        .find(|name| !allowed.contains(name))
}

/// Middleware (a route layer: it needs the matched route): refuses a request carrying a
/// query parameter its operation does not take, before the handler runs — 400
/// `unknown_query_parameter` naming it in `field`; nothing changes. The operations are
/// those of the OpenAPI document; a route it does not describe (`/openapi.json`) takes
/// none.
pub async fn refuse_unknown_parameters(request: Request, next: Next) -> Response {
    if let Some(query) = request.uri().query().filter(|q| !q.is_empty()) {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned());
        if let Some(route) = route {
            let method = if request.method() == Method::HEAD {
                Method::GET
            } else {
                request.method().clone()
            };
            let none = BTreeSet::new();
            let allowed = documented().get(&(route, method)).unwrap_or(&none);
            if let Some(name) = first_unknown(query, allowed) {
                return unknown_parameter(&name).into_response();
            }
        }
    }
    next.run(request).await
}

/// The 400 answers of the query checks, in the OpenAPI document of every operation (from
/// this one place, as [`super::write_bar::WriteBarDoc`] does for the write bar).
pub struct QueryDoc;

/// The 400 answers of the query checks, as documented.
pub const QUERY_400: &str = "`unknown_query_parameter`: a query parameter the operation does not take (`field` names it); `invalid_query`: a malformed query value (`field` names the parameter). Nothing changed";

impl utoipa::Modify for QueryDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, RefOr, Response};
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                match responses.get_mut("400") {
                    Some(RefOr::T(response)) => {
                        if !response.description.is_empty() {
                            response.description.push_str("; ");
                        }
                        response.description.push_str(QUERY_400);
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        let mut response = Response::new(QUERY_400);
                        response.content.insert(
                            "application/json".to_owned(),
                            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                        );
                        responses.insert("400".to_owned(), RefOr::T(response));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Uri;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Listing {
        #[serde(default)]
        after_seq: u64,
        #[serde(default)]
        limit: Option<usize>,
    }

    fn refusal(uri: &str) -> (u16, &'static str, Option<String>) {
        let uri: Uri = uri.parse().expect("uri");
        let rejection = Query::<Listing>::try_from_uri(&uri).expect_err("refused");
        let error = query_error(&rejection);
        (error.status.as_u16(), error.code, error.field)
    }

    /// Every way a query string is wrong names the parameter in `field`.
    #[test]
    fn every_query_error_names_its_parameter() {
        let field = |name: &str| Some(name.to_owned());
        assert_eq!(
            refusal("/v1/sales?after_seq=-1"),
            (400, INVALID_QUERY_CODE, field("after_seq"))
        );
        assert_eq!(
            refusal("/v1/sales?limit=ten"),
            (400, INVALID_QUERY_CODE, field("limit"))
        );
        assert_eq!(
            refusal("/v1/sales?limit=1&limit=2"),
            (400, INVALID_QUERY_CODE, field("limit"))
        );
        assert_eq!(
            refusal("/v1/sales?colour=red"),
            (400, UNKNOWN_PARAMETER_CODE, field("colour"))
        );
    }

    /// The parameters an operation takes are read from the OpenAPI document: the listings
    /// take theirs, `GET /v1/reports/days` and the writes none.
    #[test]
    fn documented_parameters_come_from_the_openapi_document() {
        let get = |route: &str| documented().get(&(route.to_owned(), Method::GET));
        let names =
            |set: Option<&BTreeSet<String>>| set.map(|s| s.iter().cloned().collect::<Vec<_>>());
        assert_eq!(
            names(get("/v1/sales")),
            Some(vec![
                "after_seq".to_owned(),
                "business_date".to_owned(),
                "device".to_owned(),
                "limit".to_owned()
            ])
        );
        assert_eq!(names(get("/v1/orders")), Some(vec!["status".to_owned()]));
        assert_eq!(names(get("/v1/reports/days")), Some(vec![]));
        let post = documented().get(&("/v1/sales".to_owned(), Method::POST));
        assert_eq!(names(post), Some(vec![]));
        let allowed = get("/v1/sales").expect("documented");
        assert_eq!(first_unknown("limit=2&after_seq=1", allowed), None);
        assert_eq!(
            first_unknown("limit=2&dry%5Frun=1", allowed).as_deref(),
            Some("dry_run")
        );
    }
}
