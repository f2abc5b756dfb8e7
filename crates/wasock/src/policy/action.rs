//! Actions written as text, for `wasock policy check --explain`:
//!
//! ```text
//! create tcp|udp
//! connect tcp|udp ADDR:PORT [via NAME[,NAME...]]
//! send [udp] ADDR:PORT [via NAME[,NAME...]]
//! bind tcp|udp ADDR:PORT [via NAME[,NAME...]]
//! listen [tcp] ADDR:PORT [via NAME[,NAME...]]
//! accept [tcp] ADDR:PORT from PEER:PORT [via NAME[,NAME...]]
//! receive [udp] ADDR:PORT from PEER:PORT [via NAME[,NAME...]]
//! resolve NAME
//! ```
//!
//! `via NAME` stands for this instance's lookups: as if looking NAME up had returned the remote
//! address (the peer for accept and receive, the local address for bind and listen), so
//! name-bound rules can be explained.

use super::cidr::normalize_ip;
use super::error::column_of;
use super::{Action, NameBook, Protocol};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// An action parsed from text; [`ActionSpec::action`] lends it as an [`Action`], and it is the
/// [`NameBook`] its `via` part describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionSpec {
    op: Op,
    names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Socket(Action<'static>),
    Resolve(String),
}

impl ActionSpec {
    /// The action, borrowing the name of a `resolve`.
    pub fn action(&self) -> Action<'_> {
        match &self.op {
            Op::Socket(a) => *a,
            Op::Resolve(name) => Action::Resolve { name },
        }
    }

    /// The names of the `via` part (normalized).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The address the `via` names stand for.
    fn subject(&self) -> Option<IpAddr> {
        let addr = match self.op {
            Op::Socket(Action::Connect { remote, .. } | Action::Send { remote }) => remote,
            Op::Socket(Action::Accept { peer, .. } | Action::Receive { peer, .. }) => peer,
            Op::Socket(Action::Bind { local, .. } | Action::Listen { local }) => local,
            _ => return None,
        };
        Some(normalize_ip(addr.ip()))
    }
}

/// The `via` names belong to the action's subject address, and to no other.
impl NameBook for ActionSpec {
    fn names_of(&self, ip: IpAddr) -> &[String] {
        if self.subject() == Some(normalize_ip(ip)) {
            &self.names
        } else {
            &[]
        }
    }
}

impl FromStr for ActionSpec {
    type Err = ActionError;

    fn from_str(text: &str) -> Result<ActionSpec, ActionError> {
        parse_action(text)
    }
}

/// An action text that does not follow the grammar of the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionError {
    /// The text as given.
    pub text: String,
    /// 1-based column, in characters.
    pub column: usize,
    /// What was expected there.
    pub problem: ActionProblem,
}

/// What an action text lacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionProblem {
    /// Not one of the eight operations.
    UnknownOp,
    /// Not `tcp` or `udp`.
    ExpectedProto,
    /// The other protocol than the operation has.
    WrongProto(Protocol),
    /// Not `ADDR:PORT`.
    ExpectedSocketAddr,
    /// No `from PEER:PORT` for accept or receive.
    ExpectedFrom,
    /// Not a host name.
    ExpectedName,
    /// Text after the end.
    ExpectedEnd,
}

impl fmt::Display for ActionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionProblem::UnknownOp => f.write_str(
                "expected an operation: create, connect, send, bind, listen, accept, receive or \
                 resolve",
            ),
            ActionProblem::ExpectedProto => f.write_str("expected tcp or udp"),
            ActionProblem::WrongProto(p) => write!(f, "expected {p}: the operation is {p} only"),
            ActionProblem::ExpectedSocketAddr => {
                f.write_str("expected an address and port: 10.0.0.5:5432 or [::1]:5432")
            }
            ActionProblem::ExpectedFrom => f.write_str("expected `from PEER:PORT`"),
            ActionProblem::ExpectedName => f.write_str("expected a host name"),
            ActionProblem::ExpectedEnd => {
                f.write_str("expected the end of the action, or `via NAME[,NAME...]`")
            }
        }
    }
}

/// `TEXT: column N: expected …`.
impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: column {}: {}", self.text, self.column, self.problem)
    }
}

