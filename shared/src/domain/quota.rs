//! Hybrid Table quotas: what a database uses, how close that is to its quota (the level),
//! when the quota will be reached at the current growth (the projection), and which
//! changes of level are worth an alert.
//!
//! Snowflake's quotas per database (docs, "Hybrid tables: limitations"): 2 TB of row-store
//! storage (writes that add data are blocked above it) and about 8,000 operations/s
//! (requests are throttled above it); Snowflake advises asking for an increase when usage
//! stays above 70%. The seed's planning figure of 1,000 writes/s is a third quota here. At a
//! quota's edge the design's exit applies: shard tenants across databases, or move the hot
//! table to an OLTP store.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Share of a quota at which a database is at [`Level::Warning`] (Snowflake's point to
/// request an increase).
pub const WARNING_SHARE: f64 = 0.70;
/// Share of a quota at which a database is at [`Level::Critical`].
pub const CRITICAL_SHARE: f64 = 0.90;
/// Projections further out than this are "not within a year".
pub const HORIZON_DAYS: f64 = 365.0;
/// What every alert recommends, from the design's decision record.
pub const GUIDANCE: &str = "Plan the exit before the quota is reached: shard tenants across \
    databases (each database has its own quota), or move the hot table (MANUAL_EDITS_HT) to \
    an OLTP store; ask Snowflake for a quota increase meanwhile.";

/// The quotas of one database.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quota {
    /// Row-store bytes (default 2 TB = 2 x 10^12 bytes); `4e12` is accepted.
    #[serde(deserialize_with = "whole_number")]
    pub storage_bytes: u64,
    /// Operations per second (default 8,000).
    pub operations_per_second: f64,
    /// Writes per second (default 1,000: the seed's planning figure).
    pub writes_per_second: f64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            storage_bytes: 2_000_000_000_000,
            operations_per_second: 8_000.0,
            writes_per_second: 1_000.0,
        }
    }
}

impl Quota {
    /// The quota of `metric` (throttling has none: any throttled request is critical).
    pub fn limit(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Storage => Some(self.storage_bytes as f64),
            Metric::Operations => Some(self.operations_per_second),
            Metric::Writes => Some(self.writes_per_second),
            Metric::Throttling => None,
        }
    }

    /// Every quota at least 1 (a byte, an operation per second): smaller ones are typos,
    /// and would make shares overflow to infinity.
    fn check(&self, database: &str) -> Result<()> {
        let sensible = |rate: f64| rate.is_finite() && rate >= 1.0;
        if self.storage_bytes >= 1
            && sensible(self.operations_per_second)
            && sensible(self.writes_per_second)
        {
            Ok(())
        } else {
            Err(Error::invalid(
                "quota",
                format!("{database}: every quota must be a number of at least 1"),
            ))
        }
    }
}

/// A count written as an integer or as a whole float (`4e12`).
fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<u64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    parse_whole(value)
        .ok_or_else(|| serde::de::Error::custom(format!("{value} is not a whole number of bytes")))
}

/// `value` as a count, if it is a whole non-negative number within u64.
pub fn parse_whole(value: f64) -> Option<u64> {
    (value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= u64::MAX as f64)
        .then_some(value as u64)
}

/// Each database's quotas: a default and overrides by database name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quotas {
    default: Quota,
    overrides: BTreeMap<String, Quota>,
}

impl Quotas {
    /// Parses overrides given as JSON: `{"DB": {"storage_bytes": .., "operations_per_second":
    /// .., "writes_per_second": ..}}`, each field optional (the default fills in).
    pub fn parse(default: Quota, overrides: &str) -> Result<Self> {
        let mut quotas = Quotas {
            default,
            overrides: BTreeMap::new(),
        };
        default.check("default")?;
        if overrides.trim().is_empty() {
            return Ok(quotas);
        }
        let parsed: BTreeMap<String, serde_json::Value> = serde_json::from_str(overrides)
            .map_err(|e| Error::invalid("quota overrides", e.to_string()))?;
        for (database, fields) in parsed {
            let fields = fields.as_object().ok_or_else(|| {
                Error::invalid(
                    "quota overrides",
                    format!("{database}: expected an object of quotas, found {fields}"),
                )
            })?;
            let mut merged = serde_json::to_value(default)?;
            if let Some(merged) = merged.as_object_mut() {
                merged.extend(fields.clone());
            }
            let quota: Quota = serde_json::from_value(merged)
                .map_err(|e| Error::invalid("quota overrides", format!("{database}: {e}")))?;
            quota.check(&database)?;
            quotas
                .overrides
                .insert(database.to_ascii_uppercase(), quota);
        }
        Ok(quotas)
    }

