//! In-process generations and rate limiter: one container's view. They serve alone
//! without Redis (and in the local stack, where reader and editor share the process),
//! and stand in while Redis is down.

use std::{collections::HashMap, sync::Mutex, time::Instant};

use async_trait::async_trait;

use crate::{
    domain::{
        forecast::TenantId,
        rate_limit::{Decision, Gcra, Quota},
    },
    error::{Error, Result},
    ports::cache::{Generation, Generations, RateLimiter},
};

/// Generations kept in this process.
#[derive(Debug, Default)]
pub struct LocalGenerations {
    tenants: Mutex<HashMap<TenantId, (u64, Instant)>>,
}

#[async_trait]
impl Generations for LocalGenerations {
    async fn current(&self, tenant: &TenantId) -> Result<Generation> {
        let tenants = self.tenants.lock().map_err(|_| poisoned())?;
        Ok(match tenants.get(tenant) {
            Some((number, at)) => Generation {
                number: *number,
                age: Some(at.elapsed()),
            },
            None => Generation {
                number: 0,
                age: None,
            },
        })
    }

    async fn bump(&self, tenant: &TenantId) -> Result<()> {
        let mut tenants = self.tenants.lock().map_err(|_| poisoned())?;
        let entry = tenants.entry(tenant.clone()).or_insert((0, Instant::now()));
        *entry = (entry.0 + 1, Instant::now());
        Ok(())
    }
}

/// A GCRA limiter over this process's clock.
#[derive(Debug)]
pub struct LocalRateLimiter {
    epoch: Instant,
    /// Theoretical arrival time per tenant, in microseconds since `epoch`.
    tats: Mutex<HashMap<TenantId, u64>>,
}

impl Default for LocalRateLimiter {
    fn default() -> Self {
        LocalRateLimiter {
            epoch: Instant::now(),
            tats: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn acquire(&self, tenant: &TenantId, quota: Quota) -> Result<Decision> {
        let now = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut tats = self.tats.lock().map_err(|_| poisoned())?;
        let (decision, tat) = Gcra::decide(quota, tats.get(tenant).copied(), now);
        tats.insert(tenant.clone(), tat);
        // Keep the map to tenants that still owe time: the others start afresh anyway.
        if tats.len() > 10_000 {
            tats.retain(|_, tat| *tat > now);
        }
        Ok(decision)
    }
}

fn poisoned() -> Error {
    Error::invalid("in-process cache", "a lock was poisoned by a panic")
}
