//! Retry policy for Snowflake calls: jittered exponential backoff inside a time budget.

use std::time::Duration;

use tokio::time::Instant;

/// How often and how long to retry throttling (429), unavailability (503, 504) and
/// connection faults.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay cap of the first retry; doubles each time up to `max_delay`.
    pub base_delay: Duration,
    /// Longest delay between two attempts.
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            budget: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// "Full jitter" backoff before retry number `retry` (1 = first retry): a uniform
    /// draw below the capped exponential, so synchronized clients spread out.
    pub fn delay(&self, retry: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1 << retry.saturating_sub(1).min(20))
            .min(self.max_delay);
        cap.mul_f64(fastrand::f64())
    }

    /// The delay before retry number `retry`, or `None` when attempts or time are spent.
    pub fn next_delay(&self, retry: u32, started: Instant) -> Option<Duration> {
        if retry >= self.max_attempts {
            return None;
        }
        let delay = self.delay(retry);
        (started.elapsed() + delay < self.budget).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_capped_and_stop_within_the_budget() {
        let policy = RetryPolicy::default();
        for retry in 1..10 {
            let cap =
                policy.base_delay * (1 << (retry - 1)).min(policy.max_delay.as_millis() as u32);
            assert!(policy.delay(retry) <= cap.min(policy.max_delay));
        }
        let started = Instant::now();
        assert!(policy.next_delay(1, started).is_some());
        assert!(policy.next_delay(policy.max_attempts, started).is_none());
        let spent = RetryPolicy {
            budget: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert!(spent.next_delay(1, started).is_none());
    }
}
