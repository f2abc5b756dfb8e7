//! Command-line mistakes clap finds, in wasock's words: one line naming the flag, the user's text
//! quoted, and the `--help` to read.
//!
//! clap's own message spans several lines and its tip for a stray argument (`use '-- ARG'`) would
//! hand the argument to the guest, so each kind of mistake is reworded here from clap's context.

use crate::{HOST_EXIT, fail};
use clap::Command;
use clap::error::{ContextKind, ContextValue, Error, ErrorKind};
use std::process::ExitCode;

/// Prints help or the version as clap does, or a usage mistake as one line (exit code 2).
pub(crate) fn report(e: Error, cli: &Command) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            match e.exit_code() {
                0 => ExitCode::SUCCESS,
                _ => ExitCode::from(HOST_EXIT),
            }
        }
        _ => fail(&message(&e, cli)),
    }
}

/// The one-line message for a usage mistake of the command line `cli` describes.
pub(crate) fn message(e: &Error, cli: &Command) -> String {
    let rendered = e.render().to_string();
    let command = command_path(&rendered);
    let what = describe(e, &command, cli).unwrap_or_else(|| clap_line(&rendered));
    format!("{what} (see `{command} --help`)")
}

/// The mistake, reworded; `None` when clap's own first line says it well enough.
fn describe(e: &Error, command: &str, cli: &Command) -> Option<String> {
    let arg = string(e, ContextKind::InvalidArg);
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let arg = arg?;
            let guess = string(e, ContextKind::SuggestedArg)
                .map(|s| format!(": did you mean \"{s}\"?"))
                .unwrap_or_default();
            let is_run = command.ends_with(" run");
            Some(match (arg.starts_with('-'), is_run) {
                (true, true) if guess.is_empty() => format!(
                    "unknown flag {arg:?} (a flag meant for the guest goes after the component \
                     and `--`)"
                ),
                (true, _) => format!("unknown flag {arg:?}{guess}"),
                (false, true) => format!(
                    "unexpected argument {arg:?} after the component: arguments for the guest \
                     go after `--`, as in `wasock run COMPONENT -- {}`",
                    shell_word(&arg)
                ),
                (false, false) => format!("unexpected argument {arg:?}"),
            })
        }
        ErrorKind::InvalidSubcommand => {
            let sub = string(e, ContextKind::InvalidSubcommand)?;
            let guess = strings(e, ContextKind::SuggestedSubcommand);
            Some(match guess.first() {
                Some(s) => format!("unknown command {sub:?}: did you mean \"{s}\"?"),
                None => format!(
                    "unknown command {sub:?}: expected {}",
                    or_list(&subcommands(cli, command))
                ),
            })
        }
        ErrorKind::InvalidValue => {
            let arg = arg?;
            let flag = flag_name(&arg);
            let value = string(e, ContextKind::InvalidValue).unwrap_or_default();
            let valid = strings(e, ContextKind::ValidValue);
            let guess = string(e, ContextKind::SuggestedValue)
                .map(|s| format!(": did you mean \"{s}\"?"))
                .unwrap_or_default();
            Some(match valid.is_empty() {
                true => format!(
                    "{flag}: expected {} after the flag, got none",
                    value_name(&arg)
                ),
                false => format!("{flag}: expected {}, got {value:?}{guess}", or_list(&valid)),
            })
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = strings(e, ContextKind::InvalidArg);
            let names: Vec<String> = missing.iter().map(|m| placeholder(m)).collect();
            Some(match names.as_slice() {
                [one] if one == "COMPONENT" => "missing the component to run".to_string(),
                _ => format!("missing {}", names.join(" and ")),
            })
        }
        ErrorKind::ArgumentConflict => {
            let first = flag_name(&arg?);
            let prior = strings(e, ContextKind::PriorArg);
            let prior: Vec<String> = prior.iter().map(|p| flag_name(p)).collect();
            Some(match prior.as_slice() {
                [p] if *p == first => format!("{first} is given more than once; give it once"),
                [] => format!("{first} is given more than once; give it once"),
                _ => format!("{first} cannot be given with {}", prior.join(" or ")),
            })
        }
        _ => None,
    }
}

/// The subcommands of `command` (`wasock policy`), help excluded.
fn subcommands(cli: &Command, command: &str) -> Vec<String> {
    let mut at = cli;
    for word in command.split_whitespace().skip(1) {
        match at.find_subcommand(word) {
            Some(sub) => at = sub,
            None => break,
        }
    }
    at.get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|name| name != "help")
        .collect()
}

/// The text of a one-value context.
fn string(e: &Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        _ => None,
    }
}

/// The texts of a many-value context.
fn strings(e: &Error, kind: ContextKind) -> Vec<String> {
    match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::StyledStrs(v)) => v.iter().map(|s| s.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// `--max-sockets <N>` → `--max-sockets`.
fn flag_name(arg: &str) -> String {
    arg.split_whitespace().next().unwrap_or(arg).to_string()
}

/// `--max-sockets <N>` → `a value (N)`; `a value` when clap names none.
fn value_name(arg: &str) -> String {
    match arg.split_once(' ') {
        Some((_, name)) => format!("a value ({})", placeholder(name.trim())),
        None => "a value".to_string(),
    }
}

/// `<COMPONENT>` → `COMPONENT`.
fn placeholder(arg: &str) -> String {
    arg.trim_matches(|c| c == '<' || c == '>').to_string()
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// A word as a shell would need it: quoted when it holds anything but plain characters.
fn shell_word(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    match plain && !word.is_empty() {
        true => word.to_string(),
        false => format!("'{}'", word.replace('\'', r"'\''")),
    }
}

/// clap's first line without its `error: ` prefix.
fn clap_line(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// `wasock run` from clap's `Usage: wasock run [OPTIONS] <COMPONENT> ...` line, or from the
/// command line itself when clap printed no usage.
fn command_path(rendered: &str) -> String {
    if let Some(usage) = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
    {
        let words: Vec<&str> = usage
            .split_whitespace()
            .take_while(|w| !w.starts_with(['[', '<', '-']))
            .collect();
        if !words.is_empty() {
            return words.join(" ");
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut path = vec!["wasock"];
    match args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(String::as_str)
    {
        Some("run") => path.push("run"),
        Some("policy") => path.extend(["policy", "check"]),
        _ => {}
    }
    path.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_words() {
        assert_eq!(
            or_list(&["enforce".into(), "audit".into()]),
            "enforce or audit"
        );
        assert_eq!(or_list(&["a".into(), "b".into(), "c".into()]), "a, b or c");
        assert_eq!(shell_word("foo"), "foo");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(flag_name("--max-sockets <N>"), "--max-sockets");
        assert_eq!(placeholder("<COMPONENT>"), "COMPONENT");
        assert_eq!(
            value_name("--dir <HOST[::GUEST]>"),
            "a value (HOST[::GUEST])"
        );
        assert_eq!(value_name("--x"), "a value");
        assert_eq!(
            command_path("error: x\n\nUsage: wasock policy check [OPTIONS] [FILE]\n"),
            "wasock policy check"
        );
    }
}
