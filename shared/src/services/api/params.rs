//! Query parameters and page cursors. Every parameter is parsed into a domain type here,
//! with a 400 that names it; a repeated parameter is an error, not a silent choice.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::NaiveDate;

use super::problem::ApiError;
use crate::domain::forecast::{self, Cell, DEFAULT_PAGE, DateRange, SkuId, page_size, parse_date};

/// A request's query, each parameter at most once.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `a=1&b=2` (form-encoded).
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if params.insert(name.to_string(), value.to_string()).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "parameter {name} is given twice"
                )));
            }
        }
        Ok(Params(params))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `sku_id`, if given.
    pub fn sku(&self) -> Result<Option<SkuId>, ApiError> {
        self.get("sku_id")
            .map(|sku| SkuId::new(sku).map_err(bad))
            .transpose()
    }

    /// `from` and `to`, both required.
    pub fn range(&self) -> Result<DateRange, ApiError> {
        let date = |name: &'static str| -> Result<NaiveDate, ApiError> {
            let text = self.get(name).ok_or_else(|| {
                ApiError::BadRequest(format!("parameter {name} (YYYY-MM-DD) is required"))
            })?;
            parse_date(name, text).map_err(bad)
        };
        DateRange::new(date("from")?, date("to")?).map_err(bad)
    }

    /// `limit`, default [`DEFAULT_PAGE`].
    pub fn limit(&self) -> Result<usize, ApiError> {
        let Some(text) = self.get("limit") else {
            return Ok(DEFAULT_PAGE);
        };
        let limit = text.parse::<usize>().map_err(|_| {
            ApiError::BadRequest(format!("invalid limit: {text:?} is not a whole number"))
        })?;
        page_size(limit).map_err(bad)
    }

    /// A boolean parameter: `true` or `false`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ApiError::BadRequest(format!(
                "invalid {name}: {other:?} is not true or false"
            ))),
        }
    }

    /// `format`: `json` (default) or `csv`.
    pub fn csv_format(&self) -> Result<bool, ApiError> {
        match self.get("format") {
            None | Some("json") => Ok(false),
            Some("csv") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "invalid format: {other:?} is not json or csv"
            ))),
        }
    }

    /// `cursor`, decoded.
    pub fn cursor<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        self.get("cursor").map(decode_cursor).transpose()
    }
}

/// A domain rule broken by a parameter: 400 with the rule.
pub fn bad(error: crate::error::Error) -> ApiError {
    match error {
        crate::error::Error::Invalid { what, message } => {
            ApiError::BadRequest(format!("invalid {what}: {message}"))
        }
        other => ApiError::Store(other),
    }
}

/// An opaque cursor: base64url of the position's JSON. It holds no tenant: every query is
/// scoped by the caller's tenant, so a cursor from elsewhere can only skip rows.
pub fn encode_cursor<T: serde::Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

fn decode_cursor<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::BadRequest("invalid cursor: use next_cursor as given".into()))
}

/// A forecast page position: the last (sku_id, date) served.
pub fn forecast_cursor(position: Option<(String, String)>) -> Result<Option<Cell>, ApiError> {
    position
        .map(|(sku, date)| {
            Ok(Cell {
                sku_id: SkuId::new(&sku).map_err(bad)?,
                date: forecast::parse_date("cursor", &date).map_err(bad)?,
            })
        })
        .transpose()
}
