//! The WIT's rules for socket option values, shared by TCP and UDP: 0 is `invalid-argument`,
//! anything else is clamped to what the OS takes (so reading back may differ).

use crate::backend::Opts;
use crate::error::ErrorCode;
use crate::error::SocketResult;
use std::time::Duration;

/// `receive-buffer-size`.
pub(crate) fn recv_buffer(opts: &Opts<'_>) -> SocketResult<u64> {
    Ok(opts.recv_buffer()? as u64)
}

/// `set-receive-buffer-size`: 0 is `invalid-argument`.
pub(crate) fn set_recv_buffer(opts: &Opts<'_>, n: u64) -> SocketResult<()> {
    Ok(opts.set_recv_buffer(buffer_size(n)?)?)
}

/// `send-buffer-size`.
pub(crate) fn send_buffer(opts: &Opts<'_>) -> SocketResult<u64> {
    Ok(opts.send_buffer()? as u64)
}

/// `set-send-buffer-size`: 0 is `invalid-argument`.
pub(crate) fn set_send_buffer(opts: &Opts<'_>, n: u64) -> SocketResult<()> {
    Ok(opts.set_send_buffer(buffer_size(n)?)?)
}

/// `hop-limit` / `unicast-hop-limit`.
pub(crate) fn hop_limit(opts: &Opts<'_>) -> SocketResult<u8> {
    Ok(opts.hop_limit()?)
}

/// `set-hop-limit` / `set-unicast-hop-limit`: 0 is `invalid-argument`.
pub(crate) fn set_hop_limit(opts: &Opts<'_>, v: u8) -> SocketResult<()> {
    if v == 0 {
        return Err(ErrorCode::InvalidArgument.into());
    }
    Ok(opts.set_hop_limit(v)?)
}

/// A duration as the WIT's nanoseconds.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Keep-alive times: 0 is `invalid-argument`; else whole seconds, rounded up, in Linux's 1..=32767.
pub(crate) fn keepalive_secs(ns: u64) -> Result<Duration, ErrorCode> {
    if ns == 0 {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(Duration::from_secs(
        ns.div_ceil(1_000_000_000).clamp(1, 32_767),
    ))
}

/// Keep-alive probe count: 0 is `invalid-argument`; else clamped to Linux's 1..=127.
pub(crate) fn keepalive_count(n: u32) -> Result<u32, ErrorCode> {
    if n == 0 {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(n.min(127))
}

/// Buffer sizes: 0 is `invalid-argument`; the rest clamped to what `setsockopt` takes.
fn buffer_size(n: u64) -> Result<usize, ErrorCode> {
    if n == 0 {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(n.min(i32::MAX as u64 / 2) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_invalid_argument() {
        assert_eq!(keepalive_secs(0), Err(ErrorCode::InvalidArgument));
        assert_eq!(keepalive_count(0), Err(ErrorCode::InvalidArgument));
        assert_eq!(buffer_size(0), Err(ErrorCode::InvalidArgument));
    }

    #[test]
    fn values_are_clamped() {
        assert_eq!(keepalive_secs(1).unwrap(), Duration::from_secs(1));
        assert_eq!(
            keepalive_secs(1_500_000_000).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(
            keepalive_secs(u64::MAX).unwrap(),
            Duration::from_secs(32_767)
        );
        assert_eq!(keepalive_count(u32::MAX).unwrap(), 127);
        assert_eq!(buffer_size(u64::MAX).unwrap(), i32::MAX as usize / 2);
    }
}
