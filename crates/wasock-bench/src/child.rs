//! A native process of the harness (the native build of the bench guest as a peer or as one of
//! two guests), whose stdout lines can be awaited while it runs. Dropped unfinished, it is killed.

use anyhow::{Context, Result, anyhow, bail};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running child process.
pub(crate) struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    /// Its stdout, line by line, from a reader thread; disconnects at end of output.
    lines: mpsc::Receiver<String>,
    /// Lines taken by [`Child::wait_line`], kept for [`Child::finish`].
    seen: Vec<String>,
    what: String,
}

impl Child {
    /// Starts `program args`, stdin piped (see [`Child::close_stdin`]), stdout and stderr piped.
    pub(crate) fn spawn(program: &Path, args: &[String]) -> Result<Child> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout pipe"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("child-stdout".to_owned())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .context("spawning a reader thread")?;
        Ok(Child {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            what: format!("native {args:?}"),
        })
    }

    /// The child's stdin, until [`Child::close_stdin`].
    pub(crate) fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.stdin.as_mut()
    }

    /// Closes the child's stdin (the `hold-*` peers then let go of their connections).
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it; fails at end
    /// of output or after `timeout`.
    pub(crate) fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => {
                    anyhow!("{} printed no `{prefix}` within {timeout:?}", self.what)
                }
                mpsc::RecvTimeoutError::Disconnected => {
                    anyhow!("{} ended before printing `{prefix}`", self.what)
                }
            })?;
            let rest = line.strip_prefix(prefix).map(|r| r.trim().to_owned());
            self.seen.push(line);
            if let Some(rest) = rest {
                return Ok(rest);
            }
        }
    }

    /// Closes stdin and waits for the exit (killing the child after `timeout`); fails unless it
    /// exits with 0. Returns all of its stdout.
    pub(crate) fn finish(mut self, timeout: Duration) -> Result<String> {
        self.close_stdin();
        let t0 = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if t0.elapsed() > timeout {
                bail!("{} ran longer than {timeout:?} and was killed", self.what);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        if !status.success() {
            bail!("{} exited with {status}: {}", self.what, stderr.trim());
        }
        // The reader thread ends at end of output, which the exit brings.
        let mut out = std::mem::take(&mut self.seen);
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            out.push(line);
        }
        Ok(out.join("\n"))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
