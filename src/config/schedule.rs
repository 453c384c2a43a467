//! When `run` syncs a connector: cron expressions and intervals, parsed and validated.
//!
//! This is data and pure functions (parsing, "when is the next run after t"); the loop that
//! waits and starts syncs lives in `crate::worker`. Cron expressions are evaluated in UTC.

use std::fmt;
use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use time::OffsetDateTime;

/// The shortest interval accepted: one second (the cron resolution too).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A connector's schedule: when `run` starts its syncs.
#[derive(Clone)]
pub enum Schedule {
    /// A cron expression, evaluated in UTC.
    Cron(Box<Cron>),
    /// A fixed rate: a sync every `Duration`, counted from the start of `run` (or from the
    /// start-up sync), whatever each sync's length; a sync that comes due while the previous one
    /// still runs is skipped.
    Interval(Duration),
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({self})")
    }
}

impl fmt::Display for Schedule {
    /// `cron "0 */6 * * *"` or `every 15m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cron(cron) => write!(f, "cron {:?}", cron.as_str()),
            Self::Interval(every) => write!(f, "every {}", humantime::format_duration(*every)),
        }
    }
}

impl Schedule {
    /// The first run strictly after `now`: the next cron match, or `now` + the interval.
    pub fn first_after(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Self::Cron(cron) => next_cron_match(cron, now),
            Self::Interval(every) => Some(now + *every),
        }
    }

    /// The run after the one that was due at `due`, strictly after `now` (runs missed while the
    /// process was busy or asleep are not made up). For an interval that is `due` + k × interval;
    /// for cron the next match after both.
    pub fn next_after(&self, due: OffsetDateTime, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Self::Cron(cron) => next_cron_match(cron, due.max(now)),
            Self::Interval(every) => {
                let mut next = due + *every;
                if next <= now {
                    // Jump over the missed runs in one step.
                    let behind = (now - next).unsigned_abs().as_nanos();
                    let steps = behind / every.as_nanos() + 1;
                    next += *every * u32::try_from(steps).unwrap_or(u32::MAX);
                }
                Some(next)
            }
        }
    }
}

/// The first time strictly after `after` that `cron` matches, in UTC; `None` when there is none.
///
/// The one place `chrono` appears: the cron parser (`croner`) reads and returns `chrono` times,
/// and everything else in the crate uses `time`, so the conversion happens here, both ways, and
/// no `chrono` type leaves this function.
fn next_cron_match(cron: &Cron, after: OffsetDateTime) -> Option<OffsetDateTime> {
    let after: chrono::DateTime<chrono::Utc> =
        chrono::DateTime::from_timestamp(after.unix_timestamp(), after.nanosecond())?;
    let next = cron.find_next_occurrence(&after, false).ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(next.timestamp_nanos_opt()?)).ok()
}

/// Parses a cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 with
/// seconds first, names (`MON`, `JAN`), ranges, steps, lists, and `@hourly`-style nicknames.
/// `Err` is a sentence fragment for a validation message.
pub fn parse_cron(expression: &str) -> Result<Cron, String> {
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build();
    let cron = parser.parse(expression).map_err(|error| {
        format!(
            "is not a cron expression ({error}); write 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, e.g. \"0 */6 * * *\""
        )
    })?;
    // A pattern like "0 0 30 2 *" parses but never matches: reject it now, not at run time.
    if next_cron_match(&cron, OffsetDateTime::now_utc()).is_none() {
        return Err("never matches a date".to_owned());
    }
    Ok(cron)
}

/// Parses a duration such as `30s`, `15m`, `1h30m` or `2days`; a bare number is seconds.
/// `Err` is a sentence fragment for a validation message.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .map_err(|error| format!("is not a duration ({error}); write e.g. 30s, 15m, 1h or 1h30m"))
}