    /// The quotas of `database`.
    pub fn of(&self, database: &str) -> Quota {
        self.overrides
            .get(&database.to_ascii_uppercase())
            .copied()
            .unwrap_or(self.default)
    }
}

/// What is watched against a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Row-store bytes of the database's hybrid tables.
    Storage,
    /// Peak operations per second (1-minute intervals).
    Operations,
    /// Peak writes per second (INSERT, UPDATE, DELETE, MERGE).
    Writes,
    /// Requests Snowflake throttled.
    Throttling,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 4] = [
        Metric::Storage,
        Metric::Operations,
        Metric::Writes,
        Metric::Throttling,
    ];

    /// The name in reports and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Storage => "storage",
            Metric::Operations => "operations",
            Metric::Writes => "writes",
            Metric::Throttling => "throttling",
        }
    }
}

/// How close a metric is to its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Below [`WARNING_SHARE`].
    Ok,
    /// At or above [`WARNING_SHARE`].
    Warning,
    /// At or above [`CRITICAL_SHARE`], or requests were throttled.
    Critical,
}

impl Level {
    /// The level of `used` against `quota`.
    pub fn of(used: f64, quota: f64) -> Level {
        let share = used / quota;
        if share >= CRITICAL_SHARE {
            Level::Critical
        } else if share >= WARNING_SHARE {
            Level::Warning
        } else {
            Level::Ok
        }
    }

    /// The level of a throttled-request count: any throttling is critical.
    pub fn of_throttled(throttled: u64) -> Level {
        if throttled > 0 {
            Level::Critical
        } else {
            Level::Ok
        }
    }

    /// The name in reports and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

/// One hybrid table's storage, as `INFORMATION_SCHEMA.HYBRID_TABLES` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableUsage {
    /// Schema of the table.
    pub schema: String,
    /// Name of the table.
    pub name: String,
    /// Approximate row-store bytes.
    pub bytes: u64,
    /// Approximate rows; Snowflake may not know (NULL).
    pub row_count: Option<u64>,
}

/// The requests of one 1-minute interval, from `AGGREGATE_QUERY_HISTORY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInterval {
    /// Start of the minute.
    pub start: DateTime<Utc>,
    /// Statements executed.
    pub calls: u64,
    /// Of which writes.
    pub writes: u64,
    /// Requests throttled.
    pub throttled: u64,
}

/// Requests over a window, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RequestSummary {
    /// Minutes with any request.
    pub intervals: usize,
    /// Start of the newest minute seen: how far the (lagging) view reaches.
    pub through: DateTime<Utc>,
    /// Highest operations per second of a minute.
    pub peak_operations_per_second: f64,
    /// Mean operations per second over the minutes with requests.
    pub mean_operations_per_second: f64,
    /// Highest writes per second of a minute.
    pub peak_writes_per_second: f64,
    /// Requests throttled in the window.
    pub throttled: u64,
}

