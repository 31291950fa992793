//! Listeners: the public HTTPS (or HTTP) port and the admin Unix socket, with
//! graceful shutdown on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use tokio::task::JoinHandle;

use crate::security::alerts::{run_outbox, Mailer};
use crate::security::cores::Cores;

use crate::config::{Config, TlsMode};
use crate::http::state::AppState;
use crate::security::tls;

pub const ADMIN_SOCKET: &str = "admin.sock";

/// The async runtime: one worker thread per core, each kept on a core of
/// its own when `pin_workers` (Linux).
///
/// The password hashing threads run at `SCHED_IDLE` on every core nothing
/// else wants, so no core ever goes idle, and the kernel pulls queued
/// threads over to another core mainly when one does. Unpinned, both
/// workers were seen waiting on one core for 1–4 ms at a time while the
/// other ran the load generator and a hash (`perf sched`); pinned, the p99
/// of `GET /portfolio` fell from about 2.1 ms to 0.55 ms alone and from
/// about 3.2 ms to 1.1–2.2 ms during a login storm (README, Benchmarks).
pub fn runtime(pin_workers: bool) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(cores) = pin_workers.then(WorkerCores::of_this_process).flatten() {
        let cores = std::sync::Arc::new(cores);
        // Only worker threads park; the blocking pool's threads stay free.
        builder.on_thread_park(move || cores.pin_this_worker());
    }
    builder.build()
}

/// The cores this process may use, handed to the async workers in turn.
struct WorkerCores {
    cores: Cores,
    next: std::sync::atomic::AtomicUsize,
}

impl WorkerCores {
    fn of_this_process() -> Option<Self> {
        Cores::of_this_process().map(|cores| Self {
            cores,
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Keeps the calling worker on the next core; once per thread (the
    /// first time it parks).
    fn pin_this_worker(&self) {
        thread_local! {
            static PINNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if PINNED.with(|p| p.replace(true)) {
            return;
        }
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.cores.pin_this_thread(turn, "an async worker");
    }
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    handle: Handle,
    admin_shutdown: tokio::sync::watch::Sender<bool>,
    public: JoinHandle<std::io::Result<()>>,
    admin: JoinHandle<()>,
    socket_path: PathBuf,
    background: Background,
}

/// Opens the store, binds both listeners and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let tls_mode = config.server.tls;
    let bind = config.server.bind;
    let data_dir = config.data_dir().to_path_buf();
    let given_files = (config.server.tls_cert.clone(), config.server.tls_key.clone());
    let guard = crate::connections::Guard::new(&config.server);
    let header_read_timeout = config.server.header_read_timeout.0;
    // First, so a refused start (an unbuilt backend, a database in use)
    // leaves nothing behind, not even TLS material.
    let state = AppState::open(config).await?;
    let tls_files = match tls_mode {
        TlsMode::Off => None,
        TlsMode::SelfSigned => Some(tls::ensure_self_signed(&data_dir)?),
        TlsMode::Files => Some(given_files),
    };

    let listener = std::net::TcpListener::bind(bind).with_context(|| format!("cannot bind {bind}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = Handle::new();
    let service = crate::http::router::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // Slow clients: the TLS handshake and then each request head must
    // arrive within the header timeout (hyper's timer also bounds the wait
    // for the next request on an idle keep-alive connection), and `guard`
    // caps connections and closes idle ones.
    let slow_clients = |builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>| {
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_read_timeout);
    };
    let public = match tls_files {
        None => {
            let mut server = axum_server::from_tcp(listener).acceptor(guard).handle(handle.clone());
            slow_clients(server.http_builder());
            tokio::spawn(async move { server.serve(service).await })
        }
        Some((cert, key)) => {
            let rustls = RustlsConfig::from_config(tls::server_config(&cert, &key)?);
            spawn_reloader(rustls.clone(), cert.clone(), key.clone());
            let mut server = axum_server::from_tcp_rustls(listener, rustls)
                .map(|tls| tls.handshake_timeout(header_read_timeout).acceptor(guard))
                .handle(handle.clone());
            slow_clients(server.http_builder());
            tokio::spawn(async move { server.serve(service).await })
        }
    };

    // The admin socket: only reachable by this machine's users who can read
    // the (0700) data dir, and the socket itself is 0600.
    let socket_path = data_dir.join(ADMIN_SOCKET);
    let _ = std::fs::remove_file(&socket_path); // stale: we hold the database lock
    let unix = tokio::net::UnixListener::bind(&socket_path)
        .with_context(|| format!("cannot bind admin socket {}", socket_path.display()))?;
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o600))?;
    let (admin_shutdown, mut rx) = tokio::sync::watch::channel(false);
    let admin_router = crate::http::admin::router(state.clone());
    let admin = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(unix, admin_router).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "admin socket failed");
        }
    });

    crate::market::feeds::load_bundled(&state.store, &state.market.book).await?;
    retention(&state).await;
    let background = spawn_background(&state)?;

    let scheme = if tls_mode == TlsMode::Off { "http" } else { "https" };
    tracing::info!(%addr, "fortfolio listening on {scheme}://{addr}/api/v1");
    Ok(Running {
        addr,
        state,
        handle,
        admin_shutdown,
        public,
        admin,
        socket_path,
        background,
    })
}

