//! What a simulation records: the trace (JSON lines stamped with virtual time) and the
//! components' output, and the clocks the guests read.

use super::Ending;
use super::scenario::EventKind;
use crate::audit::{AuditEvent, AuditSink};
use bytes::Bytes;
use serde_json::json;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::clocks::{HostMonotonicClock, HostWallClock};
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{OutputStream, StreamResult};

/// Virtual time as the trace writes it: seconds with nanoseconds, `"1.250000000"`.
pub(crate) fn stamp(d: Duration) -> String {
    format!("{}.{:09}s", d.as_secs(), d.subsec_nanos())
}

/// The run's trace, shared by everything that writes to it.
#[derive(Clone)]
pub(crate) struct Trace(Arc<Mutex<TraceState>>);

struct TraceState {
    start: Instant,
    lines: Vec<String>,
    output: Vec<(String, &'static str, String)>,
    /// Output not ended by a newline yet, per component and stream.
    partial: Vec<((String, &'static str), Vec<u8>)>,
}

impl Trace {
    pub(crate) fn new(start: Instant) -> Self {
        Trace(Arc::new(Mutex::new(TraceState {
            start,
            lines: Vec::new(),
            output: Vec::new(),
            partial: Vec::new(),
        })))
    }

    pub(crate) fn start(&self) -> Instant {
        crate::sync::lock(&self.0).start
    }

    fn push(&self, mut record: serde_json::Value) {
        let mut st = crate::sync::lock(&self.0);
        record["t"] = json!(stamp(st.start.elapsed()));
        st.lines.push(record.to_string());
    }

    /// A guest's bytes on `stream`: each whole line is a record.
    fn write(&self, component: &str, stream: &'static str, bytes: &[u8]) {
        let lines: Vec<String> = {
            let mut st = crate::sync::lock(&self.0);
            let key = (component.to_string(), stream);
            let at = match st.partial.iter().position(|(k, _)| *k == key) {
                Some(at) => at,
                None => {
                    st.partial.push((key, Vec::new()));
                    st.partial.len() - 1
                }
            };
            let buf = &mut st.partial[at].1;
            buf.extend_from_slice(bytes);
            let mut lines = Vec::new();
            while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                lines.push(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            lines
        };
        for line in lines {
            self.push(json!({ "component": component, "event": stream, "line": line }));
            crate::sync::lock(&self.0)
                .output
                .push((component.to_string(), stream, line));
        }
    }

    /// A component's ending (what it had written without a final newline first).
    pub(crate) fn ending(&self, component: &str, ending: &Ending) {
        let rest: Vec<((String, &'static str), Vec<u8>)> = {
            let mut st = crate::sync::lock(&self.0);
            let (mine, others) = std::mem::take(&mut st.partial)
                .into_iter()
                .partition(|((c, _), buf)| c == component && !buf.is_empty());
            st.partial = others;
            mine
        };
        for ((c, stream), mut buf) in rest {
            buf.push(b'\n');
            self.write(&c, stream, &buf);
        }
        let record = match ending {
            Ending::Exited(code) => {
                json!({ "component": component, "event": "exit", "code": code })
            }
            Ending::Trapped(why) => json!({ "component": component, "event": "trap", "why": why }),
            Ending::Running => json!({ "component": component, "event": "running" }),
        };
        self.push(record);
    }

    /// A timeline event, applied or not (it names an unknown host).
    pub(crate) fn event(&self, kind: &EventKind, applied: bool) {
        let record = match kind {
            EventKind::Partition(a, b) => json!({ "event": "partition", "between": [a, b] }),
            EventKind::Heal(a, b) => json!({ "event": "heal", "between": [a, b] }),
            EventKind::Reset(a, b) => json!({ "event": "reset", "between": [a, b] }),
            EventKind::Down(h) => json!({ "event": "down", "host": h }),
            EventKind::Up(h) => json!({ "event": "up", "host": h }),
            EventKind::Lookups { failing } => {
                json!({ "event": "lookups", "failing": failing })
            }
        };
        let mut record = record;
        if !applied {
            record["applied"] = json!(false);
        }
        self.push(record);
    }

    /// What the network's faults did to datagrams, into the trace.
    pub(crate) fn fault_observer(
        &self,
    ) -> impl Fn(crate::Fault, std::net::SocketAddr, std::net::SocketAddr, usize) + use<> {
        let trace = self.clone();
        move |fault, from, to, bytes| {
            trace.push(json!({
                "event": fault.name(),
                "from": from.to_string(),
                "to": to.to_string(),
                "bytes": bytes,
            }))
        }
    }

    /// An audit sink writing every socket decision into the trace.
    pub(crate) fn audit_sink(&self) -> impl AuditSink + use<> {
        let trace = self.clone();
        move |e: &AuditEvent<'_>| {
            trace.push(json!({
                "component": e.instance,
                "event": e.op,
                "proto": e.proto.map(|p| p.to_string()),
                "local": e.local.map(|a| a.to_string()),
                "remote": e.remote.map(|a| a.to_string()),
                "name": e.name,
                "verdict": e.verdict,
                "rule": e.rule,
            }))
        }
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        crate::sync::lock(&self.0).lines.clone()
    }

    pub(crate) fn output(&self) -> Vec<(String, &'static str, String)> {
        crate::sync::lock(&self.0).output.clone()
    }
}

/// A guest's stdout or stderr, into the trace.
#[derive(Clone)]
pub(crate) struct TraceOutput {
    trace: Trace,
    component: Arc<str>,
    stream: &'static str,
}

impl TraceOutput {
    pub(crate) fn new(trace: &Trace, component: &str, stream: &'static str) -> Self {
        TraceOutput {
            trace: trace.clone(),
            component: component.into(),
            stream,
        }
    }
}

impl IsTerminal for TraceOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for TraceOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for TraceOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.trace.write(&self.component, self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi_io::async_trait]
impl Pollable for TraceOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for TraceOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.trace.write(&self.component, self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `wasi:clocks/monotonic-clock` in virtual time: nanoseconds since the run began.
pub(crate) struct VirtualMonotonic(pub(crate) Instant);

impl HostMonotonicClock for VirtualMonotonic {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// `wasi:clocks/wall-clock` in virtual time: a fixed epoch plus the time since the run began.
pub(crate) struct VirtualWall(pub(crate) Instant, pub(crate) Duration);

impl HostWallClock for VirtualWall {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.1 + self.0.elapsed()
    }
}
