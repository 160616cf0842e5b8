//! The local stack's tokens: `snowcast token` issues them, `snowcast up` checks them the way
//! API Gateway's JWT authorizer checks Cognito's (RS256 signature by the issuer's key,
//! `iss`, `aud`, `exp`, `nbf`), then hands the router the same [`Claims`] the authorizer
//! would: every claim as text, the scopes from the `scope` claim.
//!
//! The signing key is made on first use and kept in the data directory
//! (`auth/signing-key.p8`, PKCS#8, readable by its owner only), so tokens survive restarts
//! and any command pointed at the same directory can issue them.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    encoding::AsDer,
    rsa::KeySize,
    signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use clap::Args;
use serde_json::{Value, json};
use snowcast::{
    adapters::snowflake::jwt::sign_rs256,
    domain::identity::{Claims, READ_SCOPE, WRITE_SCOPE},
    error::{Error, Result},
};

/// The `iss` of local tokens.
pub const ISSUER: &str = "snowcast-local";
/// The `aud` local tokens are for (the API).
pub const AUDIENCE: &str = "snowcast";
/// How long the demo's token lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY: u64 = 60;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The tenant the token is for (the `tenant_id` claim).
    #[arg(long)]
    tenant: String,
    /// The user (the `sub` claim).
    #[arg(long, default_value = "local-user")]
    user: String,
    /// A scope to grant; repeat for several (default: forecast:read and forecast:write).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Hours until it expires (at most a year).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=8760))]
    hours: u64,
    /// The data directory of `snowcast up` (default: the platform's data directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// `snowcast token`: prints a bearer token, and nothing else, on stdout.
pub fn run(args: TokenArgs) -> Result<ExitCode> {
    let root = match args.data_dir {
        Some(dir) => dir,
        None => crate::up::default_data_dir()?,
    };
    let issuer = LocalIssuer::open(&root)?;
    let scopes = if args.scopes.is_empty() {
        vec![READ_SCOPE.to_string(), WRITE_SCOPE.to_string()]
    } else {
        args.scopes
    };
    let lifetime = Duration::from_secs(args.hours.saturating_mul(3600));
    let token = issuer.issue(&args.tenant, &args.user, &scopes, lifetime)?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// The key that signs and checks local tokens.
pub struct LocalIssuer {
    key: RsaKeyPair,
    kid: String,
}

impl LocalIssuer {
    /// The issuer of the data directory `root`, its key made now if it has none.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("auth");
        let path = dir.join("signing-key.p8");
        let der = match std::fs::read(&path) {
            Ok(der) => der,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(&dir, &path)?,
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| Error::Credentials(format!("{}: not an RSA key ({e})", path.display())))?;
        // The key id, as a JWKS would list it: a digest of the public key.
        let kid = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            key.public_key().as_ref(),
        ))[..16]
            .to_string();
        Ok(LocalIssuer { key, kid })
    }

    /// A token for `user` of `tenant` with `scopes`, valid for `lifetime`.
    pub fn issue(
        &self,
        tenant: &str,
        user: &str,
        scopes: &[String],
        lifetime: Duration,
    ) -> Result<String> {
        let now = unix_now();
        let claims = json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user,
            "tenant_id": tenant,
            "scope": scopes.join(" "),
            "token_use": "access",
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(lifetime.as_secs()),
        });
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        sign_rs256(
            &self.key,
            header.to_string().as_bytes(),
            claims.to_string().as_bytes(),
        )
    }

    /// The claims of a valid token (an `Authorization` value, `Bearer ` optional, as API
    /// Gateway takes it), or why it is not valid.
    pub fn verify(&self, authorization: &str) -> std::result::Result<Claims, String> {
        let token = authorization
            .strip_prefix("Bearer ")
            .unwrap_or(authorization)
            .trim();
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT".into());
        };
        let header = decode_json(header).ok_or("the header is not base64url JSON")?;
        if header["alg"] != "RS256" {
            return Err("the algorithm is not RS256".into());
        }
        if header["kid"] != self.kid.as_str() {
            return Err("signed by an unknown key".into());
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "the signature is not base64url")?;
        let signed = &token[..header_and_payload_len(token)];
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, self.key.public_key().as_ref())
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| "the signature does not match")?;
        let claims = decode_json(payload).ok_or("the payload is not base64url JSON")?;
        let Value::Object(claims) = claims else {
            return Err("the payload is not a JSON object".into());
        };
        check_claims(&claims, unix_now())?;
        let scopes = claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|scope| scope.split_whitespace().map(str::to_string).collect());
        let claims: HashMap<String, String> = claims
            .into_iter()
            .map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                (name, text)
            })
            .collect();
        Ok(Claims { claims, scopes })
    }
}

