//! Policy-parser fuzzer: the rule language (`Rule::new`, `KIND PATTERN` lines, the builder's
//! flags), TOML policy files (`RuleSet::from_toml`) and `policy check` actions
//! (`parse_action`), fed three kinds of input:
//!
//! 1. garbage: random bytes and characters (multi-byte, NUL, controls, Unicode whitespace),
//!    token soup from the grammar's dictionary, very long tokens, deeply nested TOML;
//! 2. mutants: valid patterns, lines, policy files and actions with characters deleted,
//!    duplicated, swapped or replaced, dictionary tokens spliced in (`->`, `/33`, `%eth0`,
//!    `65536`, `#ipv4-only`, IDNA labels, quotes, ...), numbers blown up, pieces crossed over;
//! 3. valid policies generated from the grammar (every host, port, family, mapping and `from`
//!    form), written as a TOML file, as flags and as lines.
//!
//! For every input it checks: no panic; the same answer twice (determinism); each error is a
//! `ParseError` of the entry point's `Source` whose line and column lie inside the input, whose
//! problem reads as one `expected ...` sentence (no Debug dump), whose position agrees
//! between the flag, line and file forms of the same pattern, and whose column points at what
//! the problem names (the `*` of a bad wildcard, just after the `->` of a bad mapped port, ...);
//! each accepted rule's canonical spelling parses back to the same rule. Each generated rule is
//! written twice, spelled differently (case, IPv6 forms, IPv4-mapped addresses, IDNA and
//! full-width labels, port lists reordered, split or zero-padded, suffix order, spacing): both
//! must parse to the same rule. For each accepted policy (generated or mutated):
//! `to_toml()` parses back to the same rules, is a fixed point after one round trip, and the
//! copy decides (`Policy::decide`, `RuleSet::explain`, `mapped_name`, `mapped_port`) exactly
//! as the original on a batch of actions aimed at the policy's own addresses, ports and names.
//! No single input (up to 64 KiB) may take longer than `SLOW` to parse.
//!
//! Environment: `WASOCK_POLICY_FUZZ_CASES` (default 1500), `WASOCK_POLICY_FUZZ_SECS` (run cases
//! until this many seconds passed, instead of a count), `WASOCK_POLICY_FUZZ_SEED` (the first
//! case's seed; case `i` uses seed + i; default from the clock), `WASOCK_POLICY_FUZZ_VERBOSE`
//! (print which problems were seen). A failure prints the case seed and the input; rerun it
//! with `WASOCK_POLICY_FUZZ_SEED=<seed> WASOCK_POLICY_FUZZ_CASES=1`.

mod fuzzing;

use fuzzing::{Budget, SplitMix, env_u64, first_seed};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wasock::internals::policy::{
    ActionSpec, AddrPattern, HostPattern, Kind, NamePattern, Rule, describe_action, normalize_ip,
    parse_action,
};
use wasock::policy::{Action, Cidr, NamedSet, ParseError, Policy, Problem, RuleSet, Source};

// ---------------------------------------------------------------------------------------------
// Configuration and driver
// ---------------------------------------------------------------------------------------------

const DEFAULT_CASES: u64 = 1500;
/// The largest input generated.
const MAX_INPUT: usize = 64 * 1024;
/// The longest one parse of one input may take (debug build, loaded machine: generous).
const SLOW: Duration = Duration::from_secs(2);
/// Rules of one policy whose canonical spelling is checked on its own (at most).
const CANONICAL_PER_POLICY: usize = 64;
/// Actions compared between a policy and its round-tripped copy.
const ACTIONS_PER_POLICY: usize = 24;
/// The path policy files are parsed under.
const PATH: &str = "fuzz.toml";

/// What is being checked, printed when a case fails: the entry point, the input, and the
/// policy whose decisions are being compared (if any).
static CURRENT: Mutex<(&str, String, String)> = Mutex::new(("", String::new(), String::new()));

fn note(entry: &'static str, input: &str) {
    let mut c = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    c.0 = entry;
    c.1.clear();
    c.1.push_str(input);
}

fn note_policy(policy: &str) {
    let mut c = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    c.2.clear();
    c.2.push_str(policy);
}

/// What the run saw, printed at the end.
#[derive(Default)]
struct Stats {
    cases: u64,
    /// Inputs parsed, per entry point.
    inputs: BTreeMap<&'static str, u64>,
    /// Inputs accepted, per entry point.
    accepted: BTreeMap<&'static str, u64>,
    /// (entry point, problem) -> count.
    problems: BTreeMap<(&'static str, String), u64>,
    bytes: u64,
    /// Policies round-tripped through `to_toml`, and actions compared on them.
    round_trips: u64,
    actions: u64,
    /// The slowest single parse and the length of its input.
    slowest: (Duration, usize),
}

impl Stats {
    fn input(&mut self, entry: &'static str, len: usize) {
        *self.inputs.entry(entry).or_default() += 1;
        self.bytes += len as u64;
    }

    fn outcome(&mut self, entry: &'static str, problem: Option<String>) {
        match problem {
            None => *self.accepted.entry(entry).or_default() += 1,
            Some(p) => *self.problems.entry((entry, p)).or_default() += 1,
        }
    }

    /// Times one parse: fails if it takes longer than `SLOW` three times in a row (once may
    /// be the machine), keeps the slowest.
    fn timed<T>(&mut self, len: usize, f: impl Fn() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let mut took = start.elapsed();
        for _ in 0..2 {
            if took <= SLOW {
                break;
            }
            let start = Instant::now();
            f();
            took = took.min(start.elapsed());
        }
        assert!(
            took <= SLOW,
            "one parse of a {len}-byte input took {took:?} (bound {SLOW:?})"
        );
        if took > self.slowest.0 {
            self.slowest = (took, len);
        }
        out
    }
}

#[test]
fn fuzz_policy_parser() {
    let secs = env_u64("WASOCK_POLICY_FUZZ_SECS");
    let cases = env_u64("WASOCK_POLICY_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let seed = first_seed("WASOCK_POLICY_FUZZ_SEED");
    println!("policy_fuzz: first seed {seed}");

    let started = Instant::now();
    let mut stats = Stats::default();
    let budget = Budget::new(secs, cases);
    let mut i = 0u64;
    while budget.allows(i) {
        let case_seed = seed.wrapping_add(i);
        let r = catch_unwind(AssertUnwindSafe(|| run_case(case_seed, &mut stats)));
        if let Err(panic) = r {
            let c = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
            if !c.2.is_empty() {
                eprintln!("policy_fuzz: the policy under comparison:\n{}", c.2);
            }
            eprintln!("policy_fuzz: failing input ({}): {:?}", c.0, c.1);
            eprintln!(
                "policy_fuzz: case {i} FAILED; reproduce with WASOCK_POLICY_FUZZ_SEED={case_seed} \
                 WASOCK_POLICY_FUZZ_CASES=1"
            );
            resume_unwind(panic);
        }
        i += 1;
        stats.cases += 1;
    }
    let elapsed = started.elapsed();
    let inputs: u64 = stats.inputs.values().sum();
    let accepted: u64 = stats.accepted.values().sum();
    println!(
        "policy_fuzz: {} cases, {inputs} parses ({accepted} accepted, {} KiB) in {elapsed:.1?} \
         ({:.0} parses/s); {} round trips, {} actions compared; slowest parse {:?} ({} bytes)",
        stats.cases,
        stats.bytes / 1024,
        inputs as f64 / elapsed.as_secs_f64().max(0.001),
        stats.round_trips,
        stats.actions,
        stats.slowest.0,
        stats.slowest.1,
    );
    for (entry, n) in &stats.inputs {
        let ok = stats.accepted.get(entry).copied().unwrap_or(0);
        println!("  {entry:10} {n:9} parsed {ok:9} accepted");
    }
    if std::env::var_os("WASOCK_POLICY_FUZZ_VERBOSE").is_some() {
        for ((entry, problem), n) in &stats.problems {
            println!("  {entry:10} {problem:28} {n}");
        }
    }
}

fn run_case(seed: u64, stats: &mut Stats) {
    note_policy("");
    let mut rng = Rng::new(seed);
    match rng.below(10) {
        0..=2 => garbage_case(&mut rng, stats),
        3..=6 => mutant_case(&mut rng, stats),
        _ => valid_case(&mut rng, stats),
    }
}

// ---------------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------------

/// Random choices over the shared splitmix64 generator.
struct Rng(SplitMix);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(SplitMix(seed ^ 0x5DEE_CE66_D1CE_4E5B))
    }

