//! The TOML policy file (`--policy FILE`): one key per rule kind, each a list of patterns, the
//! same text as the flags take.
//!
//! ```toml
//! allow-outbound = ["tcp://api.example.com:443", "udp://loopback:53"]
//! deny-outbound  = ["*://cloud-metadata:*"]
//! allow-inbound  = ["tcp://*:80->8080 from loopback"]
//! allow-resolve  = ["db.internal->127.0.0.1"]
//! ```
//!
//! Any other key, a value that is not a list of strings, and every rule error are reported
//! with the file's path, line and column.

use super::RuleSet;
use super::error::{Fail, ParseError, Problem, Source};
use super::parse::parse_pattern;
use super::rules::{Kind, Rule};
use std::ops::Range;
use toml::de::{DeTable, DeValue};

impl RuleSet {
    /// Parses a TOML policy file; `path` only names the file in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<RuleSet, ParseError> {
        Ok(RuleSet::builder().toml(text, path)?.build())
    }

    /// The rules as a TOML policy file, canonically spelled; [`RuleSet::from_toml`] reads it back.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for kind in Kind::ALL {
            let patterns: Vec<String> = (self.rules().iter())
                .filter(|r| r.kind() == kind)
                .map(|r| toml_string(&r.pattern()))
                .collect();
            if !patterns.is_empty() {
                out.push_str(&format!("{kind} = [\n"));
                for p in patterns {
                    out.push_str(&format!("    {p},\n"));
                }
                out.push_str("]\n");
            }
        }
        out
    }
}

/// The rules of a policy file, in file order.
pub(crate) fn parse(text: &str, path: &str) -> Result<Vec<Rule>, ParseError> {
    let table = DeTable::parse(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        file_error(
            text,
            path,
            at,
            line_at(text, at),
            Problem::TomlSyntax(Box::new(e)),
        )
    })?;
    rules_in(table.get_ref(), text, path)
}

/// The rules of one TOML table of `text` (a policy file's top level, or a table inside another
/// file, such as a simulation scenario's component), in order; errors at their line and column.
pub(crate) fn rules_in(
    table: &DeTable<'_>,
    text: &str,
    path: &str,
) -> Result<Vec<Rule>, ParseError> {
    let error =
        |at: usize, shown: &str, problem: Problem| file_error(text, path, at, shown, problem);
    let mut rules = Vec::new();
    for (key, value) in table {
        let key_span = key.span();
        let Some(kind) = Kind::from_name(key.get_ref()) else {
            return Err(error(key_span.start, key.get_ref(), Problem::UnknownKey));
        };
        let DeValue::Array(items) = value.get_ref() else {
            return Err(error(value.span().start, key.get_ref(), Problem::NotAList));
        };
        for item in items.iter() {
            let span = item.span();
            let DeValue::String(pattern) = item.get_ref() else {
                return Err(error(span.start, &text[span], Problem::NotAString));
            };
            let rule = parse_pattern(kind, pattern).map_err(|Fail { at, problem }| {
                let at = content_offset(text, span.clone(), pattern).map_or(span.start, |o| o + at);
                error(at, pattern, problem)
            })?;
            rules.push(rule);
        }
    }
    Ok(rules)
}

/// A policy error at byte `at` of the file `path` holding `text`.
fn file_error(text: &str, path: &str, at: usize, shown: &str, problem: Problem) -> ParseError {
    ParseError {
        source: Source::File {
            path: path.to_owned(),
            line: text[..at.min(text.len())].matches('\n').count() + 1,
        },
        text: shown.to_owned(),
        column: super::error::column_of(text, at),
        problem,
    }
}

/// Where a string's content starts in the file, when the content is the raw text between its
/// quotes (no escapes); `None` otherwise.
fn content_offset(text: &str, span: Range<usize>, value: &str) -> Option<usize> {
    let raw = text.get(span.clone())?;
    let quote = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|q| raw.starts_with(q) && raw.ends_with(q) && raw.len() >= 2 * q.len())?;
    let inner = &raw[quote.len()..raw.len() - quote.len()];
    (inner == value).then_some(span.start + quote.len())
}

/// The line of `text` holding byte `at`.
fn line_at(text: &str, at: usize) -> &str {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    text[start..end].trim_end_matches('\r')
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => out.push(ch),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"# an example policy
allow-outbound = ["tcp://api.example.com:443", "udp://loopback:53"]
deny-outbound  = ["*://cloud-metadata:*"]
allow-inbound  = ["tcp://*:80->8080 from loopback"]
allow-resolve  = ['db.internal->127.0.0.1']
"#;

    #[test]
    fn a_policy_file_reads_and_prints_normalized() {
        let set = RuleSet::from_toml(POLICY, "policy.toml").unwrap();
        assert_eq!(
            set.to_string(),
            "allow-outbound tcp://api.example.com:443\n\
             allow-outbound udp://loopback:53\n\
             deny-outbound *://cloud-metadata:*\n\
             allow-inbound tcp://*:80->8080 from loopback\n\
             allow-resolve db.internal->127.0.0.1\n"
        );
        let again = RuleSet::from_toml(&set.to_toml(), "again.toml").unwrap();
        assert_eq!(again.to_string(), set.to_string());
    }

    #[test]
    fn rule_errors_point_into_the_file() {
        let text =
            "allow-outbound = [\n  \"tcp://api.example.com:443\",\n  \"tcp://x:99999\",\n]\n";
        let e = RuleSet::from_toml(text, "p.toml").unwrap_err();
        assert_eq!(
            e.source,
            Source::File {
                path: "p.toml".into(),
                line: 3
            }
        );
        assert_eq!((e.column, &e.problem), (12, &Problem::BadPort));
        assert_eq!(
            e.to_string(),
            "p.toml:3:12: expected a port 1-65535 or a range A-B (in `tcp://x:99999`)"
        );
    }

    #[test]
    fn structure_errors_point_into_the_file() {
        for (text, line, column, problem) in [
            ("allow-outbond = []\n", 1, 1, Problem::UnknownKey),
            (
                "\nallow-outbound = \"tcp://x:1\"\n",
                2,
                18,
                Problem::NotAList,
            ),
            ("allow-outbound = [1]\n", 1, 19, Problem::NotAString),
            ("[allow-outbound]\n", 1, 1, Problem::NotAList),
            (
                "deny-resolve = [\"a.example\", \"x->1.2.3.4\"]\n",
                1,
                32,
                Problem::MappingOnDeny,
            ),
            (
                "allow-resolve = [\"a\\u0062c.example->\"]\n",
                1,
                18,
                Problem::MissingMappedAddress,
            ),
        ] {
            let e = RuleSet::from_toml(text, "p.toml").expect_err(text);
            let found_line = match e.source {
                Source::File { line, .. } => line,
                _ => 0,
            };
            assert_eq!(
                (found_line, e.column, e.problem),
                (line, column, problem),
                "{text}"
            );
        }
    }

    #[test]
    fn syntax_errors_carry_the_position() {
        let e = RuleSet::from_toml("allow-outbound = [\"a\"\nx", "p.toml").unwrap_err();
        assert!(matches!(e.problem, Problem::TomlSyntax(_)), "{e}");
        assert!(e.to_string().starts_with("p.toml:"), "{e}");
    }
}
