//! Key-pair JWTs exactly as Snowflake (and its `snowflake-ingest` SDK) make them: RS256,
//! `iss = ACCOUNT.USER.SHA256:<base64 sha256 of the DER public key>`, `sub = ACCOUNT.USER`,
//! 59-minute lifetime, reused until 54 minutes have passed.

use std::{
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    encoding::AsDer,
    rand::SystemRandom,
    signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Token lifetime (Snowflake accepts at most one hour).
pub const LIFETIME: Duration = Duration::from_secs(59 * 60);
/// Age after which a new token is made, so none is used near its expiry.
pub const RENEW_AFTER: Duration = Duration::from_secs(54 * 60);

/// The account part of a JWT's subject: upper case, region and cloud suffixes removed
/// (`xy12345.us-east-2.aws` -> `XY12345`), the connection suffix of a `.global` account
/// removed (`myacct-abc123.global` -> `MYACCT`), organisation-account names kept whole
/// (`myorg-myaccount` -> `MYORG-MYACCOUNT`). The rule of the Python connector's
/// `parse_account`. The ingest SDK calls that on an upper-cased account, so its
/// `== "global"` test never matches and it keeps `MYACCT-ABC123`; Snowflake's documentation
/// strips the suffix, as here.
pub fn jwt_account(account: &str) -> String {
    let account = account.to_ascii_uppercase();
    let mut parts = account.split('.');
    let first = parts.next().unwrap_or_default();
    match parts.next() {
        Some("GLOBAL") => match first.rfind('-') {
            Some(cut) => first[..cut].to_string(),
            None => String::new(),
        },
        Some(_) => first.to_string(),
        None => account.clone(),
    }
}

/// Claims of a Snowflake key-pair JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: `ACCOUNT.USER.SHA256:<public key fingerprint>`.
    pub iss: String,
    /// Subject: `ACCOUNT.USER`.
    pub sub: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
}

