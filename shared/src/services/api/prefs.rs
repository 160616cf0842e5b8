//! `GET /v1/prefs` and `PUT /v1/prefs/{key}`: a user's preferences (JSON values by key),
//! scoped to the caller's tenant and user.

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::{EditorState, auth::Caller, edits::json_body, params::bad, problem::ApiError};
use crate::domain::forecast::{pref_key, pref_value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrefBody {
    value: serde_json::Value,
}

/// `GET /v1/prefs`.
pub async fn get_prefs(
    State(state): State<EditorState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let prefs = state.prefs.prefs(&caller.tenant, &caller.user).await?;
    Ok(Json(json!({ "prefs": prefs })).into_response())
}

/// `PUT /v1/prefs/{key}`.
pub async fn put_pref(
    State(state): State<EditorState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = pref_key(&key).map_err(bad)?;
    let body: PrefBody = json_body(&headers, &body)?;
    pref_value(&body.value).map_err(bad)?;
    state
        .prefs
        .put_pref(&caller.tenant, &caller.user, &key, &body.value)
        .await?;
    Ok(Json(json!({ "key": key, "value": body.value })).into_response())
}