impl RequestSummary {
    /// The summary of `intervals` (several rows of one minute are added up), or `None`
    /// when there are none: a view that has not caught up says nothing, which is not zero.
    pub fn of(intervals: &[RequestInterval]) -> Option<RequestSummary> {
        let mut minutes: BTreeMap<DateTime<Utc>, (u64, u64)> = BTreeMap::new();
        let mut throttled = 0u64;
        for interval in intervals {
            let minute = minutes.entry(interval.start).or_default();
            minute.0 = minute.0.saturating_add(interval.calls);
            minute.1 = minute.1.saturating_add(interval.writes);
            throttled = throttled.saturating_add(interval.throttled);
        }
        let through = *minutes.keys().next_back()?;
        let per_second = |count: u64| count as f64 / 60.0;
        let total = minutes
            .values()
            .fold(0u64, |sum, m| sum.saturating_add(m.0));
        Some(RequestSummary {
            intervals: minutes.len(),
            through,
            peak_operations_per_second: per_second(minutes.values().map(|m| m.0).max()?),
            mean_operations_per_second: per_second(total) / minutes.len() as f64,
            peak_writes_per_second: per_second(minutes.values().map(|m| m.1).max()?),
            throttled,
        })
    }
}

/// One observation of a database, kept in its history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// Row-store bytes of all hybrid tables.
    pub storage_bytes: u64,
    /// Peak operations per second in the window, if the view had any data.
    pub peak_operations_per_second: Option<f64>,
    /// Peak writes per second in the window, if the view had any data.
    pub peak_writes_per_second: Option<f64>,
}

impl Sample {
    /// The sample's value of `metric`, if it has one.
    pub fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Storage => Some(self.storage_bytes as f64),
            Metric::Operations => self.peak_operations_per_second,
            Metric::Writes => self.peak_writes_per_second,
            Metric::Throttling => None,
        }
    }
}

/// Raw samples are kept this long; older ones are reduced to one per day (the day's
/// highest values), which is what a projection months out needs.
const RAW_RETENTION: Duration = Duration::days(3);
/// Samples older than this are dropped.
const HISTORY_RETENTION: Duration = Duration::days(400);
/// The projection fits the samples of this window.
const FIT_WINDOW: Duration = Duration::days(90);
/// A projection needs this many points...
const MIN_POINTS: usize = 4;
/// ...spanning at least this long.
const MIN_SPAN: Duration = Duration::hours(24);

/// What the monitor remembers of a database between runs: its samples and the level each
/// metric was last alerted at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuotaState {
    /// Samples, oldest first, thinned as they age.
    #[serde(default)]
    pub samples: Vec<Sample>,
    /// The level each metric was at when last seen (what the alerts have said).
    #[serde(default)]
    pub levels: BTreeMap<Metric, Level>,
}

impl QuotaState {
    /// Adds `sample` (samples older than it stay in order; a repeat of the same instant
    /// replaces it), then thins and trims the history.
    pub fn record(&mut self, sample: Sample) {
        self.samples.retain(|s| s.at != sample.at);
        let position = self.samples.partition_point(|s| s.at < sample.at);
        self.samples.insert(position, sample);
        self.thin(sample.at);
    }

    /// Keeps raw samples for [`RAW_RETENTION`], one per day (the highest values) before
    /// that, nothing past [`HISTORY_RETENTION`].
    fn thin(&mut self, now: DateTime<Utc>) {
        let mut daily: BTreeMap<NaiveDate, Sample> = BTreeMap::new();
        let mut recent = Vec::new();
        for sample in self.samples.drain(..) {
            if sample.at < now - HISTORY_RETENTION {
                continue;
            }
            if sample.at >= now - RAW_RETENTION {
                recent.push(sample);
                continue;
            }
            daily
                .entry(sample.at.date_naive())
                .and_modify(|day| *day = day.merged(&sample))
                .or_insert(sample);
        }
        self.samples = daily.into_values().chain(recent).collect();
    }
}

impl Sample {
    /// The day's summary of two samples: the later instant, the higher values.
    fn merged(&self, other: &Sample) -> Sample {
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Sample {
            at: self.at.max(other.at),
            storage_bytes: self.storage_bytes.max(other.storage_bytes),
            peak_operations_per_second: max(
                self.peak_operations_per_second,
                other.peak_operations_per_second,
            ),
            peak_writes_per_second: max(self.peak_writes_per_second, other.peak_writes_per_second),
        }
    }
}

