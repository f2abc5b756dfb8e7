//! The one place where failures become the spec's `error-code`s (or traps).
//!
//! [`ErrorCode`] is version-neutral: the union of `wasi:sockets@0.2`'s and `@0.3`'s codes, so one
//! core serves both; each version's glue in `wit/` maps it to its own `error-code`.
//! [`from_errno`] is the OS → WIT table; read it side by side with the "Typical errors" lists of
//! `wit/sockets.wit`.

use crate::backend::ResolveError;
use std::fmt;
use std::io;

/// A socket failure as the WIT names it, in either version: 0.2's codes, 0.3's
/// `connection-broken`, and an OS error no code fits (0.2 `unknown`, 0.3 `other(some(message))`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0.2 `unknown`; 0.3 `other(none)`.
    Unknown,
    /// `access-denied`.
    AccessDenied,
    /// `not-supported`.
    NotSupported,
    /// `invalid-argument`.
    InvalidArgument,
    /// `out-of-memory`.
    OutOfMemory,
    /// `timeout`.
    Timeout,
    /// 0.2 `concurrency-conflict` (0.3 has no start/finish pairs).
    ConcurrencyConflict,
    /// 0.2 `not-in-progress`.
    NotInProgress,
    /// 0.2 `would-block`; 0.3 waits instead.
    WouldBlock,
    /// `invalid-state`.
    InvalidState,
    /// 0.2 `new-socket-limit`; 0.3 `other(some("socket limit"))`.
    NewSocketLimit,
    /// `address-not-bindable`.
    AddressNotBindable,
    /// `address-in-use`.
    AddressInUse,
    /// `remote-unreachable`.
    RemoteUnreachable,
    /// `connection-refused`.
    ConnectionRefused,
    /// 0.3 `connection-broken` (EPIPE); 0.2 `connection-reset`, as it lists EPIPE there.
    ConnectionBroken,
    /// `connection-reset`.
    ConnectionReset,
    /// `connection-aborted`.
    ConnectionAborted,
    /// `datagram-too-large`.
    DatagramTooLarge,
    /// `name-unresolvable` (0.3: `ip-name-lookup`'s own code).
    NameUnresolvable,
    /// `temporary-resolver-failure`.
    TemporaryResolverFailure,
    /// `permanent-resolver-failure`.
    PermanentResolverFailure,
    /// An OS error (errno) no code fits: 0.2 `unknown`, 0.3 `other(some(its message))`.
    Os(i32),
}

impl ErrorCode {
    /// The OS's message for [`ErrorCode::Os`], the text 0.3's `other(some(..))` carries; a
    /// short name of the limit for the codes 0.3 lacks.
    pub fn message(self) -> Option<String> {
        match self {
            ErrorCode::Os(errno) => Some(io::Error::from_raw_os_error(errno).to_string()),
            ErrorCode::NewSocketLimit => Some("socket limit".to_string()),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(m) => write!(f, "{self:?}: {m}"),
            None => write!(f, "{self:?}"),
        }
    }
}

impl std::error::Error for ErrorCode {}

/// The result of a socket operation as the guest sees it.
pub type SocketResult<T> = Result<T, SocketError>;

/// A failed socket call: either a spec error code returned to the guest, or a trap.
pub enum SocketError {
    /// Returned to the guest as `error(code)`.
    Code(ErrorCode),
    /// Ends the guest instance (a misuse the WIT says must trap, or a host bookkeeping fault).
    Trap(wasmtime::Error),
}

impl SocketError {
    /// A trap with a message naming the broken rule.
    pub fn trap(msg: impl Into<String>) -> Self {
        SocketError::Trap(wasmtime::Error::msg(msg.into()))
    }
}

impl fmt::Debug for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::Code(c) => write!(f, "error-code {c:?}"),
            SocketError::Trap(e) => write!(f, "trap: {e:#}"),
        }
    }
}

impl From<ErrorCode> for SocketError {
    fn from(code: ErrorCode) -> Self {
        SocketError::Code(code)
    }
}

impl From<io::Error> for SocketError {
    fn from(err: io::Error) -> Self {
        SocketError::Code(from_io(&err))
    }
}

impl From<wasmtime::component::ResourceTableError> for SocketError {
    fn from(err: wasmtime::component::ResourceTableError) -> Self {
        SocketError::Trap(err.into())
    }
}

impl From<wasmtime::Error> for SocketError {
    fn from(err: wasmtime::Error) -> Self {
        SocketError::Trap(err)
    }
}

/// Maps an OS error to the spec's error code.
pub(crate) fn from_io(err: &io::Error) -> ErrorCode {
    match err.raw_os_error() {
        Some(errno) => from_errno(errno),
        None => match err.kind() {
            io::ErrorKind::WouldBlock => ErrorCode::WouldBlock,
            io::ErrorKind::TimedOut => ErrorCode::Timeout,
            io::ErrorKind::InvalidInput => ErrorCode::InvalidArgument,
            io::ErrorKind::PermissionDenied => ErrorCode::AccessDenied,
            io::ErrorKind::OutOfMemory => ErrorCode::OutOfMemory,
            io::ErrorKind::Unsupported => ErrorCode::NotSupported,
            io::ErrorKind::ConnectionRefused => ErrorCode::ConnectionRefused,
            io::ErrorKind::ConnectionReset => ErrorCode::ConnectionReset,
            io::ErrorKind::ConnectionAborted => ErrorCode::ConnectionAborted,
            io::ErrorKind::AddrInUse => ErrorCode::AddressInUse,
            io::ErrorKind::AddrNotAvailable => ErrorCode::AddressNotBindable,
            _ => ErrorCode::Unknown,
        },
    }
}

