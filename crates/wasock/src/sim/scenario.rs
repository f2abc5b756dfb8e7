//! The scenario file of a simulation: its components, the links between them and the timeline
//! of faults. Every mistake is reported with the file, line, column and key.
//!
//! ```toml
//! [sim]
//! seed = 1               # the default seed (`--seed` overrides it)
//! time-limit = "300s"    # virtual time; a task still running then fails
//!
//! [[component]]
//! name = "server"                       # its host name on the network
//! wasm = "echo-server.wasm"             # relative to the scenario file
//! args = ["0.0.0.0:7000", "1"]
//! role = "service"                      # may still run at the end ("task", the default, may not)
//! start = "500ms"                       # when it starts (virtual time; default 0)
//! connect-timeout = "2s"                # its connects' limit (default wasock's, 60 s)
//! fuel = 50_000_000_000                 # instructions it may run, so a spinning guest ends
//! policy = { allow-inbound = ["tcp://*:7000"] }   # the keys of a policy file, or "allow-all"
//!
//! [[link]]                              # without `between`: every path
//! between = ["client", "server"]
//! latency = "20ms"                     # one way, for TCP data, datagrams and the handshake
//! bandwidth = 1_000_000                 # bytes per second each way, shared by the path
//! loss = 0.1                            # also jitter, duplicate: for datagrams
//!
//! [[event]]
//! at = "1s"
//! partition = ["client", "server"]      # or heal, reset (a pair); down, up (a host);
//!                                       # lookups = "fail" | "answer"
//! ```

use crate::backend::LinkFaults;
use crate::policy::{ParseError, RuleSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::{DeArray, DeTable, DeValue};

/// The fuel a component gets when the scenario names none (tens of seconds of real work).
const DEFAULT_FUEL: u64 = 50_000_000_000;
/// The time limit when the scenario names none.
const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(600);

/// A parsed scenario, ready to run with any seed.
#[derive(Debug)]
pub struct Scenario {
    pub(crate) seed: u64,
    pub(crate) time_limit: Duration,
    pub(crate) components: Vec<ComponentSpec>,
    pub(crate) links: Vec<LinkSpec>,
    pub(crate) events: Vec<EventSpec>,
    pub(crate) names: Vec<(String, Vec<IpAddr>)>,
}

/// What a component must do for the run to pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Exit 0 before the time limit.
    Task,
    /// Never fail; may still run at the end.
    Service,
}

/// One component of a scenario.
#[derive(Debug)]
pub(crate) struct ComponentSpec {
    pub(crate) name: String,
    pub(crate) wasm: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) role: Role,
    /// `None`: everything allowed.
    pub(crate) policy: Option<RuleSet>,
    pub(crate) start: Duration,
    pub(crate) fuel: u64,
    /// The instance's connect timeout (wasock's default when `None`).
    pub(crate) connect_timeout: Option<Duration>,
}

/// A `[[link]]`: the faults of one path, or of every path.
#[derive(Debug)]
pub(crate) struct LinkSpec {
    pub(crate) between: Option<(String, String)>,
    pub(crate) faults: LinkFaults,
}

/// A `[[event]]` of the timeline.
#[derive(Debug)]
pub(crate) struct EventSpec {
    pub(crate) at: Duration,
    pub(crate) kind: EventKind,
}

/// What an event does.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum EventKind {
    Partition(String, String),
    Heal(String, String),
    Reset(String, String),
    Down(String),
    Up(String),
    Lookups { failing: bool },
}

