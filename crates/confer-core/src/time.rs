//! Time as the core sees it: a point given by the caller, never read from a clock.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Milliseconds since 1970-01-01T00:00:00Z.
///
/// Milliseconds because GWS chat timestamps are milliseconds (`1392308459000`);
/// the wire crates derive seconds and ISO 8601 text from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

const MILLIS_PER_DAY: i64 = 86_400_000;

impl Timestamp {
    /// The point `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// This point moved by `delta` milliseconds (saturating at the ends of time).
    pub const fn plus_millis(self, delta: i64) -> Self {
        Self(self.0.saturating_add(delta))
    }

    /// Whole seconds from `earlier` to `self`; 0 when `earlier` is not earlier.
    pub fn whole_seconds_since(self, earlier: Timestamp) -> u64 {
        let elapsed = self.0.saturating_sub(earlier.0);
        u64::try_from(elapsed / 1000).unwrap_or(0)
    }

    /// ISO 8601 in UTC with milliseconds, e.g. `2014-02-13T16:20:59.000Z`.
    pub fn to_iso8601_utc(self) -> String {
        let days = self.0.div_euclid(MILLIS_PER_DAY);
        let millis_of_day = self.0.rem_euclid(MILLIS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let seconds_of_day = millis_of_day / 1000;
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            seconds_of_day / 3600,
            (seconds_of_day / 60) % 60,
            seconds_of_day % 60,
            millis_of_day % 1000
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso8601_utc())
    }
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_seed_chat_timestamp() {
        // The chat seed prints 2014-02-13 08:20:59.000-0800 for 1392308459000.
        assert_eq!(
            Timestamp::from_millis(1_392_308_459_000).to_iso8601_utc(),
            "2014-02-13T16:20:59.000Z"
        );
    }

    #[test]
    fn formats_the_epoch_and_dates_before_it() {
        assert_eq!(
            Timestamp::from_millis(0).to_iso8601_utc(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(-1).to_iso8601_utc(),
            "1969-12-31T23:59:59.999Z"
        );
        assert_eq!(
            Timestamp::from_millis(951_782_400_000).to_iso8601_utc(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let _ = Timestamp::from_millis(i64::MIN).to_iso8601_utc();
        let _ = Timestamp::from_millis(i64::MAX).to_iso8601_utc();
        assert_eq!(
            Timestamp::from_millis(i64::MIN).whole_seconds_since(Timestamp::from_millis(i64::MAX)),
            0
        );
    }

    #[test]
    fn seconds_between() {
        let start = Timestamp::from_millis(1_000);
        assert_eq!(start.plus_millis(43_999).whole_seconds_since(start), 43);
        assert_eq!(start.whole_seconds_since(start.plus_millis(5)), 0);
    }
}
