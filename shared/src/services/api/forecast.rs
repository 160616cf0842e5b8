//! `GET /v1/forecast`: a keyset page of `V_FORECAST` as JSON or CSV, with a strong ETag
//! over the page so an unchanged page costs the client nothing (304); and `GET /v1/sales`,
//! the sales beside it.

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
use crate::domain::forecast::{DailySales, ForecastQuery, ForecastRow, SalesQuery, SkuId};

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
    let page = cached(&state, &caller, cache_key(&query, as_csv), render).await?;
    Ok(respond(&page, &headers))
}

/// The page under `key` from the cache, rendered on a miss; rendered every time without a
/// cache.
async fn cached<F>(
    state: &ReaderState,
    caller: &Caller,
    key: String,
    render: F,
) -> Result<Arc<RenderedPage>, ApiError>
where
    F: std::future::Future<Output = crate::error::Result<RenderedPage>>,
{
    Ok(match &state.cache {
        Some(cache) => cache.page(&caller.tenant, &key, render).await?.0,
        None => Arc::new(render.await?),
    })
}

#[derive(Serialize)]
struct SalesPage<'a> {
    items: &'a [DailySales],
}

/// `GET /v1/sales?sku_id=&from=&to=`: a SKU's daily sales, the actuals a chart shows
/// beside the forecast; cached and revalidated like a forecast page.
pub async fn get_sales(
    State(state): State<ReaderState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref())?;
    let query = SalesQuery {
        sku_id: params
            .sku()?
            .ok_or_else(|| ApiError::BadRequest("parameter sku_id is required".into()))?,
        range: params.range()?,
    };
    let render = async {
        let items = state.store.sales(&caller.tenant, &query).await?;
        let body = serde_json::to_vec(&SalesPage { items: &items })?;
        Ok(RenderedPage::new("application/json", body, None))
    };
    // A string first: never the key of a forecast page (those start with a flag).
    let key = serde_json::json!([
        "sales",
        query.sku_id.as_str(),
        query.range.from.to_string(),
        query.range.to.to_string(),
    ])
    .to_string();
    let page = cached(&state, &caller, key, render).await?;
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

/// The coding to send: of brotli and gzip, the one the client weighs highest (`q`, 1 by
/// default; 0 refuses it), brotli on a tie, when the body is worth compressing.
fn negotiate(headers: &HeaderMap, body_len: usize) -> Option<Coding> {
    if body_len < MIN_COMPRESSED_BYTES {
        return None;
    }
    let weight = |coding: Coding| -> f32 {
        headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|item| {
                let mut parts = item.split(';').map(str::trim);
                let token = parts.next()?;
                token.eq_ignore_ascii_case(coding.token()).then(|| {
                    parts
                        .find_map(|p| {
                            let (name, value) = p.split_once('=')?;
                            name.trim()
                                .eq_ignore_ascii_case("q")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(1.0)
                })
            })
            .fold(0.0, f32::max)
    };
    let (brotli, gzip) = (weight(Coding::Brotli), weight(Coding::Gzip));
    match (brotli, gzip) {
        (b, g) if b > 0.0 && b >= g => Some(Coding::Brotli),
        (_, g) if g > 0.0 => Some(Coding::Gzip),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(value: &str) -> Option<Coding> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        negotiate(&headers, MIN_COMPRESSED_BYTES)
    }

    #[test]
    fn codings_follow_the_clients_weights() {
        assert_eq!(accepting("gzip, br"), Some(Coding::Brotli));
        assert_eq!(accepting("gzip"), Some(Coding::Gzip));
        assert_eq!(accepting("gzip, br;q=0"), Some(Coding::Gzip));
        // Parameter names are case-insensitive.
        assert_eq!(accepting("gzip, br;Q=0"), Some(Coding::Gzip));
        assert_eq!(accepting("BR;Q=0, gzip"), Some(Coding::Gzip));
        assert_eq!(accepting("gzip;Q=0"), None);
        assert_eq!(accepting("br;q=0.1, gzip;q=1"), Some(Coding::Gzip));
        assert_eq!(accepting("identity, deflate"), None);
        let mut small = HeaderMap::new();
        small.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(negotiate(&small, MIN_COMPRESSED_BYTES - 1), None);
    }
}