/// Signs tokens for one user with one key.
pub struct Signer {
    key: RsaKeyPair,
    /// `ACCOUNT.USER`
    qualified_user: String,
    /// `SHA256:<base64>` of the public key's SubjectPublicKeyInfo DER.
    fingerprint: String,
    cached: Mutex<Option<(String, SystemTime)>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("qualified_user", &self.qualified_user)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Reads a PKCS#8 PEM private key, decrypting it with `passphrase` when it is encrypted.
fn private_key_der(pem: &str, passphrase: Option<&str>) -> Result<pkcs8::SecretDocument> {
    let bad = |what: &str| Error::Credentials(format!("private_key: {what}"));
    let (label, document) =
        pkcs8::SecretDocument::from_pem(pem.trim()).map_err(|_| bad("not a PEM document"))?;
    match label {
        "PRIVATE KEY" => Ok(document),
        "ENCRYPTED PRIVATE KEY" => {
            let passphrase = passphrase
                .ok_or_else(|| bad("the key is encrypted and no private_key_passphrase is set"))?;
            let encrypted = pkcs8::EncryptedPrivateKeyInfoRef::try_from(document.as_bytes())
                .map_err(|_| bad("not an encrypted PKCS#8 key"))?;
            encrypted
                .decrypt(passphrase)
                .map_err(|_| bad("cannot decrypt (wrong passphrase or unsupported cipher)"))
        }
        "RSA PRIVATE KEY" => Err(bad(
            "PKCS#1 key; convert it with `openssl pkcs8 -topk8` (Snowflake wants PKCS#8)",
        )),
        other => Err(bad(&format!("unexpected PEM label {other:?}"))),
    }
}

/// A compact RS256 JWT: `header` and `claims` (JSON) base64url-encoded and signed with
/// `key` (RSASSA-PKCS1-v1_5, SHA-256).
pub fn sign_rs256(key: &RsaKeyPair, header: &[u8], claims: &[u8]) -> Result<String> {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .map_err(|_| Error::Credentials("signing the JWT failed".into()))?;
    Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

impl Signer {
    /// A signer for `user` of `account` with a PKCS#8 PEM key (decrypted with
    /// `passphrase` when it is encrypted).
    pub fn new(
        account: &str,
        user: &str,
        private_key: &str,
        passphrase: Option<&str>,
    ) -> Result<Self> {
        let der = private_key_der(private_key, passphrase)?;
        let key = RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| Error::Credentials(format!("private_key: not an RSA key ({e})")))?;
        let public = key
            .public_key()
            .as_der()
            .map_err(|_| Error::Credentials("private_key: cannot encode its public key".into()))?;
        let fingerprint = format!(
            "SHA256:{}",
            STANDARD.encode(Sha256::digest(public.as_ref()))
        );
        let qualified_user = format!("{}.{}", jwt_account(account), user.to_ascii_uppercase());
        Ok(Signer {
            key,
            qualified_user,
            fingerprint,
            cached: Mutex::new(None),
        })
    }

    /// The public key fingerprint, as `DESC USER` shows it in `RSA_PUBLIC_KEY_FP`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Claims of a token issued at `now`.
    pub fn claims(&self, now: SystemTime) -> Claims {
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Claims {
            iss: format!("{}.{}", self.qualified_user, self.fingerprint),
            sub: self.qualified_user.clone(),
            iat,
            exp: iat + LIFETIME.as_secs(),
        }
    }

    /// A signed token for `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        sign_rs256(
            &self.key,
            br#"{"alg":"RS256","typ":"JWT"}"#,
            &serde_json::to_vec(claims)?,
        )
    }

    /// The current token: the cached one until it is [`RENEW_AFTER`] old, then a new one.
    pub fn token(&self) -> Result<String> {
        self.token_at(SystemTime::now())
    }

    fn token_at(&self, now: SystemTime) -> Result<String> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, issued)) = cached.as_ref()
            && now
                .duration_since(*issued)
                .is_ok_and(|age| age < RENEW_AFTER)
        {
            return Ok(token.clone());
        }
        let token = self.sign(&self.claims(now))?;
        *cached = Some((token.clone(), now));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        use aws_lc_rs::{encoding::AsDer, rsa::KeySize, signature::RsaKeyPair};
        use pkcs8::der::pem::LineEnding;
        let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = key.as_der().unwrap();
        let pem = pkcs8::SecretDocument::try_from(der.as_ref())
            .unwrap()
            .to_pem("PRIVATE KEY", LineEnding::LF)
            .unwrap();
        Signer::new("xy12345.us-east-2.aws", "loader", &pem, None).unwrap()
    }

    #[test]
    fn tokens_are_reused_until_renewal_and_expire_after_59_minutes() {
        let signer = signer();
        let start = SystemTime::now();
        let first = signer.token_at(start).unwrap();
        assert_eq!(
            signer
                .token_at(start + Duration::from_secs(53 * 60))
                .unwrap(),
            first
        );
        let renewed = signer
            .token_at(start + Duration::from_secs(55 * 60))
            .unwrap();
        assert_ne!(renewed, first);
        let claims = signer.claims(start);
        assert_eq!(claims.exp - claims.iat, 59 * 60);
        assert_eq!(claims.sub, "XY12345.LOADER");
        assert!(claims.iss.starts_with("XY12345.LOADER.SHA256:"));
        assert!(
            !format!("{signer:?}").contains("PRIVATE"),
            "Debug never shows the key"
        );
    }

    #[test]
    fn accounts_follow_the_connector_rules() {
        assert_eq!(jwt_account("xy12345"), "XY12345");
        assert_eq!(jwt_account("xy12345.us-east-2.aws"), "XY12345");
        assert_eq!(jwt_account("xy12345.eu-central-1"), "XY12345");
        assert_eq!(jwt_account("myorg-myaccount"), "MYORG-MYACCOUNT");
        assert_eq!(jwt_account("myacct-abc123.global"), "MYACCT");
        assert_eq!(jwt_account("my-org-acct-xyz.global"), "MY-ORG-ACCT");
    }
}
