//! The edit routes: one cell (`PUT`/`DELETE /v1/edits/{sku_id}/{date}`, versioned with
//! ETags), an atomic batch (`POST /v1/edits`, JSON or CSV), the edits of a range and their
//! history. Everything is validated before the store is called.

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    EditorState,
    auth::Caller,
    csv,
    params::{Params, bad, encode_cursor},
    problem::ApiError,
};
use crate::{
    domain::forecast::{
        Cell, Edit, EditInput, EditsQuery, HistoryEntry, HistoryQuery, MAX_BATCH, MAX_EDITS_LISTED,
        Note, Quantity, SkuId, Version, parse_date,
    },
    ports::forecast::{PutOutcome, RevertOutcome},
};

/// `PUT` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    quantity: serde_json::Value,
    #[serde(default)]
    note: Option<String>,
}

/// One edit of a `POST` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    sku_id: String,
    date: String,
    quantity: serde_json::Value,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    edits: Vec<BatchItem>,
}

#[derive(Serialize)]
struct BatchResult {
    items: Vec<Edit>,
    applied: usize,
    unchanged: usize,
    skipped: usize,
}

#[derive(Serialize)]
struct EditList {
    items: Vec<Edit>,
}

#[derive(Serialize)]
struct HistoryPage {
    items: Vec<HistoryEntry>,
    next_cursor: Option<String>,
}

fn cell(sku: &str, date: &str) -> Result<Cell, ApiError> {
    Ok(Cell {
        sku_id: SkuId::new(sku).map_err(bad)?,
        date: parse_date("date", date).map_err(bad)?,
    })
}

fn input(
    cell: Cell,
    quantity: &serde_json::Value,
    note: Option<&str>,
) -> Result<EditInput, ApiError> {
    Ok(EditInput {
        cell,
        quantity: Quantity::from_json(quantity).map_err(bad)?,
        note: note.map(Note::new).transpose().map_err(bad)?,
    })
}

/// Parses a JSON body, after checking its media type (JSON, or none given).
pub(super) fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let media = media_type(headers);
    if !(media.is_empty() || media == "application/json" || media.ends_with("+json")) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the body must be application/json, not {media}"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::BadRequest(format!("invalid JSON body: {error}")))
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// `If-Match: "<version>"` (`*`, or no header: no condition).
fn if_match(headers: &HeaderMap) -> Result<Option<Version>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .and_then(|version| version.parse::<Version>().ok())
        .filter(|version| *version >= 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid If-Match: {text:?} is not one strong ETag such as \"3\" (the cell's version)"
            ))
        })
}

