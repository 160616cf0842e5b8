//! `GET /v1/forecast`: a keyset page of `V_FORECAST` as JSON or CSV, with a strong ETag
//! over the page so an unchanged page costs the client nothing (304).

use std::sync::Arc;

use axum::{
    Extension,
    body::Body,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{
    ReaderState,
    auth::Caller,
    cache::{Coding, RenderedPage},
    csv,
    params::{Params, encode_cursor, forecast_cursor},
    problem::ApiError,
};
use crate::domain::forecast::{ForecastQuery, ForecastRow, SkuId};

#[derive(Serialize)]
struct ForecastPage<'a> {
    items: &'a [ForecastRow],
    next_cursor: Option<String>,
}

/// Bodies smaller than this are sent as they are: compressing them saves nothing.
const MIN_COMPRESSED_BYTES: usize = 1024;

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
    let render = async {
        let page = state.store.forecast(&caller.tenant, &query).await?;
        render(&page.items, page.more, as_csv)
    };
    let page = match &state.cache {
        Some(cache) => {
            let key = cache_key(&query, as_csv);
            let (page, _) = cache
                .page(&caller.tenant, &key, query.show_manual, render)
                .await?;
            page
        }
        None => Arc::new(render.await?),
    };
    Ok(respond(&page, &headers))
}

/// The page's bytes, as JSON or CSV.
fn render(items: &[ForecastRow], more: bool, as_csv: bool) -> crate::error::Result<RenderedPage> {
    let next_cursor = more
        .then(|| items.last())
        .flatten()
        .map(|row| encode_cursor(&(row.cell.sku_id.as_str(), row.cell.date.to_string())));
    if as_csv {
        return Ok(RenderedPage::new(
            csv::TEXT_CSV,
            csv::write_forecast(items)?,
            next_cursor,
        ));
    }
    let body = serde_json::to_vec(&ForecastPage {
        items,
        next_cursor: next_cursor.clone(),
    })?;
    Ok(RenderedPage::new("application/json", body, next_cursor))
}

/// Everything that selects the page, unambiguously (JSON: SKU ids may hold any character).
fn cache_key(query: &ForecastQuery, as_csv: bool) -> String {
    let after = query
        .after
        .as_ref()
        .map(|cell| (cell.sku_id.as_str(), cell.date.to_string()));
    serde_json::json!([
        as_csv,
        query.sku_id.as_ref().map(SkuId::as_str),
        query.range.from.to_string(),
        query.range.to.to_string(),
        query.show_manual,
        query.limit,
        after,
    ])
    .to_string()
}

/// The coding to send: brotli, else gzip, when the client accepts it (`q` > 0) and the
/// body is worth it.
fn negotiate(headers: &HeaderMap, body_len: usize) -> Option<Coding> {
    if body_len < MIN_COMPRESSED_BYTES {
        return None;
    }
    let accepted: Vec<&str> = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next()?;
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (!refused).then_some(coding)
        })
        .collect();
    [Coding::Brotli, Coding::Gzip].into_iter().find(|coding| {
        accepted
            .iter()
            .any(|a| a.eq_ignore_ascii_case(coding.token()))
    })
}

/// 304 when `If-None-Match` names the page's ETag, else 200 with the page, compressed when
/// the client accepts it. Each coding is its own representation with its own strong ETag.
/// The page must be revalidated on every use (`no-cache`): an edit changes it at once.
fn respond(page: &RenderedPage, headers: &HeaderMap) -> Response {
    let coding = negotiate(headers, page.body.len());
    let etag = match coding {
        Some(coding) => format!("\"{}-{}\"", page.digest, coding.token()),
        None => format!("\"{}\"", page.digest),
    };
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
        let body = match coding {
            Some(coding) => page.encoded(coding),
            None => page.body.clone(),
        };
        let mut response = Response::new(Body::from(body));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(page.media));
        if let Some(coding) = coding {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.token()),
            );
        }
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
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(value) = page
        .next_cursor
        .as_deref()
        .and_then(|cursor| HeaderValue::from_str(cursor).ok())
    {
        headers.insert("x-next-cursor", value);
    }
    response
}