/// The errno → `error-code` table (Linux errno names as the WIT lists them).
pub(crate) fn from_errno(errno: i32) -> ErrorCode {
    match errno {
        libc::EACCES | libc::EPERM => ErrorCode::AccessDenied,
        libc::EOPNOTSUPP | libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT | libc::ENOPROTOOPT => {
            ErrorCode::NotSupported
        }
        libc::EINVAL | libc::EFAULT | libc::EDESTADDRREQ => ErrorCode::InvalidArgument,
        libc::ENOMEM | libc::ENOBUFS => ErrorCode::OutOfMemory,
        libc::ETIMEDOUT => ErrorCode::Timeout,
        libc::EALREADY => ErrorCode::ConcurrencyConflict,
        libc::EWOULDBLOCK | libc::EINPROGRESS | libc::EINTR => ErrorCode::WouldBlock,
        libc::EISCONN | libc::ENOTCONN => ErrorCode::InvalidState,
        libc::EMFILE | libc::ENFILE => ErrorCode::NewSocketLimit,
        libc::EADDRNOTAVAIL => ErrorCode::AddressNotBindable,
        libc::EADDRINUSE => ErrorCode::AddressInUse,
        libc::EHOSTUNREACH
        | libc::EHOSTDOWN
        | libc::ENETUNREACH
        | libc::ENETDOWN
        | libc::ENONET => ErrorCode::RemoteUnreachable,
        libc::ECONNREFUSED => ErrorCode::ConnectionRefused,
        libc::ECONNRESET => ErrorCode::ConnectionReset,
        libc::EPIPE => ErrorCode::ConnectionBroken,
        // accept(2): EPROTO is a pending network error on the connection being accepted.
        libc::ECONNABORTED | libc::EPROTO => ErrorCode::ConnectionAborted,
        libc::EMSGSIZE => ErrorCode::DatagramTooLarge,
        _ => ErrorCode::Os(errno),
    }
}

/// `create-*-socket` errors: an unsupported family is `not-supported`, fd exhaustion
/// `new-socket-limit`.
pub(crate) fn create_error(e: &io::Error) -> ErrorCode {
    match from_io(e) {
        ErrorCode::InvalidArgument => ErrorCode::NotSupported,
        code => code,
    }
}

/// `connect` errors: on Linux `EADDRNOTAVAIL` there means the implicit bind found no free
/// ephemeral port, which the WIT calls `address-in-use`.
pub(crate) fn connect_error(e: &io::Error) -> ErrorCode {
    match e.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => ErrorCode::AddressInUse,
        // An IPv6 scope id naming no interface: nothing routes there.
        Some(libc::ENODEV) => ErrorCode::RemoteUnreachable,
        _ => from_io(e),
    }
}

/// `start-bind` errors: an IPv6 scope id naming no interface (`ENODEV`) is an address the
/// network cannot bind, `address-not-bindable`, as `EADDRNOTAVAIL` is.
pub(crate) fn bind_error(e: &io::Error) -> ErrorCode {
    match e.raw_os_error() {
        Some(libc::ENODEV) => ErrorCode::AddressNotBindable,
        _ => from_io(e),
    }
}

/// Maps a `getaddrinfo` failure (`EAI_*`) to the resolver errors `resolve-next-address` lists
/// (a failure to allocate may pass: temporary).
pub(crate) fn from_lookup(kind: dns_lookup::LookupErrorKind) -> ResolveError {
    use dns_lookup::LookupErrorKind as K;
    match kind {
        K::NoName | K::NoData | K::Family => ResolveError::NoSuchName,
        K::Again | K::Memory => ResolveError::Temporary,
        _ => ResolveError::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_table_matches_wit() {
        let cases = [
            (libc::EADDRINUSE, ErrorCode::AddressInUse),
            (libc::EADDRNOTAVAIL, ErrorCode::AddressNotBindable),
            (libc::ECONNREFUSED, ErrorCode::ConnectionRefused),
            (libc::ECONNRESET, ErrorCode::ConnectionReset),
            (libc::ECONNABORTED, ErrorCode::ConnectionAborted),
            (libc::EPROTO, ErrorCode::ConnectionAborted),
            (libc::ETIMEDOUT, ErrorCode::Timeout),
            (libc::EHOSTUNREACH, ErrorCode::RemoteUnreachable),
            (libc::ENETUNREACH, ErrorCode::RemoteUnreachable),
            (libc::EMFILE, ErrorCode::NewSocketLimit),
            (libc::ENFILE, ErrorCode::NewSocketLimit),
            (libc::EMSGSIZE, ErrorCode::DatagramTooLarge),
            (libc::EAGAIN, ErrorCode::WouldBlock),
            (libc::EAFNOSUPPORT, ErrorCode::NotSupported),
            (libc::EPIPE, ErrorCode::ConnectionBroken),
            (libc::ELOOP, ErrorCode::Os(libc::ELOOP)),
        ];
        for (errno, code) in cases {
            assert_eq!(from_errno(errno), code, "errno {errno}");
            assert_eq!(from_io(&io::Error::from_raw_os_error(errno)), code);
        }
    }
}
