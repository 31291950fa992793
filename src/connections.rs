//! Connection limits against slow clients (slowloris): a cap on open
//! connections and an idle timeout on each one. (The header-read timeout is
//! hyper's; it is set where the server is built.)
//!
//! [`Guard`] is an acceptor: it admits a connection only while fewer than
//! `server.max_connections` are open (others are closed at once), and wraps
//! it so that a connection with no bytes moving either way for
//! `server.keep_alive_timeout` fails with `TimedOut`, which closes it.

use std::future::{Future, Ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::ServerConfig;

#[derive(Clone)]
pub struct Guard {
    permits: Arc<Semaphore>,
    idle: Duration,
}

impl Guard {
    pub fn new(server: &ServerConfig) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(server.max_connections)),
            idle: server.keep_alive_timeout.0,
        }
    }
}

impl<S> axum_server::accept::Accept<TcpStream, S> for Guard {
    type Stream = Guarded;
    type Service = S;
    type Future = Ready<io::Result<(Guarded, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let _ = stream.set_nodelay(true);
                Ok((Guarded::new(stream, permit, self.idle), service))
            }
            Err(_) => Err(io::Error::other("connection limit reached")),
        })
    }
}

/// A connection that holds its slot until dropped and times out when idle.
pub struct Guarded {
    inner: TcpStream,
    idle: Duration,
    last_activity: Instant,
    /// Fires at `last_activity + idle` at the latest; re-armed lazily.
    timer: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Guarded {
    fn new(inner: TcpStream, slot: OwnedSemaphorePermit, idle: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            idle,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            _slot: slot,
        }
    }

    /// Called when the socket is not ready: `Pending`, or `TimedOut` once
    /// the connection has been idle too long (the timer registers the waker).
    fn pending_or_idle<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = self.last_activity + self.idle;
            if Instant::now() >= due {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "idle connection")));
            }
            self.timer.as_mut().reset(due);
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_activity = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.pending_or_idle(cx),
            err => err,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                this.last_activity = Instant::now();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.pending_or_idle(cx),
            err => err,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.last_activity = Instant::now();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.pending_or_idle(cx),
            err => err,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