/// When a quota will be reached at the current growth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Projection {
    /// Too little history to fit (fewer than 4 samples, or less than a day).
    InsufficientHistory {
        /// Samples available.
        samples: usize,
    },
    /// The quota is already reached.
    Reached,
    /// Usage is flat or shrinking: the quota is not in sight.
    NotGrowing {
        /// Growth per day (robust estimate), zero or negative.
        per_day: f64,
    },
    /// Growing, but the quota is more than a year away.
    NotWithinAYear {
        /// Growth per day (robust estimate).
        per_day: f64,
    },
    /// The quota is reached in about `days` days.
    Within {
        /// Growth per day (robust estimate).
        per_day: f64,
        /// Days from now (central estimate).
        days: f64,
        /// The date (central estimate).
        date: NaiveDate,
        /// Soonest (95% confidence on the growth rate).
        earliest_days: f64,
        /// Latest; `None` when the slow end of the range is not growing.
        latest_days: Option<f64>,
    },
}

impl Projection {
    /// Days to the quota (central estimate), if within a year.
    pub fn days(&self) -> Option<f64> {
        match self {
            Projection::Within { days, .. } => Some(*days),
            Projection::Reached => Some(0.0),
            _ => None,
        }
    }

    /// A short human sentence.
    pub fn describe(&self) -> String {
        match self {
            Projection::InsufficientHistory { samples } => {
                format!("not enough history to project ({samples} sample(s), need 4 over a day)")
            }
            Projection::Reached => "quota reached".into(),
            Projection::NotGrowing { .. } => "not growing: not within a year".into(),
            Projection::NotWithinAYear { .. } => "not within a year".into(),
            Projection::Within {
                days,
                date,
                earliest_days,
                latest_days,
                ..
            } => {
                let latest =
                    latest_days.map_or("more than a year".into(), |d| format!("{d:.0} days"));
                format!(
                    "in about {days:.0} days ({date}; 95% range {earliest_days:.0} days to {latest})"
                )
            }
        }
    }
}

/// Projects when `current` reaches `quota` from the `metric` values of `samples`:
/// Theil-Sen (the median of the slopes between every pair of points, robust to outliers
/// such as a one-off bulk load), with the 95% confidence range of the slope from Kendall's
/// statistic. Over a history longer than three days the points are the daily highs of the
/// last 90 days, so a burst of samples in one day does not outweigh the months before.
pub fn project(
    samples: &[Sample],
    metric: Metric,
    current: f64,
    quota: f64,
    now: DateTime<Utc>,
) -> Projection {
    if current >= quota {
        return Projection::Reached;
    }
    let points = fit_points(samples, metric, now);
    let span = match (points.first(), points.last()) {
        (Some(first), Some(last)) => last.0 - first.0,
        _ => 0.0,
    };
    let min_span = MIN_SPAN.num_seconds() as f64 / 86_400.0;
    if points.len() < MIN_POINTS || span < min_span {
        return Projection::InsufficientHistory {
            samples: points.len(),
        };
    }
    let (per_day, low, high) = sen_slope(&points);
    if per_day <= 0.0 {
        return Projection::NotGrowing { per_day };
    }
    let remaining = quota - current;
    let days = remaining / per_day;
    if days > HORIZON_DAYS {
        return Projection::NotWithinAYear { per_day };
    }
    let date = (now + Duration::seconds((days * 86_400.0) as i64)).date_naive();
    Projection::Within {
        per_day,
        days,
        date,
        earliest_days: remaining / high.max(per_day),
        latest_days: (low > 0.0).then(|| remaining / low),
    }
}

