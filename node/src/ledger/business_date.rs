//! The business date of an instant: the store's calendar day in its own time zone, with an
//! optional hour at which the business day starts (a bar open until 02:00 books those sales
//! on the evening before). Time zones come from the IANA tz database (chrono-tz), so
//! daylight-saving changes are handled.

use chrono::{DateTime, Duration, NaiveDate};
use chrono_tz::Tz;
use thiserror::Error;

/// Errors of the business calendar.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CalendarError {
    /// Not an IANA time zone name.
    #[error("unknown time zone {0:?} (expected an IANA name such as Europe/London)")]
    UnknownTimeZone(String),
    /// The business day must start between 00:00 and 23:00.
    #[error("business day start hour {0} is not in 0..=23")]
    StartHour(u8),
    /// The instant is outside the range chrono can represent.
    #[error("instant {0} ms is out of range")]
    OutOfRange(i64),
}

/// The store's calendar.
#[derive(Clone, Copy, Debug)]
pub struct BusinessCalendar {
    time_zone: Tz,
    day_start_hour: u8,
}

impl BusinessCalendar {
    /// A calendar in the IANA zone `time_zone` whose business day starts at
    /// `day_start_hour`:00 local time (0 = midnight).
    pub fn new(time_zone: &str, day_start_hour: u8) -> Result<Self, CalendarError> {
        let time_zone: Tz = time_zone
            .parse()
            .map_err(|_| CalendarError::UnknownTimeZone(time_zone.to_owned()))?;
        if day_start_hour > 23 {
            return Err(CalendarError::StartHour(day_start_hour));
        }
        Ok(Self {
            time_zone,
            day_start_hour,
        })
    }

    /// The time zone.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// The business date of `instant_ms` (ms since the Unix epoch).
    pub fn business_date(&self, instant_ms: i64) -> Result<NaiveDate, CalendarError> {
        let utc = DateTime::from_timestamp_millis(instant_ms)
            .ok_or(CalendarError::OutOfRange(instant_ms))?;
        let local = utc.with_timezone(&self.time_zone).naive_local();
        let shifted = local - Duration::hours(i64::from(self.day_start_hour));
        Ok(shifted.date())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ms(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("unambiguous local time")
            .timestamp_millis()
    }

    #[test]
    fn dates_follow_local_time_across_the_uk_spring_change() {
        let cal = BusinessCalendar::new("Europe/London", 0).expect("valid");
        let london = cal.time_zone();
        // 2017-03-26 00:30 GMT and 23:30 BST are the same business date.
        let early = ms(london, 2017, 3, 26, 0, 30);
        let late = ms(london, 2017, 3, 26, 23, 30);
        assert_eq!(
            cal.business_date(early).expect("in range").to_string(),
            "2017-03-26"
        );
        assert_eq!(
            cal.business_date(late).expect("in range").to_string(),
            "2017-03-26"
        );
        // 23:30 BST is 22:30 UTC: a UTC calendar would agree here, but 00:30 BST on the 27th
        // is still the 26th in UTC.
        let after_midnight = ms(london, 2017, 3, 27, 0, 30);
        assert_eq!(
            cal.business_date(after_midnight)
                .expect("in range")
                .to_string(),
            "2017-03-27"
        );
    }

    #[test]
    fn a_late_start_hour_books_night_sales_on_the_previous_day() {
        let cal = BusinessCalendar::new("Europe/London", 4).expect("valid");
        let night = ms(cal.time_zone(), 2017, 1, 1, 1, 21);
        assert_eq!(
            cal.business_date(night).expect("in range").to_string(),
            "2016-12-31"
        );
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(matches!(
            BusinessCalendar::new("Mars/Olympus", 0),
            Err(CalendarError::UnknownTimeZone(_))
        ));
        assert_eq!(
            BusinessCalendar::new("UTC", 24).err(),
            Some(CalendarError::StartHour(24))
        );
    }
}
