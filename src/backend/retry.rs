//! When a failed HTTP call is tried again, and how long to wait first.
//!
//! A pure policy, after async-openai's retry middleware: 429 (except `insufficient_quota`,
//! which waiting does not cure), 5xx, connection errors, timeouts and unreadable bodies
//! are transient; any other 4xx is final. Waits grow exponentially with full jitter up to
//! a cap, unless the server says how long to wait (`Retry-After`, seconds or an HTTP
//! date), which is honoured up to its own cap. This module decides; the backend sleeps.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often and how patiently a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
    /// The ceiling of the first backoff; each retry doubles it.
    pub base: Duration,
    /// The largest backoff ceiling.
    pub cap: Duration,
    /// The longest wait a `Retry-After` header can impose.
    pub retry_after_cap: Duration,
}

impl RetryPolicy {
    /// The default first backoff ceiling.
    pub const BASE: Duration = Duration::from_millis(500);
    /// The default largest backoff ceiling.
    pub const CAP: Duration = Duration::from_secs(30);
    /// The default longest wait a server may ask for.
    pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

    /// The production policy: 0.5 s doubling to 30 s, `Retry-After` up to 60 s.
    pub fn new(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base: Self::BASE,
            cap: Self::CAP,
            retry_after_cap: Self::RETRY_AFTER_CAP,
        }
    }

    /// The backoff ceiling before retry number `retry` (0 for the first retry):
    /// `base * 2^retry`, at most `cap`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        // 2^31 half-seconds is decades: past that, the cap has long applied.
        let factor = 1u32 << retry.min(31);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Full jitter: a wait drawn uniformly below the ceiling, `unit` in [0, 1) being the
    /// draw. Spreading waits over the whole range keeps many clients that failed together
    /// from retrying together.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// How long to wait before retry number `retry`: what the server asked for (capped),
    /// or else the jittered backoff.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        match retry_after {
            Some(asked) => asked.min(self.retry_after_cap),
            None => self.backoff(retry, unit),
        }
    }
}

/// Whether an HTTP error status is worth retrying; `body` is the response body, read for
/// the `insufficient_quota` code that makes a 429 final.
pub fn retryable_status(status: u16, body: &str) -> bool {
    match status {
        429 => !is_insufficient_quota(body),
        500..=599 => true,
        _ => false,
    }
}

/// Whether an error body says the account is out of quota (OpenAI sends this with 429,
/// and no wait will help).
pub fn is_insufficient_quota(body: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(value) => {
            let error = value.get("error").unwrap_or(&value);
            ["code", "type"].iter().any(|field| {
                error.get(field).and_then(serde_json::Value::as_str) == Some("insufficient_quota")
            })
        }
        // A body that is not JSON is matched as text.
        Err(_) => body.contains("insufficient_quota"),
    }
}

/// Reads a `Retry-After` value: delay-seconds (`"120"`, leniently `"1.5"`) or an HTTP
/// date (`"Wed, 21 Oct 2015 07:28:00 GMT"`), measured from `now`. A date in the past
/// means no wait; anything unreadable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        // A huge value would overflow a Duration; such a header is as good as none.
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let date = parse_http_date(value)?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Reads OpenAI's `retry-after-ms` header (milliseconds, possibly fractional).
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let millis = value.trim().parse::<f64>().ok()?;
    Duration::try_from_secs_f64(millis / 1000.0).ok()
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the one HTTP-date form
/// senders must use.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let (_weekday, rest) = value.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':');
    let hour: u64 = clock.next()?.parse().ok()?;
    let minute: u64 = clock.next()?.parse().ok()?;
    let second: u64 = clock.next()?.parse().ok()?;
    if parts.next()? != "GMT" || parts.next().is_some() || clock.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    let seconds = days
        .checked_mul(86_400)?
        .checked_add(hour * 3_600 + minute * 60 + second)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A draw in [0, 1) for jitter. `RandomState` is seeded randomly per process and
