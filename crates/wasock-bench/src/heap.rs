//! Memory figures: the live heap of this process, counted by its global allocator, and the
//! resident anonymous memory of a process.
//!
//! The heap counter only moves between [`start`] and [`stop`], so the rest of the harness pays
//! one relaxed load per allocation. In between it changes by exactly the bytes allocated minus
//! the bytes freed, by every thread, whenever the freed blocks were allocated: the growth of the
//! live heap over that interval. Bytes are what the callers asked for (`Layout::size`); the
//! allocator's own per-block overhead is not included.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

/// The system allocator, counting while [`ON`].
struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count(delta: i64) {
    if ON.load(Relaxed) {
        LIVE.fetch_add(delta, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// counting only reads the layouts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Starts counting the live heap's growth from 0.
pub(crate) fn start() {
    LIVE.store(0, Relaxed);
    ON.store(true, Relaxed);
}

/// Bytes allocated minus bytes freed since [`start`].
pub(crate) fn growth() -> i64 {
    LIVE.load(Relaxed)
}

/// Stops counting.
pub(crate) fn stop() {
    ON.store(false, Relaxed);
}

/// Returns the free memory of this process's heap to the system (`malloc_trim(0)`), so that
/// later growth shows in its resident memory.
pub(crate) fn trim() {
    // SAFETY: `malloc_trim` has no preconditions.
    unsafe { libc::malloc_trim(0) };
}

/// Resident anonymous memory (`RssAnon`) of process `pid` (this process for `None`), in bytes:
/// heap, stacks, wasm linear memories; not the program's file-backed pages.
pub(crate) fn rss_anon(pid: Option<u32>) -> Option<u64> {
    status_bytes(pid, "RssAnon")
}

/// A `kB` line of `/proc/PID/status` (this process for `None`), in bytes.
pub(crate) fn status_bytes(pid: Option<u32>, key: &str) -> Option<u64> {
    let path = pid.map_or_else(
        || "/proc/self/status".to_owned(),
        |p| format!("/proc/{p}/status"),
    );
    let status = std::fs::read_to_string(path).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