    fn next(&mut self) -> u64 {
        self.0.next()
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `1/n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    /// `pick` for string slices, the string outliving the list.
    fn pick_str<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }

    /// A length: mostly short, sometimes a few KiB, rarely up to `MAX_INPUT`.
    fn len(&mut self) -> usize {
        match self.below(100) {
            0 => self.below(MAX_INPUT + 1),
            1..=5 => self.below(4096),
            _ => self.below(64),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checks, one per entry point
// ---------------------------------------------------------------------------------------------

/// Where a `ParseError` must say it came from.
enum Origin {
    Flag(Kind),
    Line,
    File,
}

/// A pattern as the flag of `kind`, as a `KIND PATTERN` line, and as the one string of a
/// policy file: all three agree on the rule, or on the problem and its position.
fn check_pattern(kind: Kind, text: &str, stats: &mut Stats) -> Option<Rule> {
    note("flag", text);
    stats.input("flag", text.len());
    let flag = stats.timed(text.len(), || Rule::new(kind, text));
    assert_eq!(flag, Rule::new(kind, text), "flag parse not deterministic");
    match &flag {
        Ok(rule) => {
            assert_eq!(rule.kind(), kind);
            check_canonical(rule);
            stats.outcome("flag", None);
        }
        Err(e) => {
            check_error(e, text, &Origin::Flag(kind));
            if !text.contains('\n') {
                check_anchor(&e.problem, text, e.column);
            }
            stats.outcome("flag", Some(problem_name(&e.problem)));
        }
    }

    // `KIND PATTERN`: the same answer, the column shifted by `KIND `.
    let line = format!("{kind} {text}");
    note("line", &line);
    stats.input("line", line.len());
    let parsed = stats.timed(line.len(), || line.parse::<Rule>());
    stats.outcome(
        "line",
        parsed.as_ref().err().map(|e| problem_name(&e.problem)),
    );
    match (&flag, &parsed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the line form parses differently"),
        (Err(a), Err(b)) => {
            check_error(b, &line, &Origin::Line);
            assert_eq!(a.problem, b.problem, "the line form has another problem");
            if !text.contains('\n') {
                assert_eq!(
                    b.column,
                    a.column + kind.name().len() + 1,
                    "the line form's column is not the flag's shifted by `{kind} `"
                );
            }
        }
        _ => panic!("flag and line forms disagree: {flag:?} vs {parsed:?}"),
    }

    // `KIND = ["PATTERN"]`: the same answer; a verbatim string puts the column inside it, an
    // escaped one at its opening quote.
    let (quoted, verbatim) = toml_quote(text);
    let file = format!("{kind} = [{quoted}]\n");
    note("file", &file);
    stats.input("file", file.len());
    let from_file = stats.timed(file.len(), || RuleSet::from_toml(&file, PATH));
    let shift = format!("{kind} = [").len();
    stats.outcome(
        "file",
        from_file.as_ref().err().map(|e| problem_name(&e.problem)),
    );
    match (&flag, &from_file) {
        (Ok(a), Ok(set)) => assert_eq!(set.rules(), std::slice::from_ref(a)),
        (Err(a), Err(b)) => {
            check_error(b, &file, &Origin::File);
            assert_eq!(a.problem, b.problem, "the file form has another problem");
            let Source::File { line, .. } = b.source else {
                unreachable!("checked by check_error")
            };
            let column = if verbatim {
                a.column + shift + 1
            } else {
                shift + 1
            };
            assert_eq!(
                (line, b.column),
                (1, column),
                "the file form's position does not point where the flag's does"
            );
        }
        _ => panic!("flag and file forms disagree: {flag:?} vs {from_file:?}"),
    }
    flag.ok()
}

/// A whole `KIND PATTERN` line, whatever its first word.
fn check_line(line: &str, stats: &mut Stats) -> Option<Rule> {
    note("line", line);
    stats.input("line", line.len());
    let parsed = stats.timed(line.len(), || line.parse::<Rule>());
    assert_eq!(parsed, line.parse::<Rule>(), "line parse not deterministic");
    match &parsed {
        Ok(rule) => {
            check_canonical(rule);
            stats.outcome("line", None);
        }
        Err(e) => {
            check_error(e, line, &Origin::Line);
            stats.outcome("line", Some(problem_name(&e.problem)));
        }
    }
    parsed.ok()
}

/// A TOML policy file; an accepted one is round-tripped and its decisions compared.
fn check_file(text: &str, rng: &mut Rng, hints: &Hints, stats: &mut Stats) -> Option<RuleSet> {
    note("file", text);
    stats.input("file", text.len());
    let parsed = stats.timed(text.len(), || RuleSet::from_toml(text, PATH));
    let again = RuleSet::from_toml(text, PATH);
    match (&parsed, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a.rules(), b.rules(), "file parse not deterministic"),
        (Err(a), Err(b)) => assert_eq!(a, b, "file parse not deterministic"),
        _ => panic!("file parse not deterministic: {parsed:?} vs {again:?}"),
    }
    match &parsed {
        Ok(set) => {
            stats.outcome("file", None);
            check_round_trip(set, rng, hints, stats);
        }
        Err(e) => {
            check_error(e, text, &Origin::File);
            stats.outcome("file", Some(problem_name(&e.problem)));
        }
    }
    parsed.ok()
}

/// An action as `policy check --explain` reads it.
fn check_action(text: &str, stats: &mut Stats) -> Option<ActionSpec> {
    note("action", text);
    stats.input("action", text.len());
    let parsed = stats.timed(text.len(), || parse_action(text));
    assert_eq!(parsed, parse_action(text), "action parse not deterministic");
    match &parsed {
        Ok(spec) => {
            let shown = describe_action(&spec.action());
            let again = parse_action(&shown)
                .unwrap_or_else(|e| panic!("the description {shown:?} does not parse: {e}"));
            assert_eq!(again.action(), spec.action(), "{shown:?}");
            stats.outcome("action", None);
        }
        Err(e) => {
            assert_eq!(e.text, text);
            assert_column_inside(e.column, text);
            let problem = e.problem.to_string();
            assert_one_expectation(&problem);
            let shown = e.to_string();
            assert!(shown.ends_with(&problem), "{shown:?}");
            assert!(shown.contains(&format!("column {}", e.column)), "{shown:?}");
            stats.outcome("action", Some(format!("{:?}", e.problem)));
        }
    }
    parsed.ok()
}

/// The builder's `rule(kind, pattern)` with any kind name: an unknown one is its own error.
fn check_kind_name(name: &str, pattern: &str, stats: &mut Stats) {
    note("kind", name);
    stats.input("kind", name.len() + pattern.len());
    let result = stats.timed(name.len(), || {
        let mut b = RuleSet::builder();
        b.rule(name, pattern).map(|b| b.build())
    });
    let known = Kind::from_name(name);
    match (known, result) {
        (None, Err(e)) => {
            assert_eq!(e.problem, Problem::UnknownKind);
            assert_eq!(e.text, pattern);
            assert_column_inside(e.column, pattern);
            assert!(!e.to_string().is_empty());
            stats.outcome("kind", Some("UnknownKind".into()));
        }
        (None, Ok(_)) => panic!("the unknown kind {name:?} was accepted"),
        (Some(kind), result) => {
            let result = result.map(|set| set.rules().to_vec());
            let expected = Rule::new(kind, pattern).map(|r| vec![r]);
            assert_eq!(result, expected, "builder and Rule::new disagree");
            stats.outcome("kind", None);
        }
    }
}

/// The canonical spelling of an accepted rule parses back to the same rule, as a line and as
/// a flag, and prints the same again.
fn check_canonical(rule: &Rule) {
    let shown = rule.to_string();
    let again: Rule = shown
        .parse()
        .unwrap_or_else(|e| panic!("the canonical line {shown:?} does not parse: {e}"));
    assert_eq!(&again, rule, "{shown:?} parses to another rule");
    assert_eq!(again.to_string(), shown);
    let pattern = rule.pattern();
    assert_eq!(
        Rule::new(rule.kind(), &pattern).as_ref(),
        Ok(rule),
        "the canonical pattern {pattern:?} parses to another rule"
    );
}

/// An error names the entry point's source, points inside the input, and its problem is one
/// `expected ...` sentence.
fn check_error(e: &ParseError, input: &str, origin: &Origin) {
    let problem = e.problem.to_string();
    assert_one_expectation(&problem);
    let shown = e.to_string();
    assert!(shown.contains(&problem), "{shown:?} lacks {problem:?}");
    match (origin, &e.source) {
        (Origin::Flag(kind), Source::Flag(flag)) => {
            assert_eq!(*flag, format!("--{kind}"));
            assert_eq!(e.text, input);
            assert_column_inside(e.column, input);
            assert!(
                shown.starts_with(&format!("--{kind} ")),
                "{shown:?} does not name the flag"
            );
            assert!(shown.contains(&format!(": column {}: ", e.column)));
        }
        (Origin::Line, Source::Line) => {
            assert_eq!(e.text, input);
            assert_column_inside(e.column, input);
            assert!(shown.contains(&format!(": column {}: ", e.column)));
        }
        (Origin::File, Source::File { path, line }) => {
            assert_eq!(path, PATH);
            let lines: Vec<&str> = input.split('\n').collect();
            assert!(
                (1..=lines.len()).contains(line),
                "line {line} outside the file's {} lines",
                lines.len()
            );
            assert_column_inside(e.column, lines[*line - 1]);
            assert!(
                shown.starts_with(&format!("{PATH}:{line}:{}: ", e.column)),
                "{shown:?} does not start with the position"
            );
            if e.problem == Problem::UnknownKey {
                // The position is the key's, as written (bare or quoted).
                let rest: String = lines[*line - 1].chars().skip(e.column - 1).collect();
                assert!(
                    rest.starts_with(e.text.as_str()) || rest.starts_with(['"', '\'']),
                    "an unknown key's position points at {rest:?}, not at {:?}",
                    e.text
                );
            }
        }
        (_, source) => panic!("wrong source {source:?}"),
    }
}

/// The column of a flag's error points at what the problem names: the `*` of a bad wildcard,
/// the `#` of a family, just after the `->` of a bad mapped port, and so on (`text` is one
/// line).
fn check_anchor(problem: &Problem, text: &str, column: usize) {
    let chars: Vec<char> = text.chars().collect();
    let i = column - 1;
    let at = chars.get(i).copied();
    let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
    let before: String = chars[..i.min(chars.len())].iter().collect();
    let after: String = chars[i.min(chars.len())..].iter().collect();
    let prev_in = |set: &str| prev.is_some_and(|c| set.contains(c) || c.is_whitespace());
    let start = prev.is_none_or(char::is_whitespace);
    let lower = after.to_ascii_lowercase();
    use Problem::*;
    let ok = match problem {
        UnknownKind | TomlSyntax(_) | UnknownKey | NotAList | NotAString => {
            panic!("{problem:?} from a flag")
        }
        EmptyPattern => after.trim().is_empty(),
        MissingScheme => {
            let b = before.to_ascii_lowercase();
            start || b.ends_with("tcp") || b.ends_with("udp") || b.ends_with('*')
        }
        UnknownScheme | MissingName | ResolveLiteral => start,
        MissingHost | UnbracketedIpv6 | MappingNeedsAddressHost => before.ends_with("://"),
        UnclosedBracket => at == Some('['),
        BadIpv6 => prev == Some('['),
        NumericHost | BadName => start || prev_in("/."),
        BadWildcard => at == Some('*'),
        NearSet(_) | NameAsPeer => prev_in("/,"),
        PrefixWithoutAddress => at == Some('/'),
        BadPrefix { .. } => prev.is_some_and(|c| c == '/' || c.is_ascii_digit()),
        HostBitsSet(_) => at == Some('[') || prev_in("/,"),
        MissingPorts => at != Some(':'),
        BadPort => prev.is_some_and(|c| ":,-".contains(c)),
        PortZero => at == Some('0'),
        ReversedRange => at.is_some_and(|c| c.is_ascii_digit()) && prev_in(":,"),
        EmptyListItem => prev == Some(','),
        StarInList => at == Some('*'),
        UnknownFamily | FamilyContradiction => at == Some('#'),
        Repeated => at == Some('#') || after.starts_with("->"),
        MappingNotInbound | MappingOnDeny => after.starts_with("->"),
        MappingNeedsSinglePort => prev == Some(':'),
        BadMappedPort => before.ends_with("->"),
        FromNotInbound => lower.starts_with("from"),
        BadPeer => {
            prev_in(",]")
                || prev.is_some_and(|c| c.is_ascii_digit())
                || before.to_ascii_lowercase().ends_with("from")
        }
        TrailingInput => at.is_some_and(|c| !c.is_whitespace()),
        MissingMappedAddress | BadMappedAddress | MappedUnspecified => prev_in(">,"),
        // `Problem` is `#[non_exhaustive]`: a variant added later fails here until checked.
        other => panic!("no column check for {other:?}: add one above"),
    };
    assert!(
        ok,
        "{problem:?} at column {column} points between {before:?} and {after:?}"
    );
}

/// A 1-based column of a character of `line`, or just past its end.
fn assert_column_inside(column: usize, line: &str) {
    let chars = line.chars().count();
    assert!(
        (1..=chars + 1).contains(&column),
        "column {column} outside a line of {chars} characters"
    );
}

/// One sentence saying what was expected: not empty, one line, no Debug formatting.
fn assert_one_expectation(problem: &str) {
    assert!(
        problem.starts_with("expected "),
        "{problem:?} does not say what was expected"
    );
    assert!(!problem.contains('\n'), "{problem:?} spans lines");
    for debug in [
        "Problem::",
        "Source::",
        "ParseError",
        "Some(",
        "Box(",
        "Error {",
        "span:",
        "{ ",
    ] {
        assert!(
            !problem.contains(debug),
            "{problem:?} looks like a Debug dump"
        );
    }
}

/// The variant's name, for the statistics.
fn problem_name(p: &Problem) -> String {
    let debug = format!("{p:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A TOML string holding `s`, and whether its content is `s` verbatim (no escapes).
fn toml_quote(s: &str) -> (String, bool) {
    let control = |c: char| (c.is_control() && c != '\t') || c == '\u{7f}';
    if !s.chars().any(|c| control(c) || c == '"' || c == '\\') {
        return (format!("\"{s}\""), true);
    }
    if !s.chars().any(|c| control(c) || c == '\'') {
        return (format!("'{s}'"), true);
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if control(c) => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    (out, false)
}

/// `to_toml` reads back to the same rules, is a fixed point, and the copy decides every action
/// as the original does.
fn check_round_trip(set: &RuleSet, rng: &mut Rng, hints: &Hints, stats: &mut Stats) {
    stats.round_trips += 1;
    // Each rule's own round trip (a sample of a huge policy: its rules are alike).
    let rules = set.rules();
    let step = rules.len().div_ceil(CANONICAL_PER_POLICY).max(1);
    for rule in rules.iter().skip(rng.below(step)).step_by(step) {
        check_canonical(rule);
    }
    let toml = set.to_toml();
    note_policy(&toml);
    note("to_toml", &toml);
    let again = RuleSet::from_toml(&toml, "round-trip.toml")
        .unwrap_or_else(|e| panic!("to_toml output does not parse: {e}\n{toml}"));
    // Rules of one kind keep their order (the first match decides); kinds are grouped.
    for kind in Kind::ALL {
        let of_kind = |s: &RuleSet| -> Vec<Rule> {
            (s.rules().iter())
                .filter(|r| r.kind() == kind)
                .cloned()
                .collect()
        };
        assert_eq!(
            of_kind(&again),
            of_kind(set),
            "to_toml lost or changed rules"
        );
    }
    assert_eq!(again.to_toml(), toml, "to_toml is not a fixed point");
    assert_eq!(again.to_string(), set.to_string());

    let mut hints = hints.clone();
    hints.learn_from(set);
    for _ in 0..ACTIONS_PER_POLICY {
        let text = gen_action(rng, &hints);
        let spec = check_action(&text, stats)
            .unwrap_or_else(|| panic!("the generated action {text:?} does not parse"));
        note("action", &text);
        stats.actions += 1;
        let action = spec.action();
        let (d1, d2) = (set.decide(&action, &spec), again.decide(&action, &spec));
        assert_eq!(d1, d2, "{text}: the round-tripped policy decides otherwise");
        let (e1, e2) = (set.explain(&action, &spec), again.explain(&action, &spec));
        assert_eq!(
            e1, e2,
            "{text}: the round-tripped policy explains otherwise"
        );
        assert_eq!(
            (e1.verdict, &e1.rule),
            (d1.verdict, &d1.rule),
            "{text}: explain and decide disagree"
        );
        if let Action::Resolve { name } = action {
            assert_eq!(set.mapped_name(name), again.mapped_name(name), "{text}");
        }
        if let Action::Bind { proto, local } = action {
            assert_eq!(
                set.mapped_port(proto, local),
                again.mapped_port(proto, local),
                "{text}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Garbage into every entry point.
fn garbage_case(rng: &mut Rng, stats: &mut Stats) {
    let hints = Hints::default();
    let text = match rng.below(6) {
        _ if rng.one_in(8) => many_rules(rng),
        0 => random_bytes(rng),
        1 => random_chars(rng),
        2 => token_soup(rng),
        3 => long_token(rng),
        4 => deep_toml(rng),
        _ => {
            // Garbage after a plausible start.
            let mut s = String::from(*rng.pick(&[
                "tcp://",
                "udp://",
                "*://",
                "tcp://*:",
                "tcp://[",
                "a.example->",
                "",
            ]));
            s.push_str(&random_chars(rng));
            s
        }
    };
    let kind = *rng.pick(&Kind::ALL);
    check_pattern(kind, &text, stats);
    check_line(&text, stats);
    check_file(&text, rng, &hints, stats);
    check_action(&text, stats);
    let name = if rng.coin() {
        text.clone()
    } else {
        format!("--{text}")
    };
    check_kind_name(&name, "tcp://x.example:1", stats);
}

/// A valid input of each kind, mutated, into its entry point (and the others).
fn mutant_case(rng: &mut Rng, stats: &mut Stats) {
    let mut hints = Hints::default();
    let mut g = Gen::new(rng.next(), rng.next());
    let policy = gen_policy(&mut g, &mut hints);
    let file = policy_toml(rng, &policy);
    let pattern = match policy.first() {
        Some((_, p)) => p.clone(),
        None => gen_pattern(&mut g, Kind::AllowOutbound, &mut hints),
    };
    let line = match policy.last() {
        Some((k, p)) => format!("{k} {p}"),
        None => String::new(),
    };
    let action = gen_action(rng, &hints);
    let seeds = [file, pattern, line, action];
    let which = rng.below(seeds.len());
    let mut text = seeds[which].clone();
    for _ in 0..rng.between(1, 8) {
        text = mutate(rng, &text, &seeds);
    }
    match which {
        0 => {
            check_file(&text, rng, &hints, stats);
        }
        1 => {
            let kind = policy.first().map_or(Kind::AllowOutbound, |(k, _)| *k);
            let kind = if rng.one_in(4) {
                *rng.pick(&Kind::ALL)
            } else {
                kind
            };
            if let Some(rule) = check_pattern(kind, &text, stats) {
                let set = RuleSet::builder().push(rule).build();
                check_round_trip(&set, rng, &hints, stats);
            }
        }
        2 => {
            if let Some(rule) = check_line(&text, stats) {
                let set = RuleSet::builder().push(rule).build();
                check_round_trip(&set, rng, &hints, stats);
            }
        }
        _ => {
            check_action(&text, stats);
        }
    }
    if rng.one_in(4) {
        let kind = *rng.pick(&Kind::ALL);
        check_pattern(kind, &text, stats);
    }
}

/// A generated policy: every rule parses, and so does another spelling of it, to the same
/// rule; the policy as a file, as flags and as lines (each rule spelled another way) compiles
/// to the same rules, and round-trips.
fn valid_case(rng: &mut Rng, stats: &mut Stats) {
    let mut hints = Hints::default();
    let n = if rng.one_in(30) {
        rng.between(50, 400)
    } else {
        rng.between(0, 12)
    };
    let mut policy = Vec::new();
    let mut flags = RuleSet::builder();
    let mut lines = RuleSet::builder();
    for _ in 0..n {
        let kind = *rng.pick(&Kind::ALL);
        let shape = rng.next();
        // Both spellings start from the same hints: the shape may pick from them.
        let mut same_hints = hints.clone();
        let pattern = gen_pattern(&mut Gen::new(shape, rng.next()), kind, &mut hints);
        let other = gen_pattern(&mut Gen::new(shape, rng.next()), kind, &mut same_hints);
        let rule = check_pattern(kind, &pattern, stats)
            .unwrap_or_else(|| panic!("the generated pattern {pattern:?} of {kind} is refused"));
        let again = check_pattern(kind, &other, stats)
            .unwrap_or_else(|| panic!("the generated pattern {other:?} of {kind} is refused"));
        assert_eq!(
            again, rule,
            "{pattern:?} and {other:?} spell the same rule, but parse differently"
        );
        let name = if rng.coin() {
            kind.name().to_owned()
        } else {
            format!("--{kind}")
        };
        note("flag", &other);
        flags.rule(&name, &other).unwrap_or_else(|e| panic!("{e}"));
        let pad = |rng: &mut Rng| rng.pick_str(&["", " ", "\t", "  "]);
        let (before, after) = (pad(rng), pad(rng));
        let between = rng.pick_str(&[" ", "  ", "\t"]);
        let line = format!("{before}{kind}{between}{pattern}{after}");
        note("line", &line);
        lines.line(&line).unwrap_or_else(|e| panic!("{e}"));
        policy.push((kind, pattern));
    }
    let text = policy_toml(rng, &policy);
    let set = check_file(&text, rng, &hints, stats)
        .unwrap_or_else(|| panic!("the generated policy file is refused:\n{text}"));
    let (flags, lines) = (flags.build(), lines.build());
    assert_eq!(flags.to_toml(), set.to_toml(), "flags and file disagree");
    assert_eq!(lines.to_toml(), set.to_toml(), "lines and file disagree");
}

// ---------------------------------------------------------------------------------------------
// Garbage
// ---------------------------------------------------------------------------------------------

/// Characters the grammar or its tools may trip on.
const ODD_CHARS: &[char] = &[
    '\0',
    '\t',
    '\n',
    '\r',
    '\u{b}',
    '\u{c}',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{ad}',
    'ß',
    'ü',
    'İ',
    'ı',
    'K',
    'é',
    '\u{301}',
    '中',
    '。',
    '．',
    '\u{ff0e}',
    '\u{ff1a}',
    '\u{200b}',
    '\u{200d}',
    '\u{202e}',
    '\u{2028}',
    '\u{3000}',
    '\u{feff}',
    '\u{fffd}',
    '😀',
    '\u{10ffff}',
    '١',
    '٣',
    '１',
    'Ⅸ',
];

/// The grammar's tokens, and things that look like them.
const DICTIONARY: &[&str] = &[
    "->",
    "->0",
    "->8080",
    "->65536",
    "->::",
    "->0.0.0.0",
    "-",
    "/",
    ":",
    "://",
    ",",
    ", ",
    "*",
    "*.",
    ",*",
    "*,",
    ".",
    "..",
    "[",
    "]",
    "[]",
    "#",
    "#ipv4-only",
    "#ipv6-only",
    "#IPV4-ONLY",
    "#ipv4-only-",
    " from ",
    "from",
    " FROM ",
    "tcp",
    "udp",
    "TCP",
    "tcp://",
    "*://",
    "0",
    "1",
    "80",
    "65535",
    "65536",
    "99999",
    "4294967296",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "00000000000000000000000000080",
    "/0",
    "/32",
    "/33",
    "/128",
    "/129",
    "/255",
    "/256",
    "/-1",
    "%",
    "%eth0",
    "%25",
    "%2",
    "::",
    "::1",
    "::ffff:",
    "::ffff:10.0.0.5",
    "fe80::1%eth0",
    "[fe80::1%eth0]",
    "[::1]",
    "[::]/0",
    "1.2.3.4",
    "10.0.0.0/8",
    "0.0.0.0",
    "255.255.255.255",
    "256.0.0.1",
    "1.2.3",
    "0x7f",
    "0x7f.1",
    "010",
    "2130706433",
    "xn--",
    "xn--bcher-kva",
    "xn--zz",
    "bücher",
    "faß",
    "İstanbul",
    "ｐｒｉｖａｔｅ",
    "a_b",
    "-a",
    "a-",
    "loopback",
    "privat",
    "private.",
    "any-ipv6",
    "cloud-metadata",
    "unspecified",
    "localhost",
    "allow-outbound",
    "deny-outbound",
    "allow-inbound",
    "deny-inbound",
    "allow-resolve",
    "deny-resolve",
    "--allow-inbound",
    "create",
    "connect",
    "send",
    "bind",
    "listen",
    "accept",
    "receive",
    "resolve",
    "via",
    "=",
    " = ",
    "\"",
    "'",
    "\\",
    "\\u0000",
    "\\U0010FFFF",
    "\\ud800",
    "\"\"\"",
    "'''",
    "[[",
    "]]",
    "{",
    "}",
    "{}",
    "[allow-outbound]",
    "[[allow-outbound]]",
    "allow-outbound = [",
    "allow-outbound.x",
    "# comment\n",
    "\n",
    "\r\n",
    "\t",
    " ",
    "",
    "1979-05-27T07:32:00Z",
    "inf",
    "nan",
    "true",
    "0x10",
    "1e400",
];

fn random_bytes(rng: &mut Rng) -> String {
    let n = rng.len();
    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn random_char(rng: &mut Rng) -> char {
    match rng.below(8) {
        0..=3 => (b' ' + rng.below(95) as u8) as char,
        4 | 5 => *rng.pick(ODD_CHARS),
        6 => *rng.pick(&['a', '.', ':', '/', '*', '-', ',', '[', ']', '#', '1', '0']),
        _ => loop {
            if let Some(c) = char::from_u32(rng.below(0x11_0000) as u32) {
                break c;
            }
        },
    }
}

fn random_chars(rng: &mut Rng) -> String {
    let n = rng.len();
    let mut s = String::new();
    while s.len() < n {
        s.push(random_char(rng));
    }
    s
}

fn token_soup(rng: &mut Rng) -> String {
    let n = rng.between(1, 24);
    let mut s = String::new();
    for _ in 0..n {
        if rng.one_in(5) {
            s.push(random_char(rng));
        } else {
            s.push_str(rng.pick_str(DICTIONARY));
        }
    }
    s
}

/// One part of a rule blown up to many KiB.
fn long_token(rng: &mut Rng) -> String {
    let most = if rng.one_in(8) { MAX_INPUT / 2 } else { 4096 };
    let n = rng.between(1, most as u64) as usize;
    let body = match rng.below(9) {
        0 => format!("tcp://{}:80", "a".repeat(n)),
        1 => format!("tcp://{}example.com:80", "a.".repeat(n / 2)),
        2 => format!("tcp://x.example:{}", "1,".repeat(n / 2) + "1"),
        3 => format!("tcp://x.example:{}", "9".repeat(n)),
        4 => format!("tcp://*:80 from {}", vec!["10.0.0.1"; n / 9 + 1].join(",")),
        5 => format!("x.example->{}", vec!["1.2.3.4"; n / 8 + 1].join(",")),
        6 => format!("tcp://[{}]:80", "1:".repeat(n / 2)),
        7 => format!("tcp://10.0.0.0/{}:80", "0".repeat(n)),
        _ => format!("{}tcp://x.example:80", " ".repeat(n)),
    };
    body.chars().take(MAX_INPUT).collect()
}

/// A policy file of up to `MAX_INPUT` bytes of short, mostly distinct rules.
fn many_rules(rng: &mut Rng) -> String {
    let budget = if rng.one_in(16) {
        rng.between(1, MAX_INPUT as u64) as usize
    } else {
        rng.below(4096)
    };
    let mut out = String::new();
    let mut kinds: Vec<Kind> = Kind::ALL.to_vec();
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, rng.below(i + 1));
    }
    for kind in kinds {
        if out.len() >= budget || rng.one_in(3) {
            continue;
        }
        let _ = write!(out, "{kind}=[");
        let share = out.len() + budget / 3;
        let mut i = rng.below(1000);
        while out.len() < share.min(budget) {
            i += 1 + rng.below(3);
            let _ = match kind {
                Kind::AllowResolve | Kind::DenyResolve => write!(out, "'n{i}.x',"),
                _ if rng.coin() => write!(out, "'*://*:{}',", i % 65535 + 1),
                _ => write!(out, "'*://{}.{}.0.0/16:*',", i / 256 % 256, i % 256),
            };
        }
        out.push_str("]\n");
    }
    out
}

/// TOML nested past any sensible depth.
fn deep_toml(rng: &mut Rng) -> String {
    let depth = rng.between(1, 4000) as usize;
    let closed = rng.coin();
    match rng.below(5) {
        0 => format!(
            "allow-outbound = {}\"tcp://x:1\"{}",
            "[".repeat(depth),
            if closed {
                "]".repeat(depth)
            } else {
                String::new()
            }
        ),
        1 => format!(
            "allow-outbound = {}1{}",
            "{a=".repeat(depth),
            if closed {
                "}".repeat(depth)
            } else {
                String::new()
            }
        ),
        2 => format!("[{}]\n", vec!["a"; depth].join(".")),
        3 => format!("{} = 1\n", vec!["allow-outbound"; depth].join(".")),
        _ => format!("{}\n", "[[allow-outbound]]\n".repeat(depth.min(2000))),
    }
}

// ---------------------------------------------------------------------------------------------
// Mutation
// ---------------------------------------------------------------------------------------------

/// `text` with one random edit, on character boundaries, kept within `MAX_INPUT`.
fn mutate(rng: &mut Rng, text: &str, others: &[String]) -> String {
    let mut c: Vec<char> = text.chars().collect();
    let n = c.len();
    let at = |rng: &mut Rng| rng.below(n + 1);
    match rng.below(14) {
        0 if n > 0 => {
            let i = rng.below(n);
            let len = rng.between(1, 8).min((n - i) as u64) as usize;
            c.drain(i..i + len);
        }
        12 | 13 => {
            // A token where the grammar changes parts: next to punctuation, a space, the end.
            let bounds: Vec<usize> = (0..=n)
                .filter(|&k| {
                    k == n || ":/,#>[] ".contains(c[k]) || (k > 0 && ":/,#>[] ".contains(c[k - 1]))
                })
                .collect();
            let i = *rng.pick(&bounds);
            c.splice(i..i, rng.pick_str(DICTIONARY).chars());
        }
        1 if n > 0 => {
            let i = rng.below(n);
            let len = rng.between(1, 16).min((n - i) as u64) as usize;
            let times = if rng.one_in(20) {
                rng.between(2, 2000) as usize
            } else {
                1
            };
            let piece: Vec<char> = c[i..i + len].repeat(times);
            c.splice(i..i, piece);
        }
        2 if n > 1 => {
            let (i, j) = (rng.below(n), rng.below(n));
            c.swap(i, j);
        }
        3 if n > 0 => {
            let i = rng.below(n);
            c[i] = random_char(rng);
        }
        4 | 5 => {
            let i = at(rng);
            c.splice(i..i, rng.pick(DICTIONARY).chars());
        }
        6 => {
            // A number (or the first digit run) replaced by an edge or a huge one.
            let start = c.iter().position(|ch| ch.is_ascii_digit()).unwrap_or(n);
            let end = (start..n).find(|&k| !c[k].is_ascii_digit()).unwrap_or(n);
            let number = match rng.below(6) {
                0 => "0".to_owned(),
                1 => "65535".to_owned(),
                2 => "65536".to_owned(),
                3 => "33".to_owned(),
                4 => "129".to_owned(),
                _ => "9".repeat(rng.between(6, 400) as usize),
            };
            c.splice(start..end, number.chars());
        }
        7 if n > 0 => c.truncate(rng.below(n)),
        8 if n > 0 => {
            let i = rng.below(n);
            let len = rng.between(1, 12).min((n - i) as u64) as usize;
            for ch in &mut c[i..i + len] {
                *ch = if ch.is_ascii_lowercase() {
                    ch.to_ascii_uppercase()
                } else {
                    ch.to_ascii_lowercase()
                };
            }
        }
        9 => {
            let i = at(rng);
            let ws = *rng.pick(&[" ", "\t", "\n", "\r\n", "\u{3000}", "\u{a0}", "  "]);
            c.splice(i..i, ws.chars());
        }
        10 => {
            // Crossover: a piece of another valid input.
            let other: Vec<char> = rng.pick(others).chars().collect();
            if !other.is_empty() {
                let j = rng.below(other.len());
                let len = rng.between(1, 24).min((other.len() - j) as u64) as usize;
                let i = at(rng);
                let cut = rng.below(4).min(n - i);
                c.splice(i..i + cut, other[j..j + len].iter().copied());
            }
        }
        _ => {
            let i = at(rng);
            c.insert(i, random_char(rng));
        }
    }
    let mut out = String::new();
    for ch in c {
        if out.len() + ch.len_utf8() > MAX_INPUT {
            break;
        }
        out.push(ch);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Valid policies from the grammar
// ---------------------------------------------------------------------------------------------

/// Addresses, ports and names a policy is written with: what actions aim at.
#[derive(Clone, Default)]
struct Hints {
    ips: Vec<IpAddr>,
    ports: Vec<u16>,
    names: Vec<String>,
}

impl Hints {
    /// What the rules of `set` mention (after a mutation, the generator's hints may be stale).
    fn learn_from(&mut self, set: &RuleSet) {
        for rule in set.rules() {
            if let Some(p) = rule.socket_pattern() {
                if let Some(port) = p.ports.single() {
                    self.ports.push(port);
                }
                if let Some(port) = p.map_to {
                    self.ports.push(port);
                }
                match &p.host {
                    HostPattern::Addr(AddrPattern::Block(c)) => self.ips.push(c.addr()),
                    HostPattern::Name(n) => self.learn_name(n),
                    HostPattern::Addr(_) => {}
                }
            }
            if let Some(p) = rule.resolve_pattern() {
                self.ips.extend(p.map_to.iter().copied());
                self.learn_name(&p.name);
            }
        }
    }

    /// A name the pattern matches.
    fn learn_name(&mut self, pattern: &NamePattern) {
        match pattern {
            NamePattern::Exact(n) => self.names.push(n.to_string()),
            NamePattern::Subdomains(d) => self.names.push(format!("sub{d}")),
            NamePattern::Any => {}
        }
    }
}

const V4_POOL: &[Ipv4Addr] = &[
    Ipv4Addr::new(127, 0, 0, 1),
    Ipv4Addr::new(10, 0, 0, 5),
    Ipv4Addr::new(10, 1, 2, 3),
    Ipv4Addr::new(192, 168, 1, 1),
    Ipv4Addr::new(172, 16, 0, 1),
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(100, 64, 0, 1),
    Ipv4Addr::new(224, 0, 0, 1),
    Ipv4Addr::new(192, 0, 2, 1),
    Ipv4Addr::new(8, 8, 8, 8),
    Ipv4Addr::new(0, 0, 0, 0),
    Ipv4Addr::new(255, 255, 255, 255),
];

const V6_POOL: &[Ipv6Addr] = &[
    Ipv6Addr::LOCALHOST,
    Ipv6Addr::UNSPECIFIED,
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 5),
    Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0x0a00, 5),
    Ipv6Addr::new(0x2606, 0x4700, 0, 0, 0, 0, 0, 0x1111),
    Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 1),
];

/// Host name labels, each with spellings that normalize alike (IDNA, full-width forms).
const LABELS: &[&[&str]] = &[
    &["api", "ａｐｉ"],
    &["a"],
    &["b"],
    &["db"],
    &["x"],
    &["www"],
    &["internal"],
    &["under_score"],
    &["a-b"],
    &["mixed"],
    &["bücher", "xn--bcher-kva"],
    &["faß"],
    &["ñu"],
    &["中文"],
    &["s3"],
];
const TLDS: &[&str] = &["com", "example", "internal", "test", "org", "xn--p1ai"];

/// Two random streams: `shape` decides what a rule says, `spell` how it is written. The same
/// shape seed with another spell seed writes the same rule another way.
struct Gen {
    shape: Rng,
    spell: Rng,
}

impl Gen {
    fn new(shape: u64, spell: u64) -> Self {
        Gen {
            shape: Rng::new(shape),
            spell: Rng::new(spell),
        }
    }
}

fn gen_ip(rng: &mut Rng, hints: &Hints) -> IpAddr {
    match rng.below(8) {
        0 | 1 if !hints.ips.is_empty() => *rng.pick(&hints.ips),
        0..=2 => IpAddr::V4(*rng.pick(V4_POOL)),
        3 | 4 => IpAddr::V6(*rng.pick(V6_POOL)),
        5 => IpAddr::V4(Ipv4Addr::from(rng.next() as u32)),
        6 => IpAddr::V6(Ipv6Addr::from(
            (u128::from(rng.next()) << 64) | u128::from(rng.next()),
        )),
        _ => IpAddr::V6(Ipv6Addr::from(rng.next() as u128 & 0xffff_ffff_ffff)),
    }
}

fn gen_port(rng: &mut Rng, hints: &Hints) -> u16 {
    match rng.below(6) {
        0 | 1 if !hints.ports.is_empty() => *rng.pick(&hints.ports),
        0..=2 => *rng.pick(&[1, 22, 53, 80, 443, 8080, 65535]),
        _ => rng.between(1, 65535) as u16,
    }
}

/// ASCII letters in a random case (other characters kept: `ß` must not become `SS`).
fn recase(rng: &mut Rng, word: &str) -> String {
    match rng.below(4) {
        0 => word.to_ascii_uppercase(),
        1 => word
            .chars()
            .map(|c| {
                if rng.coin() {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
        _ => word.to_owned(),
    }
}

/// A host name of at least two labels (or `localhost`), spelled in any of its ways.
fn gen_name(g: &mut Gen) -> String {
    if g.shape.one_in(12) {
        return recase(&mut g.spell, "localhost");
    }
    let n = g.shape.between(1, 3);
    let mut name = String::new();
    for i in 0..n {
        let spellings = *g.shape.pick(LABELS);
        let label = *g.spell.pick(spellings);
        name.push_str(&recase(&mut g.spell, label));
        name.push_str(if i > 0 && g.spell.one_in(6) {
            "。"
        } else {
            "."
        });
    }
    let tld = g.shape.pick_str(TLDS);
    name.push_str(&recase(&mut g.spell, tld));
    if g.spell.one_in(5) {
        name.push('.');
    }
    name
}

/// An IPv6 address as text: compressed, upper case or fully written out.
fn spell_v6(rng: &mut Rng, a: Ipv6Addr) -> String {
    match rng.below(5) {
        0 => a.to_string().to_uppercase(),
        1 => {
            let s = a.segments().map(|x| format!("{x:x}"));
            s.join(":")
        }
        2 => {
            let s = a.segments().map(|x| format!("{x:04X}"));
            s.join(":")
        }
        _ => a.to_string(),
    }
}

/// An address as text; `bracket`: IPv6 in brackets (`Some(true)`), bare (`Some(false)`), or
/// either (`None`). An IPv4 address may be written as its IPv4-mapped IPv6 address.
fn spell_ip(rng: &mut Rng, ip: IpAddr, bracket: Option<bool>) -> String {
    let ip = match ip {
        IpAddr::V4(a) if rng.one_in(5) => IpAddr::V6(a.to_ipv6_mapped()),
        ip => ip,
    };
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let text = spell_v6(rng, a);
            if bracket.unwrap_or_else(|| rng.coin()) {
                format!("[{text}]")
            } else {
                text
            }
        }
    }
}

/// A valid block (host bits zero) and its spelling, IPv6 bracketed or bare; records addresses
/// inside it.
fn gen_block(g: &mut Gen, hints: &mut Hints, bracket: Option<bool>) -> (String, Cidr) {
    let ip = gen_ip(&mut g.shape, hints);
    let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match g.shape.below(4) {
        0 => max,
        1 => g.shape.between(0, max.into()) as u8,
        _ => g
            .shape
            .pick(&[8, 16, 24, 32, 64, 96, 104, 120, 127, 128])
            .min(&max)
            .to_owned(),
    };
    let cidr = Cidr::truncated(ip, prefix).unwrap_or_else(|| Cidr::host(ip));
    hints.ips.push(ip);
    hints.ips.push(cidr.addr());
    // An IPv4 block may be written as its IPv4-mapped IPv6 block.
    let (addr, prefix, max) = match cidr.addr() {
        IpAddr::V4(a) if g.spell.one_in(5) => (IpAddr::V6(a.to_ipv6_mapped()), prefix + 96, 128),
        a => (a, prefix, max),
    };
    let mut text = match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let t = spell_v6(&mut g.spell, a);
            if bracket.unwrap_or_else(|| g.spell.coin()) {
                format!("[{t}]")
            } else {
                t
            }
        }
    };
    if prefix < max || g.spell.one_in(3) {
        let zeros = if g.spell.one_in(6) { "00" } else { "" };
        let _ = write!(text, "/{zeros}{prefix}");
    }
    (text, cidr)
}

/// PORTS: `*` or a set of ranges, spelled in any order, split, repeated or zero-padded.
/// Returns the text and the one port of a single-port set.
fn gen_ports(g: &mut Gen, hints: &mut Hints) -> (String, Option<u16>) {
    let ranges: Vec<(u16, u16)> = match g.shape.below(5) {
        0 => vec![(1, u16::MAX)],
        1 | 2 => {
            let p = gen_port(&mut g.shape, hints).max(1);
            vec![(p, p)]
        }
        _ => (0..g.shape.between(1, 5))
            .map(|_| {
                let lo = gen_port(&mut g.shape, hints).max(1);
                let hi = if g.shape.coin() {
                    g.shape.between(lo.into(), u16::MAX.into()) as u16
                } else {
                    lo
                };
                (lo, hi)
            })
            .collect(),
    };
    for &(lo, hi) in &ranges {
        hints
            .ports
            .extend([lo, lo - 1, lo.saturating_add(1), hi, hi.saturating_add(1)]);
    }
    let single = match ranges[..] {
        [(lo, hi)] if lo == hi => Some(lo),
        _ => None,
    };
    if ranges == [(1, u16::MAX)] && g.spell.coin() {
        return ("*".to_owned(), None);
    }
    let w = &mut g.spell;
    let mut items: Vec<String> = Vec::new();
    for &(lo, hi) in &ranges {
        let pad = |w: &mut Rng, p: u16| {
            if w.one_in(8) {
                format!("0{p}")
            } else {
                p.to_string()
            }
        };
        if lo < hi && w.one_in(4) {
            let mid = w.between(lo.into(), (hi - 1).into()) as u16;
            items.push(format!("{}-{}", pad(w, lo), pad(w, mid)));
            items.push(format!("{}-{}", pad(w, mid + 1), pad(w, hi)));
        } else if lo < hi || w.one_in(6) {
            items.push(format!("{}-{}", pad(w, lo), pad(w, hi)));
        } else {
            items.push(pad(w, lo));
        }
        if w.one_in(8) {
            items.push(items[items.len() - 1].clone());
        }
    }
    for i in (1..items.len()).rev() {
        items.swap(i, w.below(i + 1));
    }
    (items.join(","), single)
}

/// One valid pattern of `kind`.
fn gen_pattern(g: &mut Gen, kind: Kind, hints: &mut Hints) -> String {
    let mut out = String::new();
    if g.spell.one_in(10) {
        out.push_str(g.spell.pick_str(&[" ", "\t", "\u{3000}"]));
    }
    if kind.is_resolve() {
        out.push_str(&gen_resolve(g, kind, hints));
    } else {
        out.push_str(&gen_socket(g, kind, hints));
    }
    if g.spell.one_in(10) {
        out.push_str(g.spell.pick_str(&[" ", "\t", "\n"]));
    }
    out
}

/// `SCHEME://HOST:PORTS[#FAMILY][->PORT][ from PEERS]`.
fn gen_socket(g: &mut Gen, kind: Kind, hints: &mut Hints) -> String {
    let scheme = g.shape.pick_str(&["tcp", "udp", "*"]);
    let scheme = recase(&mut g.spell, scheme);
    // The host, which families it has addresses of (`None`: any), and whether it is an
    // address pattern (which a `->PORT` needs).
    let (host, families, addr_host) = match g.shape.below(8) {
        0 | 1 => {
            let name = gen_name(g);
            hints.names.push(name.clone());
            (name, None, false)
        }
        2 => {
            let domain = gen_name(g);
            hints.names.push(format!("x.{domain}"));
            hints.names.push(format!("a.b.{domain}"));
            hints.names.push(domain.clone());
            (format!("*.{domain}"), None, false)
        }
        3 => ("*".to_owned(), None, true),
        4 => {
            let set = *g.shape.pick(&NamedSet::ALL);
            let blocks = set.blocks();
            let v4 = blocks.iter().any(|b| b.addr().is_ipv4());
            let v6 = blocks.iter().any(|b| b.addr().is_ipv6());
            hints.ips.extend(blocks.iter().map(|b| b.addr()));
            (recase(&mut g.spell, set.name()), Some((v4, v6)), true)
        }
        5 => {
            // A host called like a set, written with the trailing dot.
            let set = *g.shape.pick(&NamedSet::ALL);
            hints.names.push(set.name().to_owned());
            (
                format!("{}.", recase(&mut g.spell, set.name())),
                None,
                false,
            )
        }
        _ => {
            let (text, cidr) = gen_block(g, hints, Some(true));
            let v4 = cidr.normalized().addr().is_ipv4();
            (text, Some((v4, !v4)), true)
        }
    };
    let (ports, single) = gen_ports(g, hints);
    let mut out = format!("{scheme}://{host}:{ports}");
    let mut suffixes = Vec::new();
    if g.shape.one_in(3) {
        let v4 = families.is_none_or(|(v4, _)| v4);
        let v6 = families.is_none_or(|(_, v6)| v6);
        let family = match (v4, v6, g.shape.coin()) {
            (true, true, true) | (true, false, _) => "#ipv4-only",
            _ => "#ipv6-only",
        };
        suffixes.push(recase(&mut g.spell, family));
    }
    if kind == Kind::AllowInbound && single.is_some() && addr_host && g.shape.coin() {
        let to = gen_port(&mut g.shape, hints).max(1);
        hints.ports.push(to);
        suffixes.push(format!("->{to}"));
    }
    if g.spell.coin() {
        suffixes.reverse();
    }
    for s in suffixes {
        out.push_str(&s);
    }
    if kind.is_inbound() && g.shape.coin() {
        let n = g.shape.between(1, 4);
        let peers: Vec<String> = (0..n).map(|_| gen_peer(g, hints)).collect();
        let w = &mut g.spell;
        let before = w.pick_str(&[" ", "  ", "\t", "\u{3000}"]);
        let from = recase(w, "from");
        let after = w.pick_str(&[" ", "  ", "\t"]);
        let _ = write!(out, "{before}{from}{after}");
        for (i, peer) in peers.iter().enumerate() {
            if i > 0 {
                out.push_str(w.pick_str(&[",", ", ", " ,", " , ", ",\t"]));
            }
            out.push_str(peer);
        }
    }
    out
}

fn gen_peer(g: &mut Gen, hints: &mut Hints) -> String {
    match g.shape.below(4) {
        0 => "*".to_owned(),
        1 => {
            let set = *g.shape.pick(&NamedSet::ALL);
            recase(&mut g.spell, set.name())
        }
        _ => gen_block(g, hints, None).0,
    }
}

/// `NAMEPATTERN[->ADDR,...]`.
fn gen_resolve(g: &mut Gen, kind: Kind, hints: &mut Hints) -> String {
    let mut out = match g.shape.below(6) {
        0 => "*".to_owned(),
        1 | 2 => {
            let domain = gen_name(g);
            hints.names.push(format!("x.{domain}"));
            hints.names.push(domain.clone());
            format!("*.{domain}")
        }
        _ => {
            let name = gen_name(g);
            hints.names.push(name.clone());
            name
        }
    };
    if kind == Kind::AllowResolve && g.shape.coin() {
        let n = g.shape.between(1, 3);
        let mut addrs = Vec::new();
        for _ in 0..n {
            let ip = gen_ip(&mut g.shape, hints);
            if !normalize_ip(ip).is_unspecified() {
                addrs.push(ip);
            }
        }
        for (i, ip) in addrs.iter().enumerate() {
            out.push_str(if i == 0 { "->" } else { "," });
            out.push_str(&spell_ip(&mut g.spell, *ip, None));
        }
    }
    out
}

/// Zero to a dozen rules (rarely hundreds) of random kinds.
fn gen_policy(g: &mut Gen, hints: &mut Hints) -> Vec<(Kind, String)> {
    let n = if g.shape.one_in(30) {
        g.shape.between(50, 400)
    } else {
        g.shape.between(0, 12)
    };
    (0..n)
        .map(|_| {
            let kind = *g.shape.pick(&Kind::ALL);
            (kind, gen_pattern(g, kind, hints))
        })
        .collect()
}

/// The policy as a TOML file, in one of the many ways TOML allows.
fn policy_toml(rng: &mut Rng, policy: &[(Kind, String)]) -> String {
    let mut kinds: Vec<Kind> = Kind::ALL.to_vec();
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, rng.below(i + 1));
    }
    let nl = if rng.one_in(6) { "\r\n" } else { "\n" };
    let mut out = String::new();
    if rng.one_in(3) {
        let _ = write!(out, "# a generated policy{nl}{nl}");
    }
    for kind in kinds {
        let patterns: Vec<&String> = (policy.iter())
            .filter(|(k, _)| *k == kind)
            .map(|(_, p)| p)
            .collect();
        if patterns.is_empty() && !rng.one_in(4) {
            continue;
        }
        let key = match rng.below(4) {
            0 => format!("\"{kind}\""),
            1 => format!("'{kind}'"),
            _ => kind.to_string(),
        };
        let items: Vec<String> = patterns.iter().map(|p| toml_item(rng, p)).collect();
        if rng.coin() {
            let _ = write!(out, "{key} = [{}]{nl}", items.join(", "));
        } else {
            let _ = write!(out, "{key}{} = [{nl}", rng.pick_str(&["", "  ", "\t"]));
            for item in items {
                let _ = write!(out, "    {item},");
                if rng.one_in(4) {
                    out.push_str(" # a rule");
                }
                out.push_str(nl);
            }
            let _ = write!(out, "]{nl}");
        }
    }
    out
}

/// One pattern as a TOML string: basic (perhaps with escapes), literal, or multi-line.
fn toml_item(rng: &mut Rng, pattern: &str) -> String {
    if pattern.chars().any(|c| c.is_control() && c != '\t') {
        return toml_quote(pattern).0;
    }
    match rng.below(6) {
        0 => format!("'{pattern}'"),
        1 => format!("\"\"\"{pattern}\"\"\""),
        2 => format!("'''{pattern}'''"),
        3 => {
            // Some characters as `\uXXXX`.
            let mut s = String::from("\"");
            for c in pattern.chars() {
                if rng.one_in(4) && (c as u32) < 0x10000 {
                    let _ = write!(s, "\\u{:04x}", c as u32);
                } else {
                    s.push(c);
                }
            }
            s.push('"');
            s
        }
        _ => format!("\"{pattern}\""),
    }
}

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

/// A valid action text aimed at the hints: `connect tcp 10.0.0.5:443 via api.example.com`.
fn gen_action(rng: &mut Rng, hints: &Hints) -> String {
    let proto = |rng: &mut Rng| if rng.coin() { "tcp" } else { "udp" };
    let addr = |rng: &mut Rng, local: bool| {
        let ip = if local && rng.one_in(3) {
            *rng.pick(&[
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ])
        } else {
            gen_ip(rng, hints)
        };
        let port = if local && rng.one_in(5) {
            0
        } else {
            gen_port(rng, hints)
        };
        match ip {
            IpAddr::V4(a) if rng.one_in(6) => format!("[{}]:{port}", a.to_ipv6_mapped()),
            IpAddr::V4(a) => format!("{a}:{port}"),
            IpAddr::V6(a) => format!("[{a}]:{port}"),
        }
    };
    let via = |rng: &mut Rng| {
        if hints.names.is_empty() || rng.one_in(3) {
            return String::new();
        }
        let names: Vec<&str> = (0..rng.between(1, 3))
            .map(|_| rng.pick(&hints.names).as_str())
            .collect();
        format!(" via {}", names.join(","))
    };
    let opt = |rng: &mut Rng, word: &'static str| if rng.coin() { word } else { "" };
    match rng.below(9) {
        0 => format!("create {}", proto(rng)),
        1 | 2 => format!("connect {} {}{}", proto(rng), addr(rng, false), via(rng)),
        3 => format!("send {}{}{}", opt(rng, "udp "), addr(rng, false), via(rng)),
        4 => format!("bind {} {}{}", proto(rng), addr(rng, true), via(rng)),
        5 => format!("listen {}{}{}", opt(rng, "tcp "), addr(rng, true), via(rng)),
        6 => format!(
            "accept {}{} from {}{}",
            opt(rng, "tcp "),
            addr(rng, true),
            addr(rng, false),
            via(rng)
        ),
        7 => format!(
            "receive {}{} from {}{}",
            opt(rng, "udp "),
            addr(rng, true),
            addr(rng, false),
            via(rng)
        ),
        _ => {
            let name = if hints.names.is_empty() {
                gen_name(&mut Gen::new(rng.next(), rng.next()))
            } else {
                rng.pick(&hints.names).clone()
            };
            format!("resolve {name}")
        }
    }
}