fn versioned(status: StatusCode, version: Version, body: Option<&Edit>) -> Response {
    let mut response = match body {
        Some(edit) => (status, Json(edit)).into_response(),
        None => status.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// `PUT /v1/edits/{sku_id}/{date}`.
pub async fn put_edit(
    State(state): State<EditorState>,
    Extension(caller): Extension<Caller>,
    Path((sku, date)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let cell = cell(&sku, &date)?;
    let expected = if_match(&headers)?;
    let body: EditBody = json_body(&headers, &body)?;
    let edit = input(cell, &body.quantity, body.note.as_deref())?;
    match state
        .edits
        .put_edit(&caller.tenant, &caller.user, &edit, expected)
        .await?
    {
        PutOutcome::Applied(edit) | PutOutcome::Unchanged(edit) => {
            Ok(versioned(StatusCode::OK, edit.version, Some(&edit)))
        }
        PutOutcome::Stale { current } => Err(ApiError::StaleVersion { current }),
    }
}

/// `DELETE /v1/edits/{sku_id}/{date}`: back to the draft.
pub async fn delete_edit(
    State(state): State<EditorState>,
    Extension(caller): Extension<Caller>,
    Path((sku, date)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cell = cell(&sku, &date)?;
    let expected = if_match(&headers)?;
    match state
        .edits
        .revert_edit(&caller.tenant, &caller.user, &cell, expected)
        .await?
    {
        RevertOutcome::Reverted => Ok(versioned(StatusCode::NO_CONTENT, 0, None)),
        RevertOutcome::NotFound => Err(ApiError::NotFound(format!(
            "no edit on {} for {}",
            cell.date,
            cell.sku_id.as_str()
        ))),
        RevertOutcome::Stale { current } => Err(ApiError::StaleVersion { current }),
    }
}

/// `POST /v1/edits`: up to [`MAX_BATCH`] edits, all or nothing.
pub async fn post_edits(
    State(state): State<EditorState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (edits, skipped) = if media_type(&headers) == "text/csv" {
        let found = csv::read_edits(&body)?;
        (found.edits, found.skipped)
    } else {
        (batch_of(json_body(&headers, &body)?)?, 0)
    };
    check_batch(&edits)?;
    let outcomes = state
        .edits
        .put_edits(&caller.tenant, &caller.user, &edits)
        .await?;
    let mut result = BatchResult {
        items: Vec::new(),
        applied: 0,
        unchanged: 0,
        skipped,
    };
    for outcome in outcomes {
        match outcome {
            PutOutcome::Applied(edit) => {
                result.applied += 1;
                result.items.push(edit);
            }
            PutOutcome::Unchanged(edit) => {
                result.unchanged += 1;
                result.items.push(edit);
            }
            PutOutcome::Stale { current } => return Err(ApiError::StaleVersion { current }),
        }
    }
    Ok(Json(result).into_response())
}

fn batch_of(body: BatchBody) -> Result<Vec<EditInput>, ApiError> {
    if body.edits.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "{} edits; a batch holds at most {MAX_BATCH}",
            body.edits.len()
        )));
    }
    body.edits
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let cell = cell(&item.sku_id, &item.date)?;
            input(cell, &item.quantity, item.note.as_deref())
                .map_err(|error| ApiError::BadRequest(format!("edits[{index}]: {error}")))
        })
        .collect()
}

/// 1..=500 edits on distinct cells.
fn check_batch(edits: &[EditInput]) -> Result<(), ApiError> {
    if edits.is_empty() {
        return Err(ApiError::BadRequest("the batch holds no edit".into()));
    }
    if edits.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "{} edits; a batch holds at most {MAX_BATCH}",
            edits.len()
        )));
    }
    let mut cells: Vec<&Cell> = edits.iter().map(|edit| &edit.cell).collect();
    cells.sort();
    if let Some(pair) = cells.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(ApiError::BadRequest(format!(
            "the batch edits {} on {} twice",
            pair[0].sku_id.as_str(),
            pair[0].date
        )));
    }
    Ok(())
}

/// `GET /v1/edits`.
pub async fn list_edits(
    State(state): State<EditorState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref())?;
    let query = EditsQuery {
        sku_id: params.sku()?,
        range: params.range()?,
        limit: MAX_EDITS_LISTED + 1,
    };
    let items = state.edits.edits(&caller.tenant, &query).await?;
    if items.len() > MAX_EDITS_LISTED {
        return Err(ApiError::BadRequest(format!(
            "more than {MAX_EDITS_LISTED} edits match; narrow the range or give a sku_id"
        )));
    }
    Ok(Json(EditList { items }).into_response())
}

/// `GET /v1/edits/history`.
pub async fn history(
    State(state): State<EditorState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref())?;
    let query = HistoryQuery {
        sku_id: params.sku()?,
        range: params.range()?,
        limit: params.limit()?,
        after: params.cursor::<i64>()?,
    };
    let page = state.edits.history(&caller.tenant, &query).await?;
    let next_cursor = page
        .more
        .then(|| page.items.last())
        .flatten()
        .map(|entry| encode_cursor(&entry.seq));
    Ok(Json(HistoryPage {
        items: page.items,
        next_cursor,
    })
    .into_response())
}
