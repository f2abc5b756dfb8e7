//! A UDP socket's host-side receive queue: datagrams a receive took off the kernel beyond the
//! guest's `max-results` (one GRO buffer can hold more than that), handed out first, in
//! arrival order, by the next receives.
//!
//! The queue holds raw datagrams: the stream's peer filter and the policy apply when a
//! datagram is handed to the guest, as for one taken straight off the kernel. Every byte it
//! holds is counted against the socket's cap ([`MAX_UDP_QUEUE`]) and, through the gate, the
//! instance's ([`MAX_UDP_QUEUED`](crate::limits::MAX_UDP_QUEUED)); a datagram that finds no
//! room is dropped and counted, as a full receive buffer drops one. What it holds is released
//! as it is handed out, by [`RecvQueue::clear`] and on drop.

use crate::gate::Gate;
use crate::limits::{MAX_UDP_QUEUE, QUEUED_DATAGRAM_COST};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

/// See the module doc.
pub(crate) struct RecvQueue {
    items: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Bytes counted for `items`, by [`cost`].
    bytes: usize,
    /// The most `bytes` may reach.
    cap: usize,
    gate: Arc<Gate>,
}

/// Rule: a queued datagram costs its payload plus [`QUEUED_DATAGRAM_COST`].
fn cost(payload: usize) -> usize {
    payload.saturating_add(QUEUED_DATAGRAM_COST)
}

impl RecvQueue {
    /// An empty queue of at most [`MAX_UDP_QUEUE`] bytes, counted on `gate`.
    pub(crate) fn new(gate: Arc<Gate>) -> Self {
        Self::with_cap(gate, MAX_UDP_QUEUE)
    }

    /// An empty queue of at most `cap` bytes, counted on `gate`.
    pub(crate) fn with_cap(gate: Arc<Gate>, cap: usize) -> Self {
        RecvQueue {
            items: VecDeque::new(),
            bytes: 0,
            cap,
            gate,
        }
    }

    /// Rule: a datagram joins the back if both the socket's cap and the instance's total have
    /// room for its cost; otherwise it is dropped and counted. Whether it was queued.
    pub(crate) fn push(&mut self, from: SocketAddr, data: &[u8]) -> bool {
        let cost = cost(data.len());
        let fits = self.bytes.saturating_add(cost) <= self.cap;
        if !fits || !self.gate.hold_queued(cost) {
            self.gate.queue_dropped(1);
            return false;
        }
        self.bytes += cost;
        self.items.push_back((from, data.to_vec()));
        true
    }

    /// Rule: the oldest datagram leaves first, and its bytes stop counting as it leaves.
    pub(crate) fn pop(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        let (from, data) = self.items.pop_front()?;
        let cost = cost(data.len());
        self.bytes -= cost;
        self.gate.release_queued(cost);
        if self.items.is_empty() {
            // Its room goes back to the allocator too.
            self.items = VecDeque::new();
        }
        Some((from, data))
    }

    /// Rule: dropping what the queue holds releases all of it (a new `stream`, a dropped stream).
    pub(crate) fn clear(&mut self) {
        self.items = VecDeque::new();
        self.gate.release_queued(std::mem::take(&mut self.bytes));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Datagrams queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Bytes counted for the queued datagrams.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for RecvQueue {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::test_gate;
    use crate::limits::{Limits, MAX_UDP_QUEUED};

    fn from(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn queued(gate: &Gate) -> (u64, u64) {
        let s = gate.stats();
        (s.udp_queued_bytes, s.udp_queue_drops)
    }

    #[test]
    fn first_in_first_out_and_counted_until_handed_out() {
        let gate = test_gate(Limits::default());
        let mut q = RecvQueue::new(gate.clone());
        for i in 0..10u8 {
            assert!(q.push(from(1000 + u16::from(i)), &[i; 5]));
        }
        assert_eq!(q.len(), 10);
        assert_eq!(q.bytes(), 10 * cost(5));
        assert_eq!(queued(&gate), (10 * cost(5) as u64, 0));
        for i in 0..10u8 {
            let (sender, data) = q.pop().unwrap();
            assert_eq!((sender, data), (from(1000 + u16::from(i)), vec![i; 5]));
            assert_eq!(queued(&gate).0, (9 - u64::from(i)) * cost(5) as u64);
        }
        assert!(q.pop().is_none() && q.is_empty());
        assert_eq!(queued(&gate), (0, 0), "back to the baseline");
    }

    #[test]
    fn the_socket_cap_bounds_it_and_drops_are_counted() {
        let gate = test_gate(Limits::default());
        let mut q = RecvQueue::with_cap(gate.clone(), 3 * cost(100));
        assert!(q.push(from(1), &[1; 100]));
        assert!(q.push(from(1), &[2; 100]));
        assert!(!q.push(from(1), &[3; 101]), "over the cap by one byte");
        assert!(q.push(from(1), &[4; 100]));
        assert!(!q.push(from(1), &[]), "full");
        assert_eq!((q.len(), q.bytes()), (3, 3 * cost(100)));
        assert_eq!(queued(&gate), (3 * cost(100) as u64, 2));
        let firsts: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|(_, d)| d[0]).collect();
        assert_eq!(
            firsts,
            [1, 2, 4],
            "what was dropped leaves no gap in the order"
        );
        assert_eq!(queued(&gate).0, 0);
    }

    #[test]
    fn the_instance_total_bounds_every_queue_together() {
        let gate = test_gate(Limits::default());
        let big = vec![0u8; 60_000];
        let mut queues: Vec<RecvQueue> = Vec::new();
        let mut held = 0;
        // More sockets than the instance total has room for, each filled to its own cap.
        for _ in 0..(MAX_UDP_QUEUED / MAX_UDP_QUEUE + 2) {
            let mut q = RecvQueue::new(gate.clone());
            while q.push(from(2), &big) {}
            held += q.bytes();
            queues.push(q);
        }
        assert!(held <= MAX_UDP_QUEUED);
        assert!(
            held + cost(big.len()) > MAX_UDP_QUEUED,
            "filled to the total"
        );
        assert_eq!(queued(&gate).0, held as u64);
        assert!(queues.iter().all(|q| q.bytes() <= MAX_UDP_QUEUE));
        // A drained queue makes room for another socket's.
        queues[0].clear();
        assert!(queues.last_mut().unwrap().push(from(2), &big));
        drop(queues);
        assert_eq!(queued(&gate).0, 0, "dropped queues release everything");
    }

    #[test]
    fn clear_and_drop_release_everything() {
        let gate = test_gate(Limits::default());
        let mut q = RecvQueue::new(gate.clone());
        q.push(from(3), b"one");
        q.push(from(3), b"two");
        q.clear();
        assert!(q.is_empty() && q.pop().is_none());
        assert_eq!(queued(&gate), (0, 0));
        q.push(from(3), b"three");
        assert_ne!(queued(&gate).0, 0);
        drop(q);
        assert_eq!(queued(&gate), (0, 0));
    }
}
