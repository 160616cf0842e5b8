//! Who is calling: the claims of a token a gateway already verified, turned into a
//! [`Caller`] (tenant, user, scopes). The tenant comes from a claim only, never from a
//! path, a query or a body.
//!
//! Nothing here verifies signatures: in Lambda, API Gateway's JWT authorizer did and hands
//! the claims over in the request context; locally, the local stack's token check does.

use std::collections::HashMap;

use super::forecast::TenantId;

/// Scope for reading the forecast, edits, history and preferences.
pub const READ_SCOPE: &str = "forecast:read";
/// Scope for changing edits and preferences.
pub const WRITE_SCOPE: &str = "forecast:write";
/// Default name of the claim that holds the tenant.
pub const DEFAULT_TENANT_CLAIM: &str = "tenant_id";

/// A verified token's claims, as the gateway passes them: every value a string (numbers
/// and arrays arrive as text), and the scopes if the gateway listed them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    /// Claim name -> value.
    pub claims: HashMap<String, String>,
    /// The gateway's scope list (API Gateway may leave it out even when a `scope` claim
    /// exists).
    pub scopes: Option<Vec<String>>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The tenant every read and write is scoped to.
    pub tenant: TenantId,
    /// The user (`sub`), recorded as the author of edits.
    pub user: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

/// How claims become a caller.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The claim holding the tenant (`tenant_id`; Cognito: `custom:tenant_id`).
    pub tenant_claim: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            tenant_claim: DEFAULT_TENANT_CLAIM.to_string(),
        }
    }
}

impl Claims {
    /// The caller these claims name, or why they name none (a 401's detail).
    pub fn caller(&self, config: &AuthConfig) -> Result<Caller, String> {
        let tenant = self
            .claims
            .get(&config.tenant_claim)
            .ok_or_else(|| format!("the token has no {} claim", config.tenant_claim))?;
        let tenant = TenantId::new(tenant).map_err(|_| {
            format!(
                "the token's {} claim is not a tenant id",
                config.tenant_claim
            )
        })?;
        let user = self
            .claims
            .get("sub")
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| "the token has no sub claim".to_string())?;
        Ok(Caller {
            tenant,
            user: user.clone(),
            scopes: self.scope_list(),
        })
    }

    /// The scopes: the gateway's list, else the `scope` (or `scp`) claim split on spaces.
    /// Cognito access tokens list `scope` as one space-separated string; others send a
    /// JSON array, which arrives here as text.
    fn scope_list(&self) -> Vec<String> {
        if let Some(scopes) = self.scopes.as_ref().filter(|scopes| !scopes.is_empty()) {
            return scopes.clone();
        }
        let Some(text) = self.claims.get("scope").or_else(|| self.claims.get("scp")) else {
            return Vec::new();
        };
        if let Ok(list) = serde_json::from_str::<Vec<String>>(text) {
            return list;
        }
        text.trim_matches(|c| c == '[' || c == ']')
            .split([' ', ','])
            .map(|scope| scope.trim_matches('"'))
            .filter(|scope| !scope.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// A request's id, for logs and problem documents: API Gateway's when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);
