//! Per-tenant request quotas and the GCRA (generic cell rate algorithm) that enforces them.
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT) of the next request
//! at the steady rate. A request is allowed when admitting it keeps the TAT within one
//! burst of now; it then advances the TAT by one emission interval. The same arithmetic
//! runs in process ([`Gcra::decide`]) and in Redis (`adapters::redis`, a Lua script over
//! the server's clock), so both limiters answer alike.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;

use crate::error::{Error, Result};

/// A tenant's allowance: a steady rate and the burst it may spend at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests that may arrive at once after a quiet period.
    pub burst: u32,
}

impl Quota {
    /// DESIGN.md's default: 50 requests/s with bursts of 100.
    pub const DEFAULT: Quota = Quota {
        per_second: 50,
        burst: 100,
    };

    /// Checks a quota: both numbers at least 1.
    pub fn new(per_second: u32, burst: u32) -> Result<Self> {
        if per_second == 0 || burst == 0 {
            return Err(Error::invalid(
                "rate limit",
                format!("{per_second}/s with bursts of {burst}: both must be at least 1"),
            ));
        }
        Ok(Quota { per_second, burst })
    }

    /// Time between two requests at the steady rate, in microseconds.
    pub fn interval_micros(&self) -> u64 {
        1_000_000 / u64::from(self.per_second.max(1))
    }

    /// How far ahead of now the TAT may run: the whole burst.
    pub fn tolerance_micros(&self) -> u64 {
        self.interval_micros() * u64::from(self.burst.max(1))
    }
}

/// The default quota and per-tenant overrides (`{"acme": {"per_second": 200, "burst": 400}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Quotas {
    /// Every tenant without an override.
    pub default: Quota,
    /// Tenants with their own quota.
    pub overrides: BTreeMap<String, Quota>,
}

impl Quotas {
    /// Parses the overrides' JSON object and checks every quota in it.
    pub fn new(default: Quota, overrides_json: Option<&str>) -> Result<Self> {
        let overrides: BTreeMap<String, Quota> = match overrides_json.map(str::trim) {
            None | Some("") => BTreeMap::new(),
            Some(json) => serde_json::from_str(json).map_err(|e| {
                Error::invalid(
                    "rate limit overrides",
                    format!("{e} (expected {{\"<tenant>\": {{\"per_second\": N, \"burst\": N}}}})"),
                )
            })?,
        };
        for quota in overrides.values().chain([&default]) {
            Quota::new(quota.per_second, quota.burst)?;
        }
        Ok(Quotas { default, overrides })
    }

    /// The quota of `tenant`.
    pub fn of(&self, tenant: &str) -> Quota {
        self.overrides.get(tenant).copied().unwrap_or(self.default)
    }
}

/// What a limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The quota applied.
    pub quota: Quota,
    /// Requests that could still arrive right now.
    pub remaining: u32,
    /// When refused: how long until one request is allowed again.
    pub retry_after: Duration,
    /// How long until the whole burst is available again.
    pub reset_after: Duration,
}

/// The GCRA arithmetic over microsecond timestamps.
pub struct Gcra;

impl Gcra {
    /// Decides a request arriving at `now` for a key whose TAT is `tat` (none: never
    /// seen). Returns the decision and the TAT to store (unchanged when refused).
    pub fn decide(quota: Quota, tat: Option<u64>, now: u64) -> (Decision, u64) {
        let interval = quota.interval_micros();
        let tat = tat.unwrap_or(now).max(now);
        let new_tat = tat + interval;
        // The earliest moment this request fits: one burst before its new TAT (signed: it
        // lies before the epoch of `now` while the burst is unspent).
        let allow_at = i128::from(new_tat) - i128::from(quota.tolerance_micros());
        let now_signed = i128::from(now);
        if now_signed < allow_at {
            let decision = Decision {
                allowed: false,
                quota,
                remaining: 0,
                retry_after: micros(allow_at - now_signed),
                reset_after: micros(i128::from(tat - now)),
            };
            return (decision, tat);
        }
        let remaining = (now_signed - allow_at) / i128::from(interval);
        let decision = Decision {
            allowed: true,
            quota,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            retry_after: Duration::ZERO,
            reset_after: micros(i128::from(new_tat - now)),
        };
        (decision, new_tat)
    }
}

fn micros(value: i128) -> Duration {
    Duration::from_micros(u64::try_from(value).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(quota: Quota, arrivals: &[u64]) -> Vec<bool> {
        let mut tat = None;
        arrivals
            .iter()
            .map(|&now| {
                let (decision, next) = Gcra::decide(quota, tat, now);
                tat = Some(next);
                decision.allowed
            })
            .collect()
    }

    #[test]
    fn a_burst_is_allowed_then_the_steady_rate() {
        let quota = Quota::new(10, 5).unwrap();
        // Six at once: the burst of five passes, the sixth waits one interval.
        let allowed = run(quota, &[0, 0, 0, 0, 0, 0]);
        assert_eq!(allowed, [true, true, true, true, true, false]);
        let (decision, _) = Gcra::decide(quota, Some(500_000), 0);
        assert!(!decision.allowed);
        assert_eq!(decision.retry_after, Duration::from_millis(100));
        // One interval later, exactly one more.
        let allowed = run(quota, &[0, 0, 0, 0, 0, 100_000, 100_000]);
        assert_eq!(allowed, [true, true, true, true, true, true, false]);
    }

    #[test]
    fn remaining_counts_down_and_refills() {
        let quota = Quota::new(100, 3).unwrap();
        let (first, tat) = Gcra::decide(quota, None, 1_000_000);
        assert_eq!(first.remaining, 2);
        let (second, tat) = Gcra::decide(quota, Some(tat), 1_000_000);
        assert_eq!(second.remaining, 1);
        assert_eq!(second.reset_after, Duration::from_millis(20));
        // After a quiet second the whole burst is back.
        let (later, _) = Gcra::decide(quota, Some(tat), 2_000_000);
        assert_eq!(later.remaining, 2);
    }

    #[test]
    fn quotas_parse_overrides_and_reject_zero() {
        let quotas = Quotas::new(
            Quota::DEFAULT,
            Some(r#"{"acme": {"per_second": 5, "burst": 7}}"#),
        )
        .unwrap();
        assert_eq!(quotas.of("acme"), Quota::new(5, 7).unwrap());
        assert_eq!(quotas.of("globex"), Quota::DEFAULT);
        assert!(
            Quotas::new(
                Quota::DEFAULT,
                Some(r#"{"acme": {"per_second": 0, "burst": 1}}"#)
            )
            .is_err()
        );
        assert!(Quotas::new(Quota::DEFAULT, Some(r#"{"acme": {"rate": 1}}"#)).is_err());
        assert!(
            Quotas::new(Quota::DEFAULT, Some("  "))
                .unwrap()
                .overrides
                .is_empty()
        );
    }
}