impl std::error::Error for ActionError {}

/// Parses an action as the module documentation writes it: `connect tcp 10.0.0.5:5432`.
pub fn parse_action(text: &str) -> Result<ActionSpec, ActionError> {
    let mut words = Words::new(text);
    let fail = |at: usize, problem| ActionError {
        text: text.to_owned(),
        column: column_of(text, at),
        problem,
    };
    let (at, op) = words.next_or_end();
    let op = match op {
        "create" => {
            let proto = words.proto(None).map_err(|(at, p)| fail(at, p))?;
            Op::Socket(Action::Create { proto })
        }
        "resolve" => {
            let (at, name) = words.next_or_end();
            let name = crate::lookup::normalize_name(name)
                .ok()
                .filter(|_| name.parse::<IpAddr>().is_err())
                .ok_or(fail(at, ActionProblem::ExpectedName))?;
            Op::Resolve(name)
        }
        "connect" | "bind" | "send" | "receive" | "listen" | "accept" => {
            let fixed = match op {
                "send" | "receive" => Some(Protocol::Udp),
                "listen" | "accept" => Some(Protocol::Tcp),
                _ => None,
            };
            let proto = words.proto(fixed).map_err(|(at, p)| fail(at, p))?;
            let addr = words
                .socket_addr()
                .map_err(|at| fail(at, ActionProblem::ExpectedSocketAddr))?;
            let peer = if matches!(op, "accept" | "receive") {
                let (at, word) = words.next_or_end();
                if word != "from" {
                    return Err(fail(at, ActionProblem::ExpectedFrom));
                }
                Some(
                    words
                        .socket_addr()
                        .map_err(|at| fail(at, ActionProblem::ExpectedSocketAddr))?,
                )
            } else {
                None
            };
            Op::Socket(match (op, peer) {
                ("connect", _) => Action::Connect {
                    proto,
                    remote: addr,
                },
                ("send", _) => Action::Send { remote: addr },
                ("bind", _) => Action::Bind { proto, local: addr },
                ("listen", _) => Action::Listen { local: addr },
                ("accept", Some(peer)) => Action::Accept { local: addr, peer },
                (_, peer) => Action::Receive {
                    local: addr,
                    peer: peer.unwrap_or(addr),
                },
            })
        }
        _ => return Err(fail(at, ActionProblem::UnknownOp)),
    };
    let mut names = Vec::new();
    let (at, word) = words.next_or_end();
    if word == "via" && matches!(op, Op::Socket(a) if !matches!(a, Action::Create { .. })) {
        let (mut at, list) = words.next_or_end();
        for name in list.split(',') {
            let normalized = crate::lookup::normalize_name(name)
                .map_err(|_| fail(at, ActionProblem::ExpectedName))?;
            names.push(normalized);
            at += name.len() + 1;
        }
    } else if !word.is_empty() {
        return Err(fail(at, ActionProblem::ExpectedEnd));
    }
    let (at, word) = words.next_or_end();
    if !word.is_empty() {
        return Err(fail(at, ActionProblem::ExpectedEnd));
    }
    Ok(ActionSpec { op, names })
}

/// Whitespace-separated words with their byte offsets.
struct Words<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Self {
        Words { text, pos: 0 }
    }

    /// The next word and its offset; an empty word at the end of the text.
    fn next_or_end(&mut self) -> (usize, &'a str) {
        let rest = &self.text[self.pos..];
        let start = self.pos + (rest.len() - rest.trim_start().len());
        let rest = &self.text[start..];
        let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        self.pos = start + len;
        (start, &rest[..len])
    }

    /// `tcp` or `udp`; optional (and checked) when the operation has one protocol.
    fn proto(&mut self, fixed: Option<Protocol>) -> Result<Protocol, (usize, ActionProblem)> {
        let save = self.pos;
        let (at, word) = self.next_or_end();
        let named = match word {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        };
        match (fixed, named) {
            (Some(f), Some(n)) if f != n => Err((at, ActionProblem::WrongProto(f))),
            (_, Some(n)) => Ok(n),
            (Some(f), None) => {
                self.pos = save;
                Ok(f)
            }
            (None, None) => Err((at, ActionProblem::ExpectedProto)),
        }
    }

    /// `ADDR:PORT` or `[IPv6]:PORT`.
    fn socket_addr(&mut self) -> Result<SocketAddr, usize> {
        let (at, word) = self.next_or_end();
        word.parse().map_err(|_| at)
    }
}

