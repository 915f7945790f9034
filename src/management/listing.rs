//! RabbitMQ's list parameters, for every GET: `columns=` (keep only these keys, dotted paths
//! for nested ones, on lists and single objects alike), `sort=` / `sort_reverse=`, and
//! pagination (`page`, `page_size` up to 500, `name` filtered as a case-insensitive substring
//! or, with `use_regex=true`, a regular expression), answered in RabbitMQ's paged shape
//! (`items`, `page`, `page_count`, `filtered_count`, …) with its errors.
//!
//! A middleware: handlers build whole answers, and this reshapes them. It never changes what
//! a handler decides (status, errors): only successful JSON answers are reshaped.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::ApiError;

const MAX_PAGE_SIZE: u64 = 500;
const DEFAULT_PAGE_SIZE: u64 = 100;
/// Answers larger than this are passed on as they are (nothing the API lists gets near it).
const MAX_RESHAPED_BYTES: usize = 256 << 20;

/// What a request asks of a list.
#[derive(Default)]
struct Wanted {
    columns: Option<Vec<Vec<String>>>,
    sort: Option<Vec<String>>,
    reverse: bool,
    page: Option<Page>,
}

struct Page {
    number: u64,
    size: u64,
    name: Option<String>,
    regex: bool,
}

/// RabbitMQ's 400s for pagination parameters.
fn invalid(error: &'static str, reason: String) -> ApiError {
    ApiError::BadRequestNamed(error, reason)
}

fn wanted(query: &HashMap<String, String>) -> Result<Wanted, ApiError> {
    let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
    let mut w = Wanted {
        columns: query
            .get("columns")
            .map(|c| c.split(',').filter(|c| !c.is_empty()).map(path).collect()),
        sort: query.get("sort").filter(|s| !s.is_empty()).map(|s| path(s)),
        reverse: query.get("sort_reverse").is_some_and(|r| r == "true"),
        page: None,
    };
    if query.contains_key("page") || query.contains_key("page_size") {
        let number = query.get("page").map(|p| p.parse::<u64>());
        let size = query.get("page_size").map(|p| p.parse::<u64>());
        let (number, size) = match (number, size) {
            (Some(Err(_)), _) | (_, Some(Err(_))) => {
                return Err(ApiError::BadRequest(
                    "Pagination parameters are invalid".into(),
                ));
            }
            (number, size) => (number.and_then(Result::ok), size.and_then(Result::ok)),
        };
        let shown_size = size.map_or("undefined".to_string(), |s| s.to_string());
        let page = number.unwrap_or(1);
        let size_ok = size.is_none_or(|s| (1..=MAX_PAGE_SIZE).contains(&s));
        if page == 0 || !size_ok {
            return Err(invalid(
                "invalid_pagination_parameters",
                format!(
                    "Invalid pagination parameters: page number {page}, page size {shown_size}"
                ),
            ));
        }
        w.page = Some(Page {
            number: page,
            size: size.unwrap_or(DEFAULT_PAGE_SIZE),
            name: query.get("name").filter(|n| !n.is_empty()).cloned(),
            regex: query.get("use_regex").is_some_and(|r| r == "true"),
        });
    }
    Ok(w)
}

/// The middleware: reshapes a successful JSON answer to a GET as its query asks.
pub async fn reshape(request: Request, next: Next) -> Response {
    let Ok(Query(query)) = Query::<HashMap<String, String>>::try_from_uri(request.uri()) else {
        return next.run(request).await;
    };
    let wanted = match wanted(&query) {
        Ok(w) => w,
        Err(refused) => return refused.into_response(),
    };
    let asks = wanted.columns.is_some() || wanted.sort.is_some() || wanted.page.is_some();
    if request.method() != Method::GET || !asks {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_RESHAPED_BYTES).await else {
        return ApiError::Internal("answer too large to reshape".into()).into_response();
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    match apply(value, &wanted) {
        Ok(value) => Json(value).into_response(),
        Err(refused) => refused.into_response(),
    }
}

fn apply(value: Value, wanted: &Wanted) -> Result<Value, ApiError> {
    let Value::Array(mut items) = value else {
        return Ok(match &wanted.columns {
            Some(columns) => keep(&value, columns),
            None => value,
        });
    };
    if let Some(sort) = &wanted.sort {
        items.sort_by(|a, b| compare(at(a, sort), at(b, sort)));
        if wanted.reverse {
            items.reverse();
        }
    }
    let Some(page) = &wanted.page else {
        return Ok(Value::Array(columns(items, wanted)));
    };
    let total = items.len() as u64;
    if let Some(name) = &page.name {
        let matches = name_filter(name, page.regex)?;
        items.retain(|item| matches(item.get("name").and_then(Value::as_str).unwrap_or("")));
    }
    let filtered = items.len() as u64;
    let page_count = filtered.div_ceil(page.size);
    if page.number > page_count.max(1) {
        return Err(invalid(
            "page_out_of_range",
            format!(
                "Page out of range, page: {} page size: {}, len: {filtered}",
                page.number, page.size
            ),
        ));
    }
    let start = ((page.number - 1) * page.size) as usize;
    let items: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(page.size as usize)
        .collect();
    Ok(json!({
        "filtered_count": filtered,
        "item_count": items.len(),
        "items": columns(items, wanted),
        "page": page.number,
        "page_count": page_count,
        "page_size": page.size,
        "total_count": total,
    }))
}

fn columns(items: Vec<Value>, wanted: &Wanted) -> Vec<Value> {
    match &wanted.columns {
        Some(columns) => items.iter().map(|item| keep(item, columns)).collect(),
        None => items,
    }
}

/// `item` with only the keys `columns` names (a path keeps its parents, with only that child).
fn keep(item: &Value, columns: &[Vec<String>]) -> Value {
    let Value::Object(map) = item else {
        return item.clone();
    };
    let mut out = Map::new();
    for path in columns {
        let Some((first, rest)) = path.split_first() else {
            continue;
        };
        let Some(value) = map.get(first) else {
            continue;
        };
        if rest.is_empty() {
            out.insert(first.clone(), value.clone());
            continue;
        }
        let nested = keep(value, &[rest.to_vec()]);
        match (out.get_mut(first), nested) {
            (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
            (None, nested) => {
                out.insert(first.clone(), nested);
            }
            _ => {}
        }
    }
    Value::Object(out)
}

fn at<'a>(item: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(item, |v, key| v.get(key))
}

/// Numbers by value, strings by text, what is missing last.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Whether an item's name passes the `name` filter.
type NameFilter = Box<dyn Fn(&str) -> bool>;

/// RabbitMQ's `name` filter: a case-insensitive substring, or a regular expression (bounded:
/// it comes from the request).
fn name_filter(name: &str, regex: bool) -> Result<NameFilter, ApiError> {
    if !regex {
        let wanted = name.to_lowercase();
        return Ok(Box::new(move |n: &str| n.to_lowercase().contains(&wanted)));
    }
    let compiled = fancy_regex::RegexBuilder::new(name)
        .backtrack_limit(100_000)
        .delegate_size_limit(1 << 20)
        .build()
        .map_err(|e| ApiError::BadRequest(format!("invalid regular expression: {e}")))?;
    Ok(Box::new(move |n: &str| {
        compiled.is_match(n).unwrap_or(false)
    }))
}
