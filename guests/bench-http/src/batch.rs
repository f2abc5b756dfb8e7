//! A minimal single-threaded executor over `wasi:io/poll` that polls in rounds: it runs the tasks
//! that were ready when the round began, then calls `poll` once over every pollable a task waits
//! on — without blocking (a zero-length timer in the list) while tasks are ready, blocking when
//! none is. One `poll` per round keeps a busy task from starving the waiting ones, and costs
//! O(waiting tasks) per round rather than per task run. (wstd's reactor checks every pollable
//! after each task run while other tasks are ready, so its cost per request grows with the
//! number of connections.)

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use wasip2::clocks::monotonic_clock::subscribe_duration;
use wasip2::io::poll::{Pollable, poll};

type Task = Pin<Box<dyn Future<Output = ()>>>;
/// A pollable some task waits on, and that task's waiter.
type Waiting = (Rc<Pollable>, Rc<Waiter>);

/// A waiter on one pollable: set when `poll` said the pollable is ready.
struct Waiter {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

#[derive(Default)]
struct Executor {
    /// Tasks by id; `None` once finished.
    tasks: RefCell<Vec<Option<Task>>>,
    free: RefCell<Vec<usize>>,
    /// Ids of tasks to run, each at most once (`queued`).
    ready: RefCell<VecDeque<usize>>,
    queued: RefCell<Vec<bool>>,
    /// Pollables some task waits on, by slot; a [`Wait`] empties its slot when it fires or drops
    /// (before the pollable's stream can be dropped).
    waits: RefCell<Vec<Option<Waiting>>>,
    free_waits: RefCell<Vec<usize>>,
}

thread_local! {
    static EXECUTOR: Executor = Executor::default();
}

struct TaskWaker(usize);

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        EXECUTOR.with(|e| e.schedule(self.0));
    }
}

impl Executor {
    fn schedule(&self, id: usize) {
        let mut queued = self.queued.borrow_mut();
        if let Some(q) = queued.get_mut(id)
            && !*q
        {
            *q = true;
            self.ready.borrow_mut().push_back(id);
        }
    }

    fn insert(&self, task: Task) -> usize {
        let id = match self.free.borrow_mut().pop() {
            Some(id) => {
                self.tasks.borrow_mut()[id] = Some(task);
                id
            }
            None => {
                let mut tasks = self.tasks.borrow_mut();
                tasks.push(Some(task));
                self.queued.borrow_mut().push(false);
                tasks.len() - 1
            }
        };
        self.schedule(id);
        id
    }

    /// Runs task `id` once; true when it finished.
    fn run(&self, id: usize) -> bool {
        self.queued.borrow_mut()[id] = false;
        // Taken out while it runs, so that it may spawn (which borrows `tasks`).
        let Some(mut task) = self.tasks.borrow_mut()[id].take() else {
            return false;
        };
        let waker = Waker::from(Arc::new(TaskWaker(id)));
        let done = task
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        if done {
            self.free.borrow_mut().push(id);
        } else {
            self.tasks.borrow_mut()[id] = Some(task);
        }
        done
    }

    /// One `poll` over every waiter (blocking unless `now` is given, a pollable that is already
    /// ready); fires the ready ones. False if none waits.
    fn poll_once(&self, now: Option<&Pollable>) -> bool {
        let mut fired = Vec::new();
        {
            let mut waits = self.waits.borrow_mut();
            let mut slots = Vec::new();
            let mut targets: Vec<&Pollable> = Vec::new();
            for (slot, entry) in waits.iter().enumerate() {
                if let Some((pollable, _)) = entry {
                    slots.push(slot);
                    targets.push(pollable);
                }
            }
            if targets.is_empty() {
                return false;
            }
            targets.extend(now);
            let ready = poll(&targets);
            drop(targets);
            let mut free = self.free_waits.borrow_mut();
            for i in ready {
                // The index past the waiters is `now`'s.
                let Some(&slot) = slots.get(i as usize) else {
                    continue;
                };
                if let Some((_, waiter)) = waits[slot].take() {
                    free.push(slot);
                    fired.push(waiter);
                }
            }
        }
        for waiter in fired {
            waiter.fired.set(true);
            if let Some(w) = waiter.waker.borrow_mut().take() {
                w.wake();
            }
        }
        true
    }

    fn register(&self, pollable: Rc<Pollable>, waiter: Rc<Waiter>) -> usize {
        let mut waits = self.waits.borrow_mut();
        match self.free_waits.borrow_mut().pop() {
            Some(slot) => {
                waits[slot] = Some((pollable, waiter));
                slot
            }
            None => {
                waits.push(Some((pollable, waiter)));
                waits.len() - 1
            }
        }
    }

    /// Empties `slot` if it still holds `waiter`.
    fn unregister(&self, slot: usize, waiter: &Rc<Waiter>) {
        let mut waits = self.waits.borrow_mut();
        if let Some(Some((_, w))) = waits.get(slot)
            && Rc::ptr_eq(w, waiter)
        {
            waits[slot] = None;
            self.free_waits.borrow_mut().push(slot);
        }
    }
}

/// Runs `root` and every task it spawns until `root` finishes.
pub(crate) fn block_on(root: impl Future<Output = ()> + 'static) {
    let done = Rc::new(Cell::new(false));
    let flag = done.clone();
    EXECUTOR.with(|e| {
        e.insert(Box::pin(async move {
            root.await;
            flag.set(true);
        }))
    });
    // Already ready: makes a `poll` return at once while tasks are waiting to run.
    let now = subscribe_duration(0);
    // Bounded by `root`: it ends by its own deadline, and a loop with nothing to run nor to wait
    // on ends.
    while !done.get() {
        let round = EXECUTOR.with(|e| e.ready.borrow().len());
        for _ in 0..round {
            let Some(id) = EXECUTOR.with(|e| e.ready.borrow_mut().pop_front()) else {
                break;
            };
            EXECUTOR.with(|e| e.run(id));
        }
        if done.get() {
            break;
        }
        let busy = EXECUTOR.with(|e| !e.ready.borrow().is_empty());
        let polled = EXECUTOR.with(|e| e.poll_once(busy.then_some(&now)));
        if !polled && !busy {
            return;
        }
    }
}

/// Runs `fut` as a detached task.
pub(crate) fn spawn(fut: impl Future<Output = ()> + 'static) {
    EXECUTOR.with(|e| e.insert(Box::pin(fut)));
}

/// Ready once `poll` has reported `pollable` ready (after this future was first polled).
pub(crate) struct Wait {
    pollable: Rc<Pollable>,
    /// The waiter and its slot, from the first poll on.
    waiter: Option<(Rc<Waiter>, usize)>,
}

impl Wait {
    pub(crate) fn new(pollable: Rc<Pollable>) -> Wait {
        Wait {
            pollable,
            waiter: None,
        }
    }
}

impl Future for Wait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.waiter {
            Some((w, _)) if w.fired.get() => Poll::Ready(()),
            Some((w, _)) => {
                *w.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
            None => {
                let w = Rc::new(Waiter {
                    fired: Cell::new(false),
                    waker: RefCell::new(Some(cx.waker().clone())),
                });
                let slot = EXECUTOR.with(|e| e.register(self.pollable.clone(), w.clone()));
                self.waiter = Some((w, slot));
                Poll::Pending
            }
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some((w, slot)) = &self.waiter
            && !w.fired.get()
        {
            EXECUTOR.with(|e| e.unregister(*slot, w));
        }
    }
}
