//! `wasi:io/poll` over wasock's own pollables: a TCP stream's readiness is answered from the
//! state the host already holds (the reactor's readiness, the connection's pending bytes), with
//! no future and no allocation per pollable per `poll`. Every other pollable (clocks, files,
//! stdio, wasock's socket and datagram pollables) goes to `wasmtime-wasi-io`'s `poll`,
//! unchanged.
//!
//! The registry maps resource-table indices to what a stream or pollable waits on. Entries are
//! made only once wasock's own `wasi:io` is known to be linked (its first call), and removed by
//! its `drop`s, the only way a guest's stream or pollable goes away; so an entry never outlives
//! its resource, and a linker with another `wasi:io` never fills the registry.

use crate::tcp::Conn;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi_io::bindings::wasi::io::poll::Host as _;
use wasmtime_wasi_io::poll::DynPollable;

/// An owned wait, for what has no one-poll answer.
type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a registered stream's pollables wait on.
#[derive(Clone, Copy)]
pub(crate) enum Waitable<'a> {
    /// A TCP `input-stream`: [`Conn::readable`].
    Readable(&'a Arc<Conn>),
    /// A TCP `output-stream`: [`Conn::writable`].
    Writable(&'a Arc<Conn>),
}

impl Waitable<'_> {
    /// Readiness in one poll, registering `cx`'s waker when not ready; `None` when only the
    /// async wait can tell.
    fn poll_now(self, cx: &mut Context<'_>, fresh: bool) -> Option<Poll<()>> {
        match self {
            Waitable::Readable(conn) => conn.poll_readable(cx, fresh),
            Waitable::Writable(conn) => conn.poll_writable(cx),
        }
    }

    /// The async wait, owning what it waits on.
    fn wait(self) -> Wait {
        match self {
            Waitable::Readable(conn) => {
                let conn = conn.clone();
                Box::pin(async move { conn.readable().await })
            }
            Waitable::Writable(conn) => {
                let conn = conn.clone();
                Box::pin(async move { conn.writable().await })
            }
        }
    }
}

/// One registered pollable during a `poll`, `block` or `ready`.
struct Pending<'a> {
    /// Its index in the guest's list.
    at: u32,
    waitable: Waitable<'a>,
    /// The async wait, made the first time a poll could not tell.
    wait: Option<Wait>,
    /// Seen not ready in this call: readiness now is new.
    seen_pending: bool,
}

impl Pending<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(wait) = &mut self.wait {
            return wait.as_mut().poll(cx);
        }
        let ready = match self.waitable.poll_now(cx, self.seen_pending) {
            Some(ready) => ready,
            None => self.wait.insert(self.waitable.wait()).as_mut().poll(cx),
        };
        self.seen_pending |= ready.is_pending();
        ready
    }
}

/// The instance's registry of wasock-made streams and their pollables, by table index: one
/// pointer and one bit per index, so that an idle connection stays small. An index holds a
/// stream or a pollable, never both at once; which one a lookup means is the caller's.
#[derive(Default)]
pub(crate) struct Ready {
    /// wasock's `wasi:io` is linked (one of its functions ran).
    linked: bool,
    /// The connection a stream, or a pollable of one, belongs to.
    conns: Vec<Option<Arc<Conn>>>,
    /// Set: the output side; clear: the input side.
    output: Vec<u64>,
}

impl Ready {
    fn put(&mut self, rep: u32, entry: Option<(&Arc<Conn>, bool)>) {
        let Ok(at) = usize::try_from(rep) else {
            return;
        };
        if at >= self.conns.len() {
            if entry.is_none() {
                return;
            }
            // Grown by an eighth at a time, not doubled: a slot per table index is most of
            // what the registry costs an idle connection.
            if at >= self.conns.capacity() {
                let more = (at + 1 - self.conns.len())
                    .max(self.conns.len() / 8)
                    .max(64);
                self.conns.reserve_exact(more);
            }
            self.conns.resize(at + 1, None);
            self.output.resize(at / 64 + 1, 0);
        }
        let bit = 1u64 << (at % 64);
        match entry {
            Some((conn, output)) => {
                self.conns[at] = Some(conn.clone());
                if output {
                    self.output[at / 64] |= bit;
                } else {
                    self.output[at / 64] &= !bit;
                }
            }
            None => self.conns[at] = None,
        }
    }