/// (days since the first point, value) pairs to fit.
fn fit_points(samples: &[Sample], metric: Metric, now: DateTime<Utc>) -> Vec<(f64, f64)> {
    let recent: Vec<(DateTime<Utc>, f64)> = samples
        .iter()
        .filter(|s| s.at >= now - FIT_WINDOW && s.at <= now)
        .filter_map(|s| s.value(metric).map(|v| (s.at, v)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    let long = match (recent.first(), recent.last()) {
        (Some(first), Some(last)) => last.0 - first.0 > RAW_RETENTION,
        _ => false,
    };
    let points: Vec<(DateTime<Utc>, f64)> = if long {
        let mut daily: BTreeMap<NaiveDate, (DateTime<Utc>, f64)> = BTreeMap::new();
        for (at, value) in recent {
            let day = daily.entry(at.date_naive()).or_insert((at, value));
            *day = (day.0.max(at), day.1.max(value));
        }
        daily.into_values().collect()
    } else {
        recent
    };
    let Some(origin) = points.first().map(|p| p.0) else {
        return Vec::new();
    };
    points
        .into_iter()
        .map(|(at, value)| ((at - origin).num_seconds() as f64 / 86_400.0, value))
        .collect()
}

/// The Theil-Sen slope of `points` with its 95% confidence bounds (Sen 1968: the slopes
/// ranked (N -/+ 1.96 sqrt(Var S)) / 2 among the N pairwise slopes).
fn sen_slope(points: &[(f64, f64)]) -> (f64, f64, f64) {
    let mut slopes = Vec::with_capacity(points.len() * points.len() / 2);
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            if b.0 > a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    if slopes.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    slopes.sort_by(f64::total_cmp);
    let n = points.len() as f64;
    let count = slopes.len() as f64;
    let spread = 1.96 * (n * (n - 1.0) * (2.0 * n + 5.0) / 18.0).sqrt();
    let rank = |r: f64| slopes[(r.round().max(1.0) as usize - 1).min(slopes.len() - 1)];
    (
        median(&slopes),
        rank((count - spread) / 2.0),
        rank((count + spread) / 2.0 + 1.0),
    )
}

fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// What a change of level is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// First seen above OK.
    Raised,
    /// Up a level.
    Escalated,
    /// Down a level, still above OK.
    Eased,
    /// Back to OK.
    Recovered,
}

/// The alert a metric's move from `previous` to `current` deserves, if any: a sustained
/// level (the same as last time) is silent, as is a first observation at OK, and a missing
/// observation (`current` is `None`: the view has no data yet) changes nothing.
pub fn change(previous: Option<Level>, current: Option<Level>) -> Option<Change> {
    let current = current?;
    match previous {
        None if current == Level::Ok => None,
        None => Some(Change::Raised),
        Some(previous) if previous == current => None,
        Some(_) if current == Level::Ok => Some(Change::Recovered),
        Some(previous) if current > previous => Some(Change::Escalated),
        Some(_) => Some(Change::Eased),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::hours(hours)
    }

    fn sample(hours: i64, bytes: u64) -> Sample {
        Sample {
            at: at(hours),
            storage_bytes: bytes,
            peak_operations_per_second: None,
            peak_writes_per_second: None,
        }
    }

    const TB: u64 = 1_000_000_000_000;

    #[test]
    fn levels_follow_the_shares() {
        assert_eq!(Level::of(0.0, 100.0), Level::Ok);
        assert_eq!(Level::of(69.9, 100.0), Level::Ok);
        assert_eq!(Level::of(70.0, 100.0), Level::Warning);
        assert_eq!(Level::of(89.9, 100.0), Level::Warning);
        assert_eq!(Level::of(90.0, 100.0), Level::Critical);
        assert_eq!(Level::of(250.0, 100.0), Level::Critical);
        assert_eq!(Level::of_throttled(0), Level::Ok);
        assert_eq!(Level::of_throttled(1), Level::Critical);
    }

    #[test]
    fn a_sustained_breach_is_one_alert_and_each_change_one_more() {
        use Level::*;
        let path = [
            Ok, Warning, Warning, Warning, Critical, Critical, Warning, Ok, Ok,
        ];
        let mut previous = None;
        let mut alerts = Vec::new();
        for level in path {
            if let Some(c) = change(previous, Some(level)) {
                alerts.push((c, level));
            }
            previous = Some(level);
        }
        assert_eq!(
            alerts,
            [
                (Change::Escalated, Warning),
                (Change::Escalated, Critical),
                (Change::Eased, Warning),
                (Change::Recovered, Ok),
            ]
        );
    }

    #[test]
    fn first_observations_and_missing_data() {
        assert_eq!(change(None, Some(Level::Ok)), None);
        assert_eq!(change(None, Some(Level::Critical)), Some(Change::Raised));
        // A view that lags has no data: no recovery is announced for lack of it.
        assert_eq!(change(Some(Level::Critical), None), None);
        assert_eq!(change(None, None), None);
    }

    #[test]
    fn no_history_is_not_enough_to_project() {
        let now = at(0);
        assert_eq!(
            project(&[], Metric::Storage, 1.0, 2.0, now),
            Projection::InsufficientHistory { samples: 0 }
        );
        let few = [sample(-3, 1), sample(-2, 2), sample(-1, 3), sample(0, 4)];
        assert_eq!(
            project(&few, Metric::Storage, 4.0, 100.0, now),
            Projection::InsufficientHistory { samples: 4 },
            "four samples over three hours is not a day"
        );
    }

    #[test]
    fn flat_usage_is_not_growing() {
        let flat: Vec<Sample> = (0..40).map(|h| sample(-h * 6, TB)).rev().collect();
        assert_eq!(
            project(&flat, Metric::Storage, TB as f64, 2.0 * TB as f64, at(0)),
            Projection::NotGrowing { per_day: 0.0 }
        );
    }

    #[test]
    fn steady_growth_is_projected_with_a_range_and_ignores_a_bulk_load() {
        // 10 GB a day for 60 days, from 1 TB; one day a bulk load adds 300 GB and a
        // DELETE's compaction removes it two days later.
        let gb = 1_000_000_000u64;
        let mut samples: Vec<Sample> = (0..60)
            .map(|d| sample((d - 59) * 24, TB + (d as u64) * 10 * gb))
            .collect();
        samples[30].storage_bytes += 300 * gb;
        samples[31].storage_bytes += 300 * gb;
        let current = samples.last().unwrap().storage_bytes as f64;
        let projection = project(&samples, Metric::Storage, current, 2.0 * TB as f64, at(0));
        let Projection::Within {
            per_day,
            days,
            date,
            earliest_days,
            latest_days,
        } = projection
        else {
            panic!("{projection:?}");
        };
        assert!(
            (per_day - 10.0 * gb as f64).abs() < 0.01 * gb as f64,
            "{per_day}"
        );
        // 1 TB - 590 GB left at 10 GB/day.
        assert!((days - 41.0).abs() < 0.5, "{days}");
        assert_eq!(date, NaiveDate::from_ymd_opt(2026, 7, 12).unwrap());
        assert!(earliest_days <= days && latest_days.unwrap() >= days);
    }

    #[test]
    fn noisy_growth_gets_a_wider_range_and_far_growth_is_not_within_a_year() {
        let gb = 1e9;
        let noisy: Vec<Sample> = (0..30)
            .map(|d| {
                // Deterministic scatter of -48..+48 GB around the trend.
                let wobble = ((d * 7919) % 13) as f64 * 8.0 - 48.0;
                sample(
                    (d - 29) * 24,
                    (1e12 + d as f64 * 10.0 * gb + wobble * gb) as u64,
                )
            })
            .collect();
        let current = noisy.last().unwrap().storage_bytes as f64;
        match project(&noisy, Metric::Storage, current, 2e12, at(0)) {
            Projection::Within {
                earliest_days,
                latest_days,
                days,
                ..
            } => {
                let latest = latest_days.unwrap_or(f64::INFINITY);
                assert!(latest - earliest_days > 10.0, "{earliest_days}..{latest}");
                assert!(earliest_days < days && days < latest);
            }
            other => panic!("{other:?}"),
        }
        let slow: Vec<Sample> = (0..30)
            .map(|d| sample((d - 29) * 24, (1e12 + d as f64 * gb) as u64))
            .collect();
        assert!(matches!(
            project(&slow, Metric::Storage, 1.03e12, 2e12, at(0)),
            Projection::NotWithinAYear { .. }
        ));
        assert_eq!(
            project(&slow, Metric::Storage, 2e12, 2e12, at(0)),
            Projection::Reached
        );
    }

    #[test]
    fn history_keeps_raw_samples_for_days_then_daily_highs() {
        let mut state = QuotaState::default();
        for quarter in 0..(10 * 24 * 4) {
            let bytes = 1_000 + quarter as u64;
            state.record(Sample {
                at: at(0) + Duration::minutes(15 * quarter),
                storage_bytes: bytes,
                peak_operations_per_second: Some((quarter % 7) as f64),
                peak_writes_per_second: None,
            });
        }
        // Three days raw (288 + the boundary) and seven earlier days as one sample each.
        let raw = state
            .samples
            .iter()
            .filter(|s| s.at >= state.samples.last().unwrap().at - RAW_RETENTION)
            .count();
        assert_eq!(raw, 289);
        assert_eq!(state.samples.len(), raw + 7);
        let first = state.samples[0];
        assert_eq!(first.storage_bytes, 1_000 + 95, "the day's highest");
        assert_eq!(first.peak_operations_per_second, Some(6.0));
        assert!(state.samples.windows(2).all(|w| w[0].at < w[1].at));
        // A repeated instant replaces the sample (a retried run).
        let last = *state.samples.last().unwrap();
        state.record(Sample {
            storage_bytes: 1,
            ..last
        });
        assert_eq!(state.samples.len(), raw + 7);
        assert_eq!(state.samples.last().unwrap().storage_bytes, 1);
    }

    #[test]
    fn requests_are_summarised_per_minute_and_absent_data_is_not_zero() {
        assert_eq!(RequestSummary::of(&[]), None);
        let minute = |m: i64, calls, writes, throttled| RequestInterval {
            start: at(0) + Duration::minutes(m),
            calls,
            writes,
            throttled,
        };
        // Two statements in minute 0 add up; minute 1 has a throttled request.
        let summary = RequestSummary::of(&[
            minute(0, 300, 60, 0),
            minute(0, 300, 0, 0),
            minute(1, 120, 120, 2),
        ])
        .unwrap();
        assert_eq!(summary.intervals, 2);
        assert_eq!(summary.through, at(0) + Duration::minutes(1));
        assert_eq!(summary.peak_operations_per_second, 10.0);
        assert_eq!(summary.mean_operations_per_second, 6.0);
        assert_eq!(summary.peak_writes_per_second, 2.0);
        assert_eq!(summary.throttled, 2);
        // Counts near u64::MAX saturate instead of overflowing.
        let huge = RequestSummary::of(&[minute(0, u64::MAX, 0, 0), minute(1, u64::MAX, 0, 0)]);
        assert!(huge.unwrap().mean_operations_per_second.is_finite());
    }

    #[test]
    fn quota_overrides_merge_with_the_default() {
        let quotas = Quotas::parse(
            Quota::default(),
            r#"{"snowcast_eu": {"storage_bytes": 4000000000000}}"#,
        )
        .unwrap();
        assert_eq!(quotas.of("SNOWCAST_EU").storage_bytes, 4 * TB);
        assert_eq!(quotas.of("SNOWCAST_EU").operations_per_second, 8_000.0);
        assert_eq!(quotas.of("OTHER"), Quota::default());
        assert!(Quotas::parse(Quota::default(), r#"{"X": {"storage": 1}}"#).is_err());
        assert!(Quotas::parse(Quota::default(), r#"{"X": {"writes_per_second": 0}}"#).is_err());
        // Found by the adversarial review: the README's float notation, tiny and absent
        // quotas.
        let float = Quotas::parse(Quota::default(), r#"{"EU": {"storage_bytes": 4e12}}"#);
        assert_eq!(float.unwrap().of("EU").storage_bytes, 4 * TB);
        for bad in [
            r#"{"X": {"operations_per_second": 5e-324}}"#,
            r#"{"X": {"storage_bytes": 1.5}}"#,
            r#"{"X": 5}"#,
            r#"{"X": null}"#,
        ] {
            assert!(Quotas::parse(Quota::default(), bad).is_err(), "{bad}");
        }
    }
}
