//! The province's time zone: evidence captions, notices, fines (the schedule in force on
//! the violation's local date) and every table a person reads use it.

use chrono::{DateTime, SecondsFormat, Utc};

pub const TIME_ZONE: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;
/// Its IANA name, as evidence manifests and table headings write it.
pub const TIME_ZONE_NAME: &str = "Asia/Ho_Chi_Minh";

/// RFC 3339 with milliseconds and the local offset: `2025-03-01T08:00:04.000+07:00`.
pub fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&TIME_ZONE)
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// For tables: `2025-03-01 08:00:04 +07:00`.
pub fn local_seconds(t: DateTime<Utc>) -> String {
    t.with_timezone(&TIME_ZONE)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// The local calendar date, by which a fine schedule is chosen.
pub fn local_date(t: DateTime<Utc>) -> chrono::NaiveDate {
    t.with_timezone(&TIME_ZONE).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_is_seven_hours_ahead_of_utc() {
        let t: DateTime<Utc> = "2025-03-01T17:30:00Z".parse().unwrap();
        assert_eq!(local_time(t), "2025-03-02T00:30:00.000+07:00");
        assert_eq!(local_seconds(t), "2025-03-02 00:30:00 +07:00");
        assert_eq!(local_date(t).to_string(), "2025-03-02");
        assert_eq!(TIME_ZONE.name(), TIME_ZONE_NAME);
    }
}