    fn get(&self, rep: u32) -> Option<Waitable<'_>> {
        let at = usize::try_from(rep).ok()?;
        let conn = self.conns.get(at)?.as_ref()?;
        Some(if self.output[at / 64] & (1u64 << (at % 64)) != 0 {
            Waitable::Writable(conn)
        } else {
            Waitable::Readable(conn)
        })
    }

    /// wasock's `wasi:io` runs: registrations from now on.
    pub(crate) fn linked(&mut self) {
        self.linked = true;
    }

    /// A TCP connection's streams were pushed at these table indices.
    pub(crate) fn streams_made(&mut self, input: u32, output: u32, conn: &Arc<Conn>) {
        if self.linked {
            self.put(input, Some((conn, false)));
            self.put(output, Some((conn, true)));
        }
    }

    /// The guest dropped the stream at `rep`.
    pub(crate) fn stream_dropped(&mut self, rep: u32) {
        self.put(rep, None);
    }

    /// `subscribe` on the stream at `stream` made the pollable at `pollable`.
    pub(crate) fn subscribed(&mut self, stream: u32, pollable: u32) {
        let entry = self.get(stream).map(|w| match w {
            Waitable::Readable(conn) => (conn.clone(), false),
            Waitable::Writable(conn) => (conn.clone(), true),
        });
        if let Some((conn, output)) = entry {
            self.put(pollable, Some((&conn, output)));
        }
    }

    /// The guest dropped the pollable at `rep`.
    pub(crate) fn pollable_dropped(&mut self, rep: u32) {
        self.put(rep, None);
    }

    /// `poll`: the indices of the ready pollables in `list`, waiting until there is one.
    pub(crate) async fn poll(
        &self,
        table: &mut ResourceTable,
        list: Vec<Resource<DynPollable>>,
    ) -> wasmtime::Result<Vec<u32>> {
        // io.wit: `poll` traps if the list is empty or has more elements than a u32 indexes.
        if list.is_empty() {
            wasmtime::bail!("empty poll list");
        }
        if u32::try_from(list.len()).is_err() {
            wasmtime::bail!("poll list longer than a u32 can index");
        }
        let mut own = Vec::new();
        let mut others = Vec::new();
        let mut others_at = Vec::new();
        for (at, pollable) in (0u32..).zip(list) {
            match self.get(pollable.rep()) {
                Some(waitable) => own.push(Pending {
                    at,
                    waitable,
                    wait: None,
                    seen_pending: false,
                }),
                None => {
                    others_at.push(at);
                    others.push(pollable);
                }
            }
        }
        if own.is_empty() {
            return table.poll(others).await;
        }
        let others = (!others.is_empty()).then(|| table.poll(others));
        let mut others = pin!(others);
        poll_fn(|cx| {
            let mut ready: Vec<u32> = own
                .iter_mut()
                .filter_map(|p| p.poll(cx).is_ready().then_some(p.at))
                .collect();
            if let Some(others) = others.as_mut().as_pin_mut()
                && let Poll::Ready(found) = others.poll(cx)
            {
                let found = found?;
                ready.extend(found.iter().filter_map(|&i| others_at.get(i as usize)));
            }
            if ready.is_empty() {
                Poll::Pending
            } else {
                ready.sort_unstable();
                Poll::Ready(Ok(ready))
            }
        })
        .await
    }

    /// `pollable.block` for a registered pollable; `None` for any other.
    pub(crate) async fn block(&self, rep: u32) -> Option<()> {
        let mut one = self.pending(rep)?;
        poll_fn(|cx| one.poll(cx)).await;
        Some(())
    }

    /// `pollable.ready` for a registered pollable; `None` for any other.
    pub(crate) fn ready(&self, rep: u32) -> Option<bool> {
        let mut one = self.pending(rep)?;
        Some(
            one.poll(&mut Context::from_waker(std::task::Waker::noop()))
                .is_ready(),
        )
    }

    fn pending(&self, rep: u32) -> Option<Pending<'_>> {
        Some(Pending {
            at: 0,
            waitable: self.get(rep)?,
            wait: None,
            seen_pending: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before wasock's `wasi:io` has run, nothing is noted (a linker with another `wasi:io`
    /// never fills the registry); a pollable of an unnoted stream is not noted either, and
    /// clearing past the end grows nothing.
    #[test]
    fn nothing_noted_until_linked() {
        let mut ready = Ready::default();
        ready.subscribed(3, 4);
        assert!(ready.conns.is_empty());
        assert!(
            ready.ready(4).is_none(),
            "an unnoted pollable goes to wasmtime-wasi-io"
        );
        ready.linked();
        ready.subscribed(3, 4);
        ready.pollable_dropped(70);
        ready.stream_dropped(u32::MAX);
        assert!(ready.conns.is_empty() && ready.output.is_empty());
        assert!(ready.get(u32::MAX).is_none());
    }
}
