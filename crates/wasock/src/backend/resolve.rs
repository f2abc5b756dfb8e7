//! The resolver seam: how a host name becomes addresses once the policy allowed the lookup.
//!
//! [`SystemResolver`] is the default: the hosts file in-process, then the system resolver
//! (`getaddrinfo` on tokio's blocking pool). An embedder supplies another with
//! [`WasockCtxBuilder::resolver`](crate::WasockCtxBuilder::resolver), for example to answer
//! `.internal` names or to pin DNS; policy, limits, timeouts, audit and name-bound grants
//! apply to its answers exactly as to the system's.

use crate::error::ErrorCode;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// A lookup under way.
pub type ResolveFuture = Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, ResolveError>> + Send>>;

/// Why a name has no addresses, as `resolve-next-address` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// The name does not exist (`name-unresolvable`).
    NoSuchName,
    /// A failure that may pass; the guest may retry (`temporary-resolver-failure`).
    Temporary,
    /// A failure that will not pass (`permanent-resolver-failure`).
    Permanent,
}

impl From<ResolveError> for ErrorCode {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::NoSuchName => ErrorCode::NameUnresolvable,
            ResolveError::Temporary => ErrorCode::TemporaryResolverFailure,
            ResolveError::Permanent => ErrorCode::PermanentResolverFailure,
        }
    }
}

/// Turns host names into addresses, for every instance that uses it.
///
/// Names come IDNA-encoded, lower-cased, without a trailing dot, and only once the policy
/// allowed them; IP literals and the policy's fixed answers (`name->addr`) never get here.
/// wasock removes IPv4-mapped forms and duplicates from the answer, keeping its order; an
/// empty answer is `name-unresolvable`.
pub trait Resolver: Send + Sync + 'static {
    /// An answer known at once, without a lookup (a table, a hosts file); `None` to look up.
    fn resolve_now(&self, _name: &str) -> Option<Vec<IpAddr>> {
        None
    }

    /// Looks `name` up; the instance's lookup timeout and concurrency limit bound it.
    fn resolve(&self, name: &str) -> ResolveFuture;
}

/// The OS's resolver: the hosts file (and `localhost`, RFC 6761) in-process, then
/// `getaddrinfo` on tokio's blocking pool.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve_now(&self, name: &str) -> Option<Vec<IpAddr>> {
        super::os::hosts::lookup(name)
    }

    fn resolve(&self, name: &str) -> ResolveFuture {
        Box::pin(super::os::resolve(name.to_string()))
    }
}