/// API Gateway's checks on the registered claims.
fn check_claims(
    claims: &serde_json::Map<String, Value>,
    now: u64,
) -> std::result::Result<(), String> {
    if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) {
        return Err(format!("the issuer is not {ISSUER}"));
    }
    let audiences = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&AUDIENCE) {
        return Err(format!("the audience is not {AUDIENCE}"));
    }
    match claims.get("exp").and_then(Value::as_u64) {
        Some(exp) if exp.saturating_add(LEEWAY) > now => {}
        Some(_) => return Err("the token has expired".into()),
        None => return Err("the token has no exp".into()),
    }
    if claims
        .get("nbf")
        .and_then(Value::as_u64)
        .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY))
    {
        return Err("the token is not valid yet".into());
    }
    Ok(())
}

/// Length of `header.payload`, the signed part.
fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Makes a key and stores it at `path`, unless another process got there first: then its
/// key is the one (written to a temporary name, linked into place only if none exists).
fn create_key(dir: &Path, path: &Path) -> Result<Vec<u8>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let key = RsaKeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| Error::Credentials("making a signing key failed".into()))?;
    let der = key
        .as_der()
        .map_err(|_| Error::Credentials("encoding the signing key failed".into()))?;
    let temporary = dir.join(format!(".signing-key.{}", std::process::id()));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(der.as_ref())?;
        file.sync_all()?;
        match std::fs::hard_link(&temporary, path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    })();
    let _ = std::fs::remove_file(&temporary);
    written.map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> (tempfile::TempDir, LocalIssuer) {
        let dir = tempfile::tempdir().unwrap();
        let issuer = LocalIssuer::open(dir.path()).unwrap();
        (dir, issuer)
    }

    fn scopes() -> Vec<String> {
        vec![READ_SCOPE.into()]
    }

    #[test]
    fn a_token_it_issued_verifies_with_the_claims_api_gateway_passes() {
        let (dir, issuer) = issuer();
        let token = issuer
            .issue("acme", "ann", &scopes(), Duration::from_secs(60))
            .unwrap();
        // Another command on the same directory uses the same key.
        let again = LocalIssuer::open(dir.path()).unwrap();
        let claims = again.verify(&format!("Bearer {token}")).unwrap();
        assert_eq!(claims.claims["tenant_id"], "acme");
        assert_eq!(claims.claims["sub"], "ann");
        assert!(claims.claims["exp"].parse::<u64>().is_ok());
        assert_eq!(claims.scopes, Some(scopes()));
    }

    #[test]
    fn forged_altered_expired_and_foreign_tokens_are_refused() {
        let (_dir, issuer) = issuer();
        let (_other_dir, other) = self::issuer();
        let token = issuer
            .issue("acme", "ann", &scopes(), Duration::from_secs(600))
            .unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let (header, _) = signed.split_once('.').unwrap();
        let globex = URL_SAFE_NO_PAD.encode(
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "ann", "tenant_id": "globex",
                   "exp": unix_now() + 600})
            .to_string(),
        );
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"x"}"#);
        let expired = issuer
            .issue("acme", "ann", &scopes(), Duration::ZERO)
            .unwrap();
        let cases = [
            (
                format!("{header}.{globex}.{signature}"),
                "the signature does not match",
            ),
            (
                format!("{none_header}.{globex}."),
                "the algorithm is not RS256",
            ),
            (
                other
                    .issue("acme", "ann", &scopes(), Duration::from_secs(60))
                    .unwrap(),
                "signed by an unknown key",
            ),
            ("abc".into(), "not a JWT"),
        ];
        for (token, reason) in cases {
            assert_eq!(issuer.verify(&token).unwrap_err(), reason, "{token}");
        }
        // Expiry has a minute's leeway, as clocks drift.
        assert!(issuer.verify(&expired).is_ok());
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), json!(ISSUER));
        claims.insert("aud".into(), json!([AUDIENCE]));
        claims.insert("exp".into(), json!(1000));
        assert_eq!(
            check_claims(&claims, 1000 + LEEWAY).unwrap_err(),
            "the token has expired"
        );
        claims.insert("exp".into(), json!(u64::MAX));
        assert!(check_claims(&claims, 1000).is_ok(), "no overflow");
        claims.insert("nbf".into(), json!(u64::MAX));
        assert_eq!(
            check_claims(&claims, 0).unwrap_err(),
            "the token is not valid yet"
        );
        claims.remove("nbf");
        claims.insert("aud".into(), json!("other"));
        assert_eq!(
            check_claims(&claims, 0).unwrap_err(),
            "the audience is not snowcast"
        );
    }
}