/// Background work: the alert outbox (with SMTP configured) and the daily
/// log and event retention. They stop when `true` is sent.
fn spawn_background(state: &AppState) -> anyhow::Result<Background> {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(wakeup) = &state.mail_wakeup {
        let mailer = Mailer::new(&state.config.smtp, state.accounts.totp_box.clone())?;
        tasks.push(tokio::spawn(run_outbox(
            state.store.clone(),
            mailer,
            wakeup.clone(),
            rx.clone(),
        )));
    }
    if !state.config.market.news_feeds.is_empty() {
        tasks.push(tokio::spawn(crate::market::feeds::run_fetcher(
            crate::market::feeds::Fetcher {
                feeds: state.config.market.news_feeds.clone(),
                refresh: state.config.market.news_refresh.0,
                store: state.store.clone(),
                index: crate::market::feeds::symbol_index(&state.market.book),
                holder: state.instance_id.clone(),
            },
            rx.clone(),
        )));
    }
    if state.config.is_scaled() {
        tasks.push(tokio::spawn(sync_imports(state.clone(), rx.clone())));
    }
    if let (true, Some(store)) = (state.config.backup.enabled(), &state.embedded) {
        let recipient = crate::backup::seal::recipient(&state.config.backup.recipient)
            .map_err(|e| anyhow::anyhow!("invalid config key backup.recipient: {e}"))?;
        let scheduled = crate::backup::schedule::Scheduled {
            recipient,
            config: state.config.backup.clone(),
            store: store.clone(),
            data_dir: state.config.data_dir().to_path_buf(),
            events: state.events.clone(),
            last: state.last_backup.clone(),
        };
        tasks.push(tokio::spawn(crate::backup::schedule::run(scheduled, rx.clone())));
    }
    let s = state.clone();
    let mut rx = rx;
    tasks.push(tokio::spawn(async move {
        // Retention ran once before serving; then hourly (files are daily).
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RETENTION_PERIOD) => {}
                _ = rx.wait_for(|stop| *stop) => return,
            }
            retention(&s).await;
        }
    }));
    Ok(Background { stop, tasks })
}

const RETENTION_PERIOD: Duration = Duration::from_secs(3600);

/// This instance's log files, then — by whichever instance claims the job
/// this hour — the stored events and expired records.
async fn retention(state: &AppState) {
    state.events.purge_log_files().await;
    let lease = chrono::Duration::minutes(50);
    match state
        .store
        .claim_job("retention", &state.instance_id, chrono::Utc::now(), lease)
        .await
    {
        Ok(true) => {
            state.events.purge_stored_events().await;
            purge_expired(state).await;
        }
        Ok(false) => tracing::debug!("another instance runs the retention this hour"),
        Err(e) => tracing::warn!(error = %e, "cannot claim the retention job; will retry"),
    }
}

/// How often an instance of a scaled deployment checks for imports made
/// by another (SPEC §10: seen within a second).
const IMPORT_CHECK: Duration = Duration::from_millis(500);

/// Adopts price imports made on other instances into this one's book.
async fn sync_imports(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    // Unknown (state unreachable): the first successful check reloads.
    let mut seen = state.state.price_book_version().await.unwrap_or(u64::MAX);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(IMPORT_CHECK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match state.market.sync_imports(&mut seen).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(series = n, "adopted prices imported on another instance"),
            Err(e) => tracing::debug!(error = %e, "cannot check for imports now; will retry"),
        }
    }
}

/// Drops records that can no longer matter (see `MaintenanceStore`).
async fn purge_expired(state: &AppState) {
    match state
        .store
        .purge_expired(chrono::Utc::now(), state.accounts.throttle.policy)
        .await
    {
        Ok(purged) => tracing::info!(?purged, "expired records purged"),
        Err(e) => tracing::warn!(error = %e, "purging expired records failed"),
    }
}

struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Reloads certificate files on SIGHUP (for `tls = "files"` with renewals).
fn spawn_reloader(config: RustlsConfig, cert: PathBuf, key: PathBuf) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match tls::server_config(&cert, &key) {
                Ok(c) => {
                    config.reload_from_config(c);
                    tracing::info!("TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
                }
            }
        }
    });
}

impl Running {
    /// Stops accepting, lets in-flight requests finish (up to 30 s), then
    /// closes the admin socket and releases the store.
    pub async fn shutdown(self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(30)));
        let _ = self.public.await;
        let _ = self.admin_shutdown.send(true);
        let _ = self.admin.await;
        let _ = std::fs::remove_file(&self.socket_path);
        self.background.stop().await;
        drop(self.state);
        tracing::info!("fortfolio stopped");
    }

    /// Serves until SIGTERM or SIGINT.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
        self.shutdown().await;
        Ok(())
    }
}
