//! Reading the environment: one variable at a time, typed, with errors that name it. Each
//! service's `config` module reads its own settings with these, once, at start-up, so a
//! bad value fails the init with a clear message rather than the first event.

use crate::error::{Error, Result};

/// Reads one environment variable; unset and empty are the same.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads a variable that must be set.
pub fn required(name: &'static str) -> Result<String> {
    var(name).ok_or_else(|| Error::invalid(name, "is not set"))
}

/// Reads a boolean variable (`1/0`, `true/false`, `yes/no`, `on/off`), if set.
pub fn boolean(name: &'static str) -> Result<Option<bool>> {
    let Some(value) = var(name) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        _ => Err(Error::invalid(name, format!("{value:?} is not a boolean"))),
    }
}

/// Reads a number variable, if set.
pub fn number<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>> {
    var(name)
        .map(|value| {
            value
                .trim()
                .parse()
                .map_err(|_| Error::invalid(name, format!("{value:?} is not a number")))
        })
        .transpose()
}

/// Whether the environment names its own TLS roots (`SSL_CERT_FILE`, `SSL_CERT_DIR`,
/// `AWS_CA_BUNDLE`: a TLS-inspecting proxy, a private CA). TLS clients then load the
/// system's roots, which honour them, instead of their built-in ones.
pub fn names_own_certificates() -> bool {
    ["SSL_CERT_FILE", "SSL_CERT_DIR", "AWS_CA_BUNDLE"]
        .iter()
        .any(|name| var(name).is_some())
}