/// Parses an interval: a duration of at least one second.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let every = parse_duration(text)?;
    if every < MIN_INTERVAL {
        return Err("is too short: the interval must be at least 1s".to_owned());
    }
    Ok(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UTC time from `YYYY-MM-DD HH:MM:SS[.fff]`.
    fn at(text: &str) -> OffsetDateTime {
        let rfc3339 = format!("{}Z", text.replace(' ', "T"));
        OffsetDateTime::parse(&rfc3339, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// (expression, a time, the next run after it or the start of the expected error)
    #[test]
    fn cron_expressions_parse_and_give_the_next_run() {
        let after = at("2026-11-23 10:17:30");
        let table: &[(&str, Result<OffsetDateTime, &str>)] = &[
            ("0 */6 * * *", Ok(at("2026-11-23 12:00:00"))),
            ("*/15 * * * *", Ok(at("2026-11-23 10:30:00"))),
            ("30 2 * * *", Ok(at("2026-11-24 02:30:00"))),
            // Six fields: seconds first.
            ("*/10 * * * * *", Ok(at("2026-11-23 10:17:40"))),
            ("0 0 12 * * *", Ok(at("2026-11-23 12:00:00"))),
            // 2026-11-23 is a Monday.
            ("0 9 * * MON-FRI", Ok(at("2026-11-24 09:00:00"))),
            ("0 9 * * sun", Ok(at("2026-11-29 09:00:00"))),
            ("0 0 1 JAN *", Ok(at("2027-01-01 00:00:00"))),
            ("0 8,20 * * *", Ok(at("2026-11-23 20:00:00"))),
            ("@hourly", Ok(at("2026-11-23 11:00:00"))),
            ("@daily", Ok(at("2026-11-24 00:00:00"))),
            ("  0 */6 * * *  ", Ok(at("2026-11-23 12:00:00"))),
            ("", Err("is not a cron expression")),
            ("every day", Err("is not a cron expression")),
            ("0 */6 * *", Err("is not a cron expression")),
            ("60 * * * *", Err("is not a cron expression")),
            ("0 25 * * *", Err("is not a cron expression")),
            ("0 0 * 13 *", Err("is not a cron expression")),
            ("* * * * * * 2030", Err("is not a cron expression")),
            ("0 0 30 2 *", Err("never matches a date")),
        ];
        for (expression, expected) in table {
            let parsed = parse_cron(expression).map(|cron| Schedule::Cron(Box::new(cron)));
            match (parsed, expected) {
                (Ok(schedule), Ok(next)) => {
                    assert_eq!(schedule.first_after(after), Some(*next), "{expression:?}")
                }
                (Err(error), Err(start)) => {
                    assert!(error.starts_with(start), "{expression:?}: {error}")
                }
                (got, want) => panic!("{expression:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_cron_run_after_a_due_time_is_strictly_later() {
        let schedule = Schedule::Cron(Box::new(parse_cron("*/10 * * * * *").unwrap()));
        let due = at("2026-11-23 10:00:10");
        assert_eq!(
            schedule.next_after(due, due),
            Some(at("2026-11-23 10:00:20"))
        );
        // The process was busy past the next matches: no catch-up burst.
        assert_eq!(
            schedule.next_after(due, at("2026-11-23 10:00:35")),
            Some(at("2026-11-23 10:00:40"))
        );
        assert_eq!(schedule.to_string(), "cron \"*/10 * * * * *\"");
    }

    #[test]
    fn durations_and_intervals() {
        let table: &[(&str, Result<u64, &str>)] = &[
            ("30s", Ok(30)),
            ("15m", Ok(900)),
            ("1h", Ok(3600)),
            ("1h30m", Ok(5400)),
            ("2days", Ok(172_800)),
            ("45", Ok(45)),
            (" 5m ", Ok(300)),
            ("0s", Err("is too short")),
            ("500ms", Err("is too short")),
            ("15 minutes", Ok(900)),
            ("fast", Err("is not a duration")),
            ("-5m", Err("is not a duration")),
            ("", Err("is not a duration")),
        ];
        for (text, expected) in table {
            match (parse_interval(text), expected) {
                (Ok(every), Ok(seconds)) => assert_eq!(every.as_secs(), *seconds, "{text:?}"),
                (Err(error), Err(start)) => assert!(error.starts_with(start), "{text:?}: {error}"),
                (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn intervals_are_a_fixed_rate_and_skip_missed_runs() {
        let every = Schedule::Interval(Duration::from_secs(60));
        let start = at("2026-11-23 10:00:00");
        assert_eq!(every.first_after(start), Some(at("2026-11-23 10:01:00")));
        let due = at("2026-11-23 10:01:00");
        assert_eq!(
            every.next_after(due, at("2026-11-23 10:01:00.5")),
            Some(at("2026-11-23 10:02:00"))
        );
        // Woken late, after 2.5 periods: the next run stays on the grid, in the future.
        assert_eq!(
            every.next_after(due, at("2026-11-23 10:03:30")),
            Some(at("2026-11-23 10:04:00"))
        );
        assert_eq!(
            every.next_after(due, at("2026-11-23 10:03:00")),
            Some(at("2026-11-23 10:04:00"))
        );
        assert_eq!(every.to_string(), "every 1m");
    }
}
