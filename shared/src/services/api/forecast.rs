//! `GET /v1/forecast`: a keyset page of `V_FORECAST` as JSON or CSV, with a strong ETag
//! over the page so an unchanged page costs the client nothing (304).

use axum::{
    Extension,
    body::Body,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    ReaderState,
    auth::Caller,
    csv,
    params::{Params, encode_cursor, forecast_cursor},
    problem::ApiError,
};
use crate::domain::forecast::{ForecastQuery, ForecastRow};

#[derive(Serialize)]
struct ForecastPage<'a> {
    items: &'a [ForecastRow],
    next_cursor: Option<String>,
}

/// The handler.
pub async fn get_forecast(
    State(state): State<ReaderState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref())?;
    let as_csv = params.csv_format()?;
    let query = ForecastQuery {
        sku_id: params.sku()?,
        range: params.range()?,
        show_manual: params.flag("show_manual", true)?,
        limit: params.limit()?,
        after: forecast_cursor(params.cursor()?)?,
    };
    let page = state.store.forecast(&caller.tenant, &query).await?;
    let next_cursor = page
        .more
        .then(|| page.items.last())
        .flatten()
        .map(|row| encode_cursor(&(row.cell.sku_id.as_str(), row.cell.date.to_string())));
    let (body, media) = if as_csv {
        (csv::write_forecast(&page.items)?, csv::TEXT_CSV)
    } else {
        let page = ForecastPage {
            items: &page.items,
            next_cursor: next_cursor.clone(),
        };
        (
            serde_json::to_vec(&page).map_err(crate::error::Error::from)?,
            "application/json",
        )
    };
    Ok(with_etag(body, media, next_cursor.as_deref(), &headers))
}

/// A strong validator of the page's bytes.
fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("\"{hex}\"")
}

/// 304 when `If-None-Match` names the page's ETag, else 200 with the page. The page must
/// be revalidated on every use (`no-cache`): an edit changes it at once.
fn with_etag(
    body: Vec<u8>,
    media: &'static str,
    next_cursor: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let etag = etag_of(&body);
    let matched = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let mut response = if matched {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(body));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Some(value) = next_cursor.and_then(|cursor| HeaderValue::from_str(cursor).ok()) {
        headers.insert("x-next-cursor", value);
    }
    response
}
