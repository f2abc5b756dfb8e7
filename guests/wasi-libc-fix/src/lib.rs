//! One fix to the wasi-libc this toolchain (Rust 1.95) links into `wasm32-wasip2` programs: its
//! `fcntl(fd, F_SETFL, flags)` refuses every socket with `EINVAL`, so mio (tokio's reactor),
//! which makes each accepted socket non-blocking that way, cannot accept (wasi-libc issue 536,
//! fixed in later releases). The same wasi-libc sets a socket's mode through
//! `ioctl(fd, FIONBIO, &on)`; this `fcntl` falls back to it where wasi-libc's refuses a socket.
//!
//! A program that depends on this crate links it in front of wasi-libc's `fcntl` with
//! `--wrap=fcntl` (from its build script: `cargo:rustc-link-arg-bins=--wrap=fcntl` when the
//! target OS is `wasi`) and names the crate once (`use wasi_libc_fix as _;`) so that it is
//! linked: every call, from std, mio or tokio, then reaches [`__wrap_fcntl`], and
//! `__real_fcntl` is wasi-libc's. On other targets the crate is empty.

#![cfg(target_os = "wasi")]

use std::ffi::c_int;

const F_SETFL: c_int = 4;
const O_NONBLOCK: c_int = 0x4;
const FIONBIO: c_int = 2;

unsafe extern "C" {
    fn __real_fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn ioctl(fd: c_int, request: c_int, ...) -> c_int;
}

/// `fcntl`, as wasi-libc's, but `F_SETFL` on a socket sets its blocking mode.
///
/// # Safety
/// As C's `fcntl`. On wasm32 a C-variadic function receives its variadic arguments as a pointer
/// to them: `args` points at the command's one `int` argument, or is unused when it has none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_fcntl(fd: c_int, cmd: c_int, args: *const c_int) -> c_int {
    if cmd != F_SETFL {
        // Every other command takes at most one `int`, read by wasi-libc only where it has one.
        let arg = if args.is_null() { 0 } else { unsafe { *args } };
        return unsafe { __real_fcntl(fd, cmd, arg) };
    }
    // SAFETY: `F_SETFL` takes one `int`.
    let flags = unsafe { *args };
    let done = unsafe { __real_fcntl(fd, cmd, flags) };
    if done == 0 {
        return 0;
    }
    let refused = std::io::Error::last_os_error();
    let on: c_int = c_int::from(flags & O_NONBLOCK != 0);
    // SAFETY: `FIONBIO` reads one `int` through the pointer, which outlives the call.
    if unsafe { ioctl(fd, FIONBIO, &on as *const c_int) } == 0 {
        return 0;
    }
    // Not a socket either: wasi-libc's own answer stands.
    if let Some(errno) = refused.raw_os_error() {
        unsafe { *errno_location() = errno };
    }
    -1
}

unsafe extern "C" {
    #[link_name = "__errno_location"]
    fn errno_location() -> *mut c_int;
}