/// The action in the syntax [`parse_action`] reads (`connect tcp 10.0.0.5:5432`).
pub fn describe_action(action: &Action<'_>) -> String {
    match action {
        Action::Create { proto } => format!("create {proto}"),
        Action::Connect { proto, remote } => format!("connect {proto} {remote}"),
        Action::Send { remote } => format!("send udp {remote}"),
        Action::Bind { proto, local } => format!("bind {proto} {local}"),
        Action::Listen { local } => format!("listen tcp {local}"),
        Action::Accept { local, peer } => format!("accept tcp {local} from {peer}"),
        Action::Receive { local, peer } => format!("receive udp {local} from {peer}"),
        Action::Resolve { name } => format!("resolve {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_round_trips() {
        for text in [
            "create tcp",
            "create udp",
            "connect tcp 10.0.0.5:5432",
            "connect udp [::1]:53",
            "send udp 10.0.0.5:53",
            "bind tcp 0.0.0.0:80",
            "bind udp [::]:0",
            "listen tcp 127.0.0.1:8080",
            "accept tcp 0.0.0.0:80 from 10.0.0.9:40000",
            "receive udp 0.0.0.0:53 from 10.0.0.9:40000",
            "resolve api.example.com",
        ] {
            let spec = parse_action(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(describe_action(&spec.action()), text);
        }
    }

    #[test]
    fn optional_protocols_and_via_names() {
        let spec = parse_action("send 10.0.0.5:53 via NS.Example.").unwrap();
        assert_eq!(describe_action(&spec.action()), "send udp 10.0.0.5:53");
        assert_eq!(spec.names(), ["ns.example"]);
        assert_eq!(spec.names_of("10.0.0.5".parse().unwrap()), ["ns.example"]);
        assert_eq!(
            spec.names_of("::ffff:10.0.0.5".parse().unwrap()),
            ["ns.example"]
        );
        assert!(spec.names_of("10.0.0.6".parse().unwrap()).is_empty());
        let spec =
            parse_action("accept 0.0.0.0:80 from 10.0.0.9:1 via a.example,b.example").unwrap();
        assert_eq!(spec.names_of("10.0.0.9".parse().unwrap()).len(), 2);
        assert!(spec.names_of("0.0.0.0".parse().unwrap()).is_empty());
        let spec = parse_action("resolve Bücher.Example.").unwrap();
        assert_eq!(
            spec.action(),
            Action::Resolve {
                name: "xn--bcher-kva.example"
            }
        );
    }

    #[test]
    fn mistakes_name_their_column() {
        for (text, column, problem) in [
            ("", 1, ActionProblem::UnknownOp),
            ("conect tcp 1.2.3.4:5", 1, ActionProblem::UnknownOp),
            ("connect 1.2.3.4:5", 9, ActionProblem::ExpectedProto),
            (
                "listen udp 1.2.3.4:5",
                8,
                ActionProblem::WrongProto(Protocol::Tcp),
            ),
            ("connect tcp 1.2.3.4", 13, ActionProblem::ExpectedSocketAddr),
            ("accept 0.0.0.0:80", 18, ActionProblem::ExpectedFrom),
            (
                "accept 0.0.0.0:80 from x",
                24,
                ActionProblem::ExpectedSocketAddr,
            ),
            ("resolve 10.0.0.5", 9, ActionProblem::ExpectedName),
            (
                "connect tcp 1.2.3.4:5 via a.example,,b",
                37,
                ActionProblem::ExpectedName,
            ),
            ("connect tcp 1.2.3.4:5 now", 23, ActionProblem::ExpectedEnd),
            ("create tcp via x.example", 12, ActionProblem::ExpectedEnd),
        ] {
            let e = parse_action(text).expect_err(text);
            assert_eq!((e.column, e.problem), (column, problem), "{text}");
        }
    }
}