/// differs per call, which is all jitter needs (it must not be reproducible: clients
/// that failed together should not retry together).
pub fn jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    hasher.write_u32(nanos);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod overflow_tests {
    use super::*;

    #[test]
    fn absurd_retry_after_values_are_ignored_not_fatal() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("1e20", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after_ms("1e30"), None);
        // Far in the future is a long wait (the caller caps it), not a panic.
        let far = parse_retry_after("Wed, 21 Oct 99999999999 07:28:00 GMT", now);
        assert!(far.is_none_or(|wait| wait > Duration::from_secs(86_400)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            retry_after_cap: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_default_policy_starts_at_half_a_second_and_caps_at_thirty() {
        let policy = RetryPolicy::new(6);
        assert_eq!(policy.ceiling(0), Duration::from_millis(500));
        assert_eq!(policy.ceiling(1), Duration::from_secs(1));
        assert_eq!(policy.ceiling(5), Duration::from_secs(16));
        assert_eq!(policy.ceiling(6), Duration::from_secs(30));
        assert_eq!(policy.ceiling(1_000), Duration::from_secs(30));
    }

    #[test]
    fn backoff_ceilings_double_until_the_cap() {
        let policy = fast();
        let ceilings: Vec<u128> = (0..6)
            .map(|retry| policy.ceiling(retry).as_millis())
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let policy = fast();
        assert_eq!(policy.backoff(2, 0.0), Duration::ZERO);
        assert_eq!(policy.backoff(2, 0.5), Duration::from_millis(200));
        assert_eq!(
            policy.backoff(2, 0.999_999),
            policy.ceiling(2).mul_f64(0.999_999)
        );
        // A draw out of range cannot exceed the ceiling.
        assert_eq!(policy.backoff(2, 7.0), policy.ceiling(2));
    }

    #[test]
    fn jitter_draws_lie_in_the_unit_interval_and_vary() {
        let draws: Vec<f64> = (0..100).map(|_| jitter()).collect();
        assert!(draws.iter().all(|draw| (0.0..1.0).contains(draw)));
        let first = draws[0];
        assert!(draws.iter().any(|draw| *draw != first));
    }

    #[test]
    fn retry_after_wins_over_backoff_up_to_its_cap() {
        let policy = fast();
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(2)), 0.9),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(600)), 0.9),
            Duration::from_secs(5)
        );
        assert_eq!(policy.delay(1, None, 0.5), Duration::from_millis(100));
        assert_eq!(
            RetryPolicy::new(3).delay(0, Some(Duration::from_secs(3_600)), 0.0),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn retry_after_reads_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn retry_after_reads_http_dates() {
        // 1994-11-06T08:49:37Z is 784111777 seconds after the epoch.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777 - 42);
        assert_eq!(parse_retry_after(date, now), Some(Duration::from_secs(42)));
        // A date already past asks for no wait.
        let later = UNIX_EPOCH + Duration::from_secs(784_111_777 + 10);
        assert_eq!(parse_retry_after(date, later), Some(Duration::ZERO));
        // Leap day and year boundaries.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"), Some(leap));
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn retry_after_ms_reads_milliseconds() {
        assert_eq!(
            parse_retry_after_ms("250"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after_ms("12.5"),
            Some(Duration::from_micros(12_500))
        );
        assert_eq!(parse_retry_after_ms("x"), None);
    }

    #[test]
    fn transient_statuses_are_retried_and_other_client_errors_are_not() {
        for status in [429, 500, 502, 503, 504, 599] {
            assert!(retryable_status(status, ""), "{status}");
        }
        for status in [400, 401, 403, 404, 408, 413, 422] {
            assert!(!retryable_status(status, ""), "{status}");
        }
    }

    #[test]
    fn a_429_for_insufficient_quota_is_final() {
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert!(!retryable_status(429, quota));
        let code_only = r#"{"error":{"message":"quota","code":"insufficient_quota"}}"#;
        assert!(!retryable_status(429, code_only));
        assert!(!retryable_status(429, "insufficient_quota"));
        let rate = r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert!(retryable_status(429, rate));
        // A 5xx is retried whatever its body says.
        assert!(retryable_status(503, quota));
    }
}
