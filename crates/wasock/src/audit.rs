//! The audit trail: one [`AuditEvent`] per policy decision, delivered to an [`AuditSink`]
//! (JSON lines for operators, a callback for embedders) and to `tracing`.

use crate::policy::{Action, Protocol};
use serde::Serialize;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::SystemTime;

/// Whether denials are enforced or only recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PolicyMode {
    /// Denied operations fail (the default).
    #[default]
    Enforce,
    /// Everything is allowed; what enforce mode would deny is recorded as `would-deny`.
    Audit,
}

/// The outcome recorded for one decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditVerdict {
    /// Allowed.
    Allow,
    /// Denied and refused.
    Deny,
    /// Denied by the policy but let through (audit mode).
    WouldDeny,
}

/// One policy decision, as written to the audit trail.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent<'a> {
    /// When, as RFC 3339 UTC with microseconds.
    pub time: String,
    /// Which instance (the name the embedder or CLI gave it).
    pub instance: &'a str,
    /// `create`, `bind`, `listen`, `accept`, `connect`, `send`, `receive` or `resolve`.
    pub op: &'static str,
    /// `tcp` or `udp`, when the operation has one.
    #[serde(serialize_with = "display_opt")]
    pub proto: Option<Protocol>,
    /// The socket's own address, when the operation has one.
    pub local: Option<SocketAddr>,
    /// The other end's address, when the operation has one.
    pub remote: Option<SocketAddr>,
    /// The host name looked up, for `resolve`.
    pub name: Option<&'a str>,
    /// What happened.
    pub verdict: AuditVerdict,
    /// The rule that decided, as written; `null` for the default deny.
    pub rule: Option<&'a str>,
}

fn display_opt<S: serde::Serializer>(p: &Option<Protocol>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.collect_str(p),
        None => s.serialize_none(),
    }
}

impl<'a> AuditEvent<'a> {
    /// The record of `action`, decided with `verdict` by `rule`.
    pub(crate) fn new(
        instance: &'a str,
        action: &Action<'a>,
        verdict: AuditVerdict,
        rule: Option<&'a str>,
    ) -> Self {
        let (proto, local, remote, name) = match *action {
            Action::Create { proto } => (Some(proto), None, None, None),
            Action::Bind { proto, local } => (Some(proto), Some(local), None, None),
            Action::Listen { local } => (Some(Protocol::Tcp), Some(local), None, None),
            Action::Accept { local, peer } => (Some(Protocol::Tcp), Some(local), Some(peer), None),
            Action::Connect { proto, remote } => (Some(proto), None, Some(remote), None),
            Action::Send { remote } => (Some(Protocol::Udp), None, Some(remote), None),
            Action::Receive { local, peer } => (Some(Protocol::Udp), Some(local), Some(peer), None),
            Action::Resolve { name } => (None, None, None, Some(name)),
        };
        AuditEvent {
            time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            instance,
            op: action.op(),
            proto,
            local,
            remote,
            name,
            verdict,
            rule,
        }
    }
}

/// Receives every audit event of the instances it is given to. Must not block for long: it is
/// called on the guest's path.
pub trait AuditSink: Send + Sync + 'static {
    /// Record one event.
    fn record(&self, event: &AuditEvent<'_>);
}

/// Any `Fn(&AuditEvent)` closure is a sink (the embedder's callback).
impl<F: Fn(&AuditEvent<'_>) + Send + Sync + 'static> AuditSink for F {
    fn record(&self, event: &AuditEvent<'_>) {
        self(event)
    }
}

/// A sink shared by several instances (or kept by the embedder) records what it is given.
impl<S: AuditSink + ?Sized> AuditSink for std::sync::Arc<S> {
    fn record(&self, event: &AuditEvent<'_>) {
        (**self).record(event)
    }
}

/// Writes one JSON object per line (`--audit FILE`).
pub struct JsonLines<W: Write + Send + 'static>(Mutex<W>);

impl<W: Write + Send + 'static> JsonLines<W> {
    /// A sink writing to `out` (a file, or stderr).
    pub fn new(out: W) -> Self {
        JsonLines(Mutex::new(out))
    }
}

impl<W: Write + Send + 'static> AuditSink for JsonLines<W> {
    fn record(&self, event: &AuditEvent<'_>) {
        let mut out = crate::sync::lock(&self.0);
        if serde_json::to_writer(&mut *out, event).is_ok() {
            let _ = out.write_all(b"\n");
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_the_documented_fields() {
        let remote: SocketAddr = "10.0.0.5:5432".parse().unwrap();
        let action = Action::Connect {
            proto: Protocol::Tcp,
            remote,
        };
        let event = AuditEvent::new("app", &action, AuditVerdict::WouldDeny, None);
        let sink = JsonLines::new(Vec::new());
        sink.record(&event);
        let line = String::from_utf8(sink.0.into_inner().unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["instance"], "app");
        assert_eq!(v["op"], "connect");
        assert_eq!(v["proto"], "tcp");
        assert_eq!(v["remote"], "10.0.0.5:5432");
        assert_eq!(v["local"], serde_json::Value::Null);
        assert_eq!(v["verdict"], "would-deny");
        assert_eq!(v["rule"], serde_json::Value::Null);
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }
}