/// A mistake in a scenario file.
#[derive(Debug)]
pub enum ScenarioError {
    /// The file could not be read.
    Read {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
    /// A key or value that is wrong, where it is.
    At {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key the value belongs to.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A component's policy rule is wrong (its own line and column).
    Policy(ParseError),
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Read { path, error } => write!(f, "cannot read {path}: {error}"),
            ScenarioError::At {
                path,
                line,
                column,
                key,
                problem,
            } => write!(f, "{path}:{line}:{column}: `{key}`: {problem}"),
            ScenarioError::Policy(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Reads and checks the scenario file at `path`; component paths are relative to its folder.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Read {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Scenario::parse(&text, &path.display().to_string(), dir)
    }

    /// Parses scenario `text`; `path` names it in errors, `dir` anchors relative `wasm` paths.
    pub fn parse(text: &str, path: &str, dir: &Path) -> Result<Scenario, ScenarioError> {
        let p = Parser { text, path };
        let table = DeTable::parse(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            p.error(at, "", format!("not valid TOML: {}", e.message()))
        })?;
        let mut scenario = Scenario {
            seed: 0,
            time_limit: DEFAULT_TIME_LIMIT,
            components: Vec::new(),
            links: Vec::new(),
            events: Vec::new(),
            names: Vec::new(),
        };
        for (key, value) in table.get_ref() {
            let at = key.span().start;
            match &**key.get_ref() {
                "sim" => p.sim(p.table(at, "sim", value.get_ref())?, &mut scenario)?,
                "component" => {
                    for t in p.tables(at, "component", value.get_ref())? {
                        let c = p.component(at, t, dir)?;
                        if scenario.components.iter().any(|o| o.name == c.name) {
                            return Err(p.error(
                                at,
                                "name",
                                format!("two components are named `{}`", c.name),
                            ));
                        }
                        scenario.components.push(c);
                    }
                }
                "link" => {
                    for t in p.tables(at, "link", value.get_ref())? {
                        scenario.links.push(p.link(at, t)?);
                    }
                }
                "event" => {
                    for t in p.tables(at, "event", value.get_ref())? {
                        scenario.events.push(p.event(at, t)?);
                    }
                }
                "names" => {
                    for (name, addrs) in p.table(at, "names", value.get_ref())? {
                        let at = name.span().start;
                        let list = p.strings(at, name.get_ref(), addrs.get_ref())?;
                        let ips = list
                            .iter()
                            .map(|a| {
                                a.parse::<IpAddr>().map_err(|_| {
                                    p.error(
                                        at,
                                        name.get_ref(),
                                        format!("`{a}` is not an IP address"),
                                    )
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        scenario.names.push((name.get_ref().to_string(), ips));
                    }
                }
                other => {
                    return Err(p.error(
                        at,
                        other,
                        "unknown key (expected sim, component, link, event or names)",
                    ));
                }
            }
        }
        if scenario.components.is_empty() {
            return Err(p.error(0, "component", "the scenario has no [[component]]"));
        }
        let known = |n: &str| scenario.components.iter().any(|c| c.name == n);
        let hosts_named = scenario
            .links
            .iter()
            .filter_map(|l| l.between.as_ref())
            .flat_map(|(a, b)| [a, b])
            .chain(scenario.events.iter().flat_map(|e| match &e.kind {
                EventKind::Partition(a, b) | EventKind::Heal(a, b) | EventKind::Reset(a, b) => {
                    vec![a, b]
                }
                EventKind::Down(a) | EventKind::Up(a) => vec![a],
                EventKind::Lookups { .. } => vec![],
            }));
        for name in hosts_named {
            if !known(name) {
                let at = text.find(&format!("\"{name}\"")).unwrap_or(0);
                return Err(p.error(at, name, "names no component of the scenario"));
            }
        }
        scenario.events.sort_by_key(|e| e.at);
        Ok(scenario)
    }

    /// The seed the scenario names (0 when it names none).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The components' names, in file order.
    pub fn component_names(&self) -> Vec<&str> {
        self.components.iter().map(|c| c.name.as_str()).collect()
    }
}

/// The scenario's text, for errors at byte offsets.
struct Parser<'a> {
    text: &'a str,
    path: &'a str,
}

type Entries<'i> = DeTable<'i>;

impl Parser<'_> {
    fn error(&self, at: usize, key: &str, problem: impl Into<String>) -> ScenarioError {
        let at = at.min(self.text.len());
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(at, |i| at - i - 1) + 1;
        ScenarioError::At {
            path: self.path.to_string(),
            line,
            column,
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    fn table<'v, 'i>(
        &self,
        at: usize,
        key: &str,
        v: &'v DeValue<'i>,
    ) -> Result<&'v Entries<'i>, ScenarioError> {
        match v {
            DeValue::Table(t) => Ok(t),
            _ => Err(self.error(at, key, "must be a table")),
        }
    }

    fn tables<'v, 'i>(
        &self,
        at: usize,
        key: &str,
        v: &'v DeValue<'i>,
    ) -> Result<Vec<&'v Entries<'i>>, ScenarioError> {
        let DeValue::Array(items) = v else {
            return Err(self.error(at, key, format!("must be an array of tables ([[{key}]])")));
        };
        items
            .iter()
            .map(|i| self.table(i.span().start, key, i.get_ref()))
            .collect()
    }

    fn string(&self, at: usize, key: &str, v: &DeValue<'_>) -> Result<String, ScenarioError> {
        match v {
            DeValue::String(s) => Ok(s.to_string()),
            _ => Err(self.error(at, key, "must be a string")),
        }
    }

    fn strings(&self, at: usize, key: &str, v: &DeValue<'_>) -> Result<Vec<String>, ScenarioError> {
        let DeValue::Array(items) = v else {
            return Err(self.error(at, key, "must be a list of strings"));
        };
        strings_of(items).ok_or_else(|| self.error(at, key, "must be a list of strings"))
    }

    fn pair(
        &self,
        at: usize,
        key: &str,
        v: &DeValue<'_>,
    ) -> Result<(String, String), ScenarioError> {
        match self.strings(at, key, v)?.as_slice() {
            [a, b] if a != b => Ok((a.clone(), b.clone())),
            _ => Err(self.error(
                at,
                key,
                "must name two different components, as [\"a\", \"b\"]",
            )),
        }
    }

    fn duration(&self, at: usize, key: &str, v: &DeValue<'_>) -> Result<Duration, ScenarioError> {
        let text = self.string(at, key, v)?;
        humantime::parse_duration(&text).map_err(|e| {
            self.error(
                at,
                key,
                format!("`{text}` is not a duration such as \"250ms\" or \"2s\": {e}"),
            )
        })
    }

    fn number(&self, at: usize, key: &str, v: &DeValue<'_>) -> Result<u64, ScenarioError> {
        let bad = || self.error(at, key, "must be a whole number from 0 up");
        let DeValue::Integer(i) = v else {
            return Err(bad());
        };
        u64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).map_err(|_| bad())
    }

    fn chance(&self, at: usize, key: &str, v: &DeValue<'_>) -> Result<f64, ScenarioError> {
        let p = match v {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
            _ => None,
        };
        match p {
            Some(p) if (0.0..=1.0).contains(&p) => Ok(p),
            _ => Err(self.error(at, key, "must be a chance from 0 to 1, such as 0.05")),
        }
    }

    fn sim(&self, t: &Entries<'_>, s: &mut Scenario) -> Result<(), ScenarioError> {
        for (key, value) in t {
            let (at, k, v) = (key.span().start, &**key.get_ref(), value.get_ref());
            match k {
                "seed" => s.seed = self.number(at, k, v)?,
                "time-limit" => s.time_limit = self.duration(at, k, v)?,
                _ => {
                    return Err(self.error(
                        at,
                        k,
                        "unknown key in [sim] (expected seed or time-limit)",
                    ));
                }
            }
        }
        Ok(())
    }

    fn component(
        &self,
        at: usize,
        t: &Entries<'_>,
        dir: &Path,
    ) -> Result<ComponentSpec, ScenarioError> {
        let mut c = ComponentSpec {
            name: String::new(),
            wasm: PathBuf::new(),
            args: Vec::new(),
            env: Vec::new(),
            role: Role::Task,
            policy: Some(RuleSet::builder().build()),
            start: Duration::ZERO,
            fuel: DEFAULT_FUEL,
            connect_timeout: None,
        };
        for (key, value) in t {
            let (at, k, v) = (key.span().start, &**key.get_ref(), value.get_ref());
            match k {
                "name" => {
                    let name = self.string(at, k, v)?;
                    let normalized = crate::lookup::normalize_name(&name)
                        .map_err(|_| self.error(at, k, format!("`{name}` is not a valid host name")))?;
                    c.name = normalized;
                }
                "wasm" => c.wasm = dir.join(self.string(at, k, v)?),
                "args" => c.args = self.strings(at, k, v)?,
                "env" => {
                    for (name, val) in self.table(at, k, v)? {
                        let val = self.string(name.span().start, name.get_ref(), val.get_ref())?;
                        c.env.push((name.get_ref().to_string(), val));
                    }
                }
                "role" => {
                    c.role = match self.string(at, k, v)?.as_str() {
                        "task" => Role::Task,
                        "service" => Role::Service,
                        other => return Err(self.error(at, k, format!("`{other}` is not a role (task or service)"))),
                    }
                }
                "start" => c.start = self.duration(at, k, v)?,
                "fuel" => c.fuel = self.number(at, k, v)?.max(1),
                "connect-timeout" => c.connect_timeout = Some(self.duration(at, k, v)?),
                "policy" => {
                    c.policy = match v {
                        DeValue::String(s) if s == "allow-all" => None,
                        DeValue::Table(rules) => {
                            let rules = crate::policy::file::rules_in(rules, self.text, self.path)
                                .map_err(ScenarioError::Policy)?;
                            let mut builder = RuleSet::builder();
                            for rule in rules {
                                builder.push(rule);
                            }
                            Some(builder.build())
                        }
                        _ => return Err(self.error(at, k, "must be \"allow-all\" or a table of policy rules")),
                    }
                }
                _ => return Err(self.error(at, k, "unknown key in [[component]] (expected name, wasm, args, env, role, start, fuel, connect-timeout or policy)")),
            }
        }
        if c.name.is_empty() {
            return Err(self.error(at, "name", "a [[component]] needs a name"));
        }
        if c.wasm.as_os_str().is_empty() {
            return Err(self.error(
                at,
                "wasm",
                format!("component `{}` needs a wasm file", c.name),
            ));
        }
        Ok(c)
    }

    fn link(&self, at: usize, t: &Entries<'_>) -> Result<LinkSpec, ScenarioError> {
        let _ = at;
        let mut l = LinkSpec {
            between: None,
            faults: LinkFaults::default(),
        };
        for (key, value) in t {
            let (at, k, v) = (key.span().start, &**key.get_ref(), value.get_ref());
            match k {
                "between" => l.between = Some(self.pair(at, k, v)?),
                "latency" => l.faults.latency = self.duration(at, k, v)?,
                "jitter" => l.faults.jitter = self.duration(at, k, v)?,
                "loss" => l.faults.loss = self.chance(at, k, v)?,
                "duplicate" => l.faults.duplicate = self.chance(at, k, v)?,
                "bandwidth" => l.faults.bandwidth = Some(self.number(at, k, v)?.max(1)),
                _ => return Err(self.error(at, k, "unknown key in [[link]] (expected between, latency, jitter, loss, duplicate or bandwidth)")),
            }
        }
        Ok(l)
    }

    fn event(&self, at: usize, t: &Entries<'_>) -> Result<EventSpec, ScenarioError> {
        let mut when = None;
        let mut kind = None;
        for (key, value) in t {
            let (at, k, v) = (key.span().start, &**key.get_ref(), value.get_ref());
            let what = match k {
                "at" => {
                    when = Some(self.duration(at, k, v)?);
                    continue;
                }
                "partition" => self.pair(at, k, v).map(|(a, b)| EventKind::Partition(a, b))?,
                "heal" => self.pair(at, k, v).map(|(a, b)| EventKind::Heal(a, b))?,
                "reset" => self.pair(at, k, v).map(|(a, b)| EventKind::Reset(a, b))?,
                "down" => EventKind::Down(self.string(at, k, v)?),
                "up" => EventKind::Up(self.string(at, k, v)?),
                "lookups" => match self.string(at, k, v)?.as_str() {
                    "fail" => EventKind::Lookups { failing: true },
                    "answer" => EventKind::Lookups { failing: false },
                    other => return Err(self.error(at, k, format!("`{other}` is not fail or answer"))),
                },
                _ => return Err(self.error(at, k, "unknown key in [[event]] (expected at, and one of partition, heal, reset, down, up, lookups)")),
            };
            if kind.replace(what).is_some() {
                return Err(self.error(at, k, "an [[event]] does one thing"));
            }
        }
        match (when, kind) {
            (Some(at), Some(kind)) => Ok(EventSpec { at, kind }),
            (None, _) => Err(self.error(
                at,
                "at",
                "an [[event]] needs `at`, the virtual time it happens",
            )),
            (_, None) => Err(self.error(
                at,
                "event",
                "an [[event]] needs what happens: partition, heal, reset, down, up or lookups",
            )),
        }
    }
}

fn strings_of(items: &DeArray<'_>) -> Option<Vec<String>> {
    items
        .iter()
        .map(|i| match i.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}
