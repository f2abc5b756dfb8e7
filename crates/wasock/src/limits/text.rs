//! Limits set by name from an operator's text (`wasock run`'s limit flags, the containerd
//! shim's annotations): one reading of every value, one set of errors.
//!
//! Whole numbers past their type's range saturate to its largest value; seconds past
//! [`FOREVER`] (`inf` included) saturate to it, which is to say never; NaN, negatives, an
//! empty value and anything not decimal are errors.

use super::{FOREVER, Limits, MAX_WRITE_BUFFER};
use std::fmt;
use std::num::IntErrorKind;
use std::str::FromStr;
use std::time::Duration;

/// The names [`Limits::set`] knows, as `wasock run`'s flags spell them.
pub const LIMIT_NAMES: [&str; 8] = [
    "max-sockets",
    "max-lookups",
    "lookup-timeout",
    "connect-timeout",
    "write-buffer",
    "max-backlog",
    "bandwidth-in",
    "bandwidth-out",
];

/// Why [`Limits::set`] refused a value; each quotes the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitError {
    /// No limit has that name.
    UnknownName(String),
    /// A count below zero.
    Negative(String),
    /// A count that is not decimal digits.
    NotAWholeNumber(String),
    /// Zero where at least one `unit` is needed.
    Zero {
        /// What the limit counts (`byte`, `byte per second`).
        unit: &'static str,
        /// The value given.
        text: String,
    },
    /// Seconds that are not a number (NaN included).
    NotSeconds(String),
    /// Seconds below zero.
    NegativeSeconds(String),
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::UnknownName(name) => write!(
                f,
                "{name:?} is not a limit (expected one of {})",
                LIMIT_NAMES.join(", ")
            ),
            LimitError::Negative(text) => write!(f, "must not be negative, got {text:?}"),
            LimitError::NotAWholeNumber(text) => {
                write!(f, "expected a whole number, got {text:?}")
            }
            LimitError::Zero { unit, text } => {
                write!(f, "must be at least 1 {unit}, got {text:?}")
            }
            LimitError::NotSeconds(text) => {
                write!(f, "expected a number of seconds, got {text:?}")
            }
            LimitError::NegativeSeconds(text) => {
                write!(f, "expected a number of seconds, 0 or more, got {text:?}")
            }
        }
    }
}

impl std::error::Error for LimitError {}

impl Limits {
    /// Sets the limit `name` (one of [`LIMIT_NAMES`]) from `text`, by the module's rules:
    /// `connect-timeout` 0 is the OS's own timeout, `max-backlog` 0 counts as 1, `write-buffer`
    /// past [`MAX_WRITE_BUFFER`] as that; `write-buffer` and the bandwidths are at least 1.
    pub fn set(&mut self, name: &str, text: &str) -> Result<(), LimitError> {
        match name {
            "max-sockets" => self.max_sockets = Some(count(text)?),
            "max-lookups" => self.max_lookups = count(text)?,
            "lookup-timeout" => self.lookup_timeout = seconds(text)?,
            "connect-timeout" => {
                let timeout = seconds(text)?;
                self.connect_timeout = (!is_zero(text)).then_some(timeout);
            }
            "write-buffer" => {
                self.write_buffer = at_least_one::<usize>(text, "byte")?.min(MAX_WRITE_BUFFER)
            }
            "max-backlog" => self.max_backlog = count::<u32>(text)?.max(1),
            "bandwidth-in" => self.bandwidth_in = Some(at_least_one(text, "byte per second")?),
            "bandwidth-out" => self.bandwidth_out = Some(at_least_one(text, "byte per second")?),
            _ => return Err(LimitError::UnknownName(name.to_string())),
        }
        Ok(())
    }
}

/// An unsigned integer type a count parses into.
trait Count: FromStr<Err = std::num::ParseIntError> + Copy + PartialEq + Default {
    const MAX: Self;
}

impl Count for u32 {
    const MAX: Self = u32::MAX;
}

impl Count for u64 {
    const MAX: Self = u64::MAX;
}

impl Count for usize {
    const MAX: Self = usize::MAX;
}

/// Rule: a count is decimal digits; one past its type's range saturates to the largest value.
fn count<T: Count>(text: &str) -> Result<T, LimitError> {
    match text.parse::<T>() {
        Ok(n) => Ok(n),
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => Ok(T::MAX),
        Err(_) if text.starts_with('-') => Err(LimitError::Negative(text.to_string())),
        Err(_) => Err(LimitError::NotAWholeNumber(text.to_string())),
    }
}

/// Rule: a count that must be at least 1 (`unit` names what it counts, for the error).
fn at_least_one<T: Count>(text: &str, unit: &'static str) -> Result<T, LimitError> {
    let n = count(text)?;
    if n == T::default() {
        return Err(LimitError::Zero {
            unit,
            text: text.to_string(),
        });
    }
    Ok(n)
}

/// Rule: seconds are a decimal number, 0 or more; `inf` and anything past `FOREVER` saturate
/// to `FOREVER`.
fn seconds(text: &str) -> Result<Duration, LimitError> {
    let secs: f64 = (text.parse().ok())
        .filter(|s: &f64| !s.is_nan())
        .ok_or_else(|| LimitError::NotSeconds(text.to_string()))?;
    if secs < 0.0 {
        return Err(LimitError::NegativeSeconds(text.to_string()));
    }
    Ok(Duration::try_from_secs_f64(secs).map_or(FOREVER, |d| d.min(FOREVER)))
}

/// Whether a number of seconds already accepted by [`seconds`] is exactly zero (a tiny positive
/// value rounds to a zero `Duration` but is not "0").
fn is_zero(text: &str) -> bool {
    text.parse::<f64>().is_ok_and(|s| s == 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_sets_its_field_and_no_other_name_does() {
        for name in LIMIT_NAMES {
            let mut l = Limits::default();
            l.set(name, "7").unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut l = Limits::default();
        let e = l.set("max-socket", "7").unwrap_err();
        assert_eq!(e, LimitError::UnknownName("max-socket".into()));
        assert!(
            e.to_string().contains("expected one of max-sockets, "),
            "{e}"
        );
    }
}
