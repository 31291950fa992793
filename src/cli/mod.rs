//! The command line (SPEC §7): `serve | config | admin | prices | model`.

/// `println!` that returns the write's error instead of panicking, so
/// `fortfolio … | head -1` ends quietly when the reader goes away (see
/// `is_broken_pipe`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` with the same error handling as `say!`.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        write!(out, $($arg)*).and_then(|()| out.flush())
    }};
}

pub mod admin_client;
mod backup;
mod health;
mod manual;
pub mod privileges;

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use axum::http::Method;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::cli::admin_client::{print_events, print_users, segment, Backend};
use crate::config::{Config, Overrides, EXAMPLE};

#[derive(Debug, Parser)]
#[command(name = "fortfolio", version = crate::VERSION, about = "A self-hosted financial API in one binary")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file (default: ./config.toml, else /etc/fortfolio/config.toml, if present)
    #[arg(long, global = true, value_name = "FILE", env = "FORTFOLIO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides storage.data_dir)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTPS API server
    Serve {
        /// Address to listen on (overrides server.bind)
        #[arg(long)]
        bind: Option<String>,
        /// off | self-signed | files (overrides server.tls)
        #[arg(long)]
        tls: Option<String>,
    },
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Administer users and sessions
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage price data
    #[command(subcommand)]
    Prices(PricesCommand),
    /// Inspect the prediction models
    #[command(subcommand)]
    Model(ModelCommand),
    /// Print the OpenAPI 3.1 document the server serves at /api/v1/openapi.json
    Openapi,
    /// Check that the server answers: exit 0 when ready, 1 otherwise
    Health {
        /// Base URL of the server (default: from server.bind and server.tls;
        /// the config file is then not read)
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Seconds to wait for each answer
        #[arg(long, default_value_t = 5, value_name = "SECONDS")]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script
    Completions {
        /// bash | zsh | fish | elvish | powershell
        shell: clap_complete::Shell,
    },
    /// Write a man page for every command into DIR (for packagers)
    #[command(hide = true)]
    Manpages {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Import daily prices from a CSV (columns date,open,high,low,close,volume; symbol optional)
    Import {
        file: PathBuf,
        /// Symbol for rows without a symbol column (default: the file name)
        #[arg(long)]
        symbol: Option<String>,
        /// Display name for a new symbol
        #[arg(long)]
        name: Option<String>,
    },
    /// List the symbols with price data
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Walk-forward evaluation of the models on a symbol's history
    Evaluate {
        symbol: String,
        /// Forecast horizon in trading days (1-30)
        #[arg(long, default_value_t = 5)]
        horizon: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate and print the effective configuration, secrets redacted
    Check,
    /// Print a commented example config.toml
    Example,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage sessions
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Write a consistent online snapshot (data and keys) to FILE (or
    /// `backup verify FILE`, `backup keygen FILE`)
    #[command(args_conflicts_with_subcommands = true)]
    Backup {
        #[command(subcommand)]
        action: Option<backup::BackupCommand>,
        file: Option<PathBuf>,
        #[command(flatten)]
        seal: backup::SealArgs,
    },
    /// Restore a snapshot written by `admin backup` (server stopped)
    Restore {
        file: PathBuf,
        #[command(flatten)]
        key: backup::UnsealArgs,
    },
    /// Copy the embedded data dir into an empty PostgreSQL database
    /// (server stopped); then switch storage.backend to "postgres"
    Migrate {
        /// The backend to copy into (only "postgres")
        #[arg(long, value_parser = ["postgres"])]
        to: String,
        /// The target database; default: storage.postgres_url
        #[arg(long, env = "FORTFOLIO_MIGRATE_POSTGRES_URL", hide_env_values = true)]
        postgres_url: Option<String>,
    },
    /// Query security events, newest first (or `events verify`)
    #[command(args_conflicts_with_subcommands = true)]
    Events {
        #[command(subcommand)]
        verify: Option<EventsCommand>,
        /// Only this user's events (email)
        #[arg(long)]
        user: Option<String>,
        /// Only this event type (e.g. login_failure)
        #[arg(long)]
        event: Option<String>,
        /// Only events within this long ago (e.g. 24h, 7d)
        #[arg(long)]
        since: Option<String>,
        /// At most this many events
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Check the tamper-evident chain of the stored events (and, with
    /// --files, of this instance's security.json files); exit 1 at the
    /// first broken link
    Verify {
        #[arg(long)]
        files: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (a strong password is generated unless --password-stdin)
    Create {
        #[arg(long)]
        email: String,
        /// user | admin
        #[arg(long, default_value = "user")]
        role: String,
        /// Read the password from standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a user and end their sessions
    Disable { email: String },
    /// Re-enable a user
    Enable { email: String },
    /// Lift a lockout
    Unlock { email: String },
    /// Turn two-factor authentication off (lost device)
    #[command(name = "reset-2fa")]
    Reset2fa { email: String },
    /// Print a one-time password reset link (30 min) to hand to the user
    /// (for servers without SMTP)
    #[command(name = "reset-password")]
    ResetPassword { email: String },
    /// Make a user an admin (the admin API and console), or back a user
    #[command(name = "set-role")]
    SetRole {
        email: String,
        #[arg(value_parser = ["admin", "user"])]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// End every session of a user
    Revoke { email: String },
}

impl Cli {
    fn overrides(&self) -> Overrides {
        let mut o = Overrides {
            data_dir: self.global.data_dir.clone(),
            ..Default::default()
        };
        if let Command::Serve { bind, tls } = &self.command {
            o.bind = bind.clone();
            o.tls = tls.clone();
        }
        o
    }

    pub fn load_config(&self) -> anyhow::Result<Config> {
        Ok(Config::load(self.global.config.as_deref(), &self.overrides())?)
    }
}

/// Runs a non-serve command.
pub async fn run_admin(config: Config, cmd: AdminCommand) -> anyhow::Result<()> {
    match &cmd {
        AdminCommand::Restore { file, key } => return backup::restore(&config, file, key).await,
        AdminCommand::Backup {
            action: Some(backup::BackupCommand::Verify { file, key, json }),
            ..
        } => return backup::verify(file, key, *json),
        AdminCommand::Backup {
            action: Some(backup::BackupCommand::Keygen { file }),
            ..
        } => return backup::keygen(file),
        AdminCommand::Backup { file: None, .. } => bail!("admin backup needs a FILE (or verify FILE, keygen FILE)"),
        _ => {}
    }
    if let AdminCommand::Migrate { postgres_url, .. } = &cmd {
        return migrate_to_postgres(&config, postgres_url.as_deref()).await;
    }
    let backend = Backend::connect(&config).await?;
    match cmd {
        AdminCommand::User(UserCommand::Create {
            email,
            role,
            password_stdin,
        }) => {
            if role != "user" && role != "admin" {
                bail!("--role must be user or admin");
            }
            let (password, generated) = if password_stdin {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read the password from stdin")?;
                (s.trim_end_matches(['\n', '\r']).to_string(), false)
            } else {
                (crate::security::random_token(18), true)
            };
            let body = json!({"email": email, "role": role, "password": password});
            let u = backend.call(Method::POST, "/admin/users", Some(body)).await?;
            say!(
                "created {} ({})",
                u["email"].as_str().unwrap_or(""),
                u["id"].as_str().unwrap_or("")
            )?;
            if generated {
                say!("password (shown once): {password}")?;
            }
        }
        AdminCommand::User(UserCommand::List { json }) => {
            let users = backend.call(Method::GET, "/admin/users", None).await?;
            if json {
                say!("{}", serde_json::to_string_pretty(&users)?)?;
            } else {
                print_users(&users)?;
            }
        }
        AdminCommand::User(UserCommand::Disable { email }) => {
            backend
                .call(Method::POST, &format!("/admin/users/{}/disable", segment(&email)), None)
                .await?;
            say!("disabled {email}; its sessions are ended")?;
        }
        AdminCommand::User(UserCommand::Enable { email }) => {
            backend
                .call(Method::POST, &format!("/admin/users/{}/enable", segment(&email)), None)
                .await?;
            say!("enabled {email}")?;
        }
        AdminCommand::User(UserCommand::Unlock { email }) => {
            let r = backend
                .call(Method::POST, &format!("/admin/users/{}/unlock", segment(&email)), None)
                .await?;
            say!("unlocked {email} ({} lock records cleared)", r["locks_cleared"])?;
        }
        AdminCommand::User(UserCommand::Reset2fa { email }) => {
            let r = backend
                .call(
                    Method::POST,
                    &format!("/admin/users/{}/reset-2fa", segment(&email)),
                    None,
                )
                .await?;
            if r["two_factor_was_enabled"] == true {
                say!("two-factor authentication turned off for {email}")?;
            } else {
                say!("{email} had no two-factor authentication")?;
            }
        }
        AdminCommand::User(UserCommand::ResetPassword { email }) => {
            let r = backend
                .call(
                    Method::POST,
                    &format!("/admin/users/{}/reset-password", segment(&email)),
                    None,
                )
                .await?;
            say!(
                "one-time reset link for {email} (valid until {}; a newer one retires it):\n{}\ntoken (for POST /api/v1/auth/password-reset/confirm): {}",
                r["expires_at"].as_str().unwrap_or(""),
                r["link"].as_str().unwrap_or(""),
                r["token"].as_str().unwrap_or("")
            )?;
        }
        AdminCommand::User(UserCommand::SetRole { email, role }) => {
            let u = backend
                .call(
                    Method::POST,
                    &format!("/admin/users/{}/role", segment(&email)),
                    Some(json!({"role": role})),
                )
                .await?;
            say!(
                "{} is now {}",
                u["email"].as_str().unwrap_or(&email),
                u["role"].as_str().unwrap_or(&role)
            )?;
        }
        AdminCommand::Events {
            verify: Some(EventsCommand::Verify { files, json }),
            ..
        } => {
            let busy = spinner("checking the event chain".to_string());
            let report = backend
                .call(Method::GET, &format!("/admin/events/verify?files={files}"), None)
                .await;
            busy.finish_and_clear();
            let report = report?;
            if json {
                say!("{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                print_audit(&report)?;
            }
            if let Some(b) = report.get("broken").filter(|b| !b.is_null()) {
                bail!(
                    "broken at {}: {}",
                    b["position"].as_str().unwrap_or("?"),
                    b["problem"].as_str().unwrap_or("?")
                );
            }
        }
        AdminCommand::Events {
            verify: None,
            user,
            event,
            since,
            limit,
            json,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (k, v) in [("user", user), ("event", event), ("since", since)] {
                if let Some(v) = v {
                    query.push(format!("{k}={}", segment(&v)));
                }
            }
            let events = backend
                .call(Method::GET, &format!("/admin/events?{}", query.join("&")), None)
                .await?;
            if json {
                say!("{}", serde_json::to_string_pretty(&events)?)?;
            } else {
                print_events(&events)?;
            }
        }
        AdminCommand::Backup {
            file: Some(file), seal, ..
        } => backup::write(&backend, &file, &seal).await?,
        AdminCommand::Restore { .. } | AdminCommand::Migrate { .. } | AdminCommand::Backup { file: None, .. } => {}
        AdminCommand::Sessions(SessionsCommand::Revoke { email }) => {
            let r = backend
                .call(Method::POST, "/admin/sessions/revoke", Some(json!({"email": email})))
                .await?;
            say!("revoked {} sessions of {email}", r["sessions_revoked"])?;
        }
    }
    Ok(())
}

/// The chains `events verify` checked, one line each.
fn print_audit(report: &Value) -> anyhow::Result<()> {
    let chain_line = |c: &Value| {
        format!(
            "chain {}: {} links, seq {}–{}, last hash {}{}",
            c["chain"].as_str().unwrap_or("?"),
            c["links"],
            c["first_seq"],
            c["last_seq"],
            c["last_hash"].as_str().unwrap_or("?").get(..16).unwrap_or("?"),
            match c["unchained"].as_u64() {
                Some(n) if n > 0 => format!(" ({n} older events before the chain began)"),
                _ => String::new(),
            }
        )
    };
    for c in report["store"].as_array().into_iter().flatten() {
        say!("store: {}", chain_line(c))?;
    }
    if let Some(files) = report.get("files") {
        let names: Vec<&str> = files["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        say!("files: {}", names.join(", "))?;
        if !files["chain"].is_null() {
            say!("files: {}", chain_line(&files["chain"]))?;
        }
    }
    if report["broken"].is_null() {
        say!("ok: every link holds")?;
    }
    Ok(())
}

/// `fortfolio prices …`
pub async fn run_prices(config: Config, cmd: PricesCommand) -> anyhow::Result<()> {
    match cmd {
        PricesCommand::List { json } => {
            let backend = Backend::connect(&config).await?;
            let list = backend.call(Method::GET, "/admin/prices", None).await?;
            if json {
                say!("{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                say!(
                    "{:<8} {:<45} {:>6} {:<10} {:<10} {:>12} SOURCE",
                    "SYMBOL",
                    "NAME",
                    "ROWS",
                    "FIRST",
                    "LAST",
                    "LAST_CLOSE"
                )?;
                for s in list.as_array().into_iter().flatten() {
                    say!(
                        "{:<8} {:<45} {:>6} {:<10} {:<10} {:>12} {}",
                        s["symbol"].as_str().unwrap_or(""),
                        s["name"].as_str().unwrap_or("").chars().take(45).collect::<String>(),
                        s["rows"],
                        s["first"].as_str().unwrap_or("-"),
                        s["last"].as_str().unwrap_or("-"),
                        s["last_close"].as_str().unwrap_or("-"),
                        s["source"].as_str().unwrap_or(""),
                    )?;
                }
            }
            Ok(())
        }
        PricesCommand::Import { file, symbol, name } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let parsed =
                crate::market::prices::parse_csv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            for (line, why) in &parsed.errors {
                eprintln!("{}:{line}: skipped: {why}", file.display());
            }
            let fallback = match &symbol {
                Some(s) => s.clone(),
                None => file
                    .file_stem()
                    .map(|s| s.to_string_lossy().split('.').next().unwrap_or("").to_string())
                    .unwrap_or_default(),
            };
            let mut groups: std::collections::BTreeMap<String, Vec<crate::market::Candle>> = Default::default();
            for (sym, candle) in parsed.rows {
                let sym = symbol.clone().or(sym).unwrap_or_else(|| fallback.clone());
                groups.entry(sym).or_default().push(candle);
            }
            if groups.is_empty() {
                bail!(
                    "{}: no valid rows to import ({} bad)",
                    file.display(),
                    parsed.errors.len()
                );
            }
            let backend = Backend::connect(&config).await?;
            let total: usize = groups.values().map(Vec::len).sum();
            let bar = progress_bar(total as u64, "rows");
            for (sym, candles) in groups {
                let symbol = crate::domain::Symbol::parse(&sym).map_err(|e| anyhow::anyhow!("{e}"))?;
                // Chunks keep each request small and let the bar move.
                for chunk in candles.chunks(2000) {
                    let body = json!({"symbol": symbol.as_str(), "name": name, "candles": chunk});
                    backend.call(Method::POST, "/admin/prices/import", Some(body)).await?;
                    bar.inc(chunk.len() as u64);
                }
                bar.suspend(|| say!("imported {} rows for {}", candles.len(), symbol))?;
            }
            bar.finish_and_clear();
            if !parsed.errors.is_empty() {
                say!("{} bad rows skipped (see above)", parsed.errors.len())?;
            }
            Ok(())
        }
    }
}

/// `fortfolio model evaluate …`
pub async fn run_model(config: Config, cmd: ModelCommand) -> anyhow::Result<()> {
    let ModelCommand::Evaluate { symbol, horizon, json } = cmd;
    let backend = Backend::connect(&config).await?;
    let busy = spinner(format!(
        "evaluating {symbol} at horizon {horizon} (5-fold walk-forward)"
    ));
    let r = backend
        .call(
            Method::GET,
            &format!("/admin/model/evaluate?symbol={}&horizon={horizon}", segment(&symbol)),
            None,
        )
        .await;
    busy.finish_and_clear();
    let r = r?;
    if json {
        say!("{}", serde_json::to_string_pretty(&r)?)?;
        return Ok(());
    }
    let e = &r["evaluation"];
    say!(
        "{} horizon {} days, model {}",
        r["symbol"].as_str().unwrap_or(""),
        horizon,
        r["model"].as_str().unwrap_or("")
    )?;
    say!(
        "{:>4}  {:<10} {:<10} {:<10} {:<10} {:>6} {:>6}  {:>8} {:>8}  {:>9} {:>9}  {:>8}",
        "FOLD",
        "TRAIN_FROM",
        "TRAIN_TO",
        "TEST_FROM",
        "TEST_TO",
        "TRAIN",
        "TEST",
        "DIR_ACC",
        "BASE_ACC",
        "MAE",
        "BASE_MAE",
        "COVERAGE"
    )?;
    for f in e["fold_details"].as_array().into_iter().flatten() {
        say!(
            "{:>4}  {:<10} {:<10} {:<10} {:<10} {:>6} {:>6}  {:>8.4} {:>8.4}  {:>9.6} {:>9.6}  {:>8.4}",
            f["fold"].as_u64().unwrap_or(0),
            f["train_from"].as_str().unwrap_or(""),
            f["train_to"].as_str().unwrap_or(""),
            f["test_from"].as_str().unwrap_or(""),
            f["test_to"].as_str().unwrap_or(""),
            f["train_samples"].as_u64().unwrap_or(0),
            f["test_samples"].as_u64().unwrap_or(0),
            f["directional_accuracy"].as_f64().unwrap_or(f64::NAN),
            f["baseline_directional_accuracy"].as_f64().unwrap_or(f64::NAN),
            f["mae"].as_f64().unwrap_or(f64::NAN),
            f["baseline_mae"].as_f64().unwrap_or(f64::NAN),
            f["interval_coverage"].as_f64().unwrap_or(f64::NAN),
        )?;
    }
    let acc = e["directional_accuracy"].as_f64().unwrap_or(f64::NAN);
    let base_acc = e["baseline_directional_accuracy"].as_f64().unwrap_or(f64::NAN);
    let mae = e["mae"].as_f64().unwrap_or(f64::NAN);
    let base_mae = e["baseline_mae"].as_f64().unwrap_or(f64::NAN);
    let level = e["interval_level"].as_f64().unwrap_or(f64::NAN);
    let coverage = e["interval_coverage"].as_f64().unwrap_or(f64::NAN);
    say!(
        "overall: directional accuracy {acc:.4} vs baseline {base_acc:.4} (majority direction of each training window)"
    )?;
    say!("         MAE of the return       {mae:.6} vs baseline {base_mae:.6} (zero return)")?;
    say!(
        "         interval coverage       {coverage:.4} of test outcomes inside the {:.0}% interval (calibrated on training rows only)",
        level * 100.0
    )?;
    let verdict = match (acc > base_acc, mae < base_mae) {
        (true, true) => "the model beats both baselines out of sample",
        (true, false) => "the model beats the direction baseline but not the zero-return MAE baseline",
        (false, true) => "the model beats the zero-return MAE baseline but not the direction baseline",
        (false, false) => "the model does NOT beat the naive baselines out of sample",
    };
    say!("verdict: {verdict}")?;
    Ok(())
}

/// `admin migrate --to postgres`: the embedded file, read in one snapshot,
/// into an empty database in one transaction, counts checked at the end.
async fn migrate_to_postgres(config: &Config, url: Option<&str>) -> anyhow::Result<()> {
    let url = url.unwrap_or(config.storage.postgres_url.expose());
    if url.is_empty() {
        bail!("give --postgres-url (or set storage.postgres_url)");
    }
    let file = config.data_dir().join(crate::store::redb::FILE_NAME);
    if !file.exists() {
        bail!("no embedded database at {}", file.display());
    }
    if crate::cli::admin_client::server_running(config).await {
        bail!("stop the server first: the copy must see a database nobody is changing");
    }
    let source = crate::store::redb::RedbStore::open(config.data_dir())?;
    let snapshot = source.snapshot()?;
    let total: u64 = snapshot.counts().iter().map(|(_, n)| n).sum();
    eprintln!("copying {total} records from {}", file.display());
    let target = crate::store::postgres::PostgresStore::connect(url, 2)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", crate::config::redact_url(url)))?;
    let bar = progress_bar(total, "records");
    let mut progress = |what: &str, n: u64| {
        bar.inc(n);
        bar.set_message(what.to_string());
    };
    let counts = target
        .load_snapshot(&snapshot, &mut progress)
        .await
        .map_err(|e| anyhow::anyhow!("{e}; the database was left as it was"));
    bar.finish_and_clear();
    let counts = counts?;
    say!("copied into {}:", crate::config::redact_url(url))?;
    for (table, n) in counts {
        say!("  {table:<17} {n:>8}")?;
    }
    let keys = config.data_dir();
    say!(
        "counts match. Next, on every instance: storage.backend = \"postgres\", \
         auth.jwt_secret_file = a copy of {} (sessions and tokens stay valid) and \
         auth.totp_key_file = a copy of {} (it sealed the 2FA secrets).",
        keys.join("jwt.key").display(),
        keys.join("totp.key").display()
    )?;
    Ok(())
}

/// A bar on stderr counting `unit`, drawn only on a terminal.
fn progress_bar(total: u64, unit: &str) -> ProgressBar {
    let template = format!("[{{bar:30}}] {{percent:>3}}% {{pos}}/{{len}} {unit} {{msg}}");
    let style = ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(total).with_style(style.progress_chars("#>."))
}

/// A spinner with elapsed time for work of unknown length, drawn only on a terminal.
fn spinner(message: String) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = ProgressBar::new_spinner().with_style(style).with_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Prints the OpenAPI document exactly as the server serves it.
pub fn print_openapi() -> std::io::Result<()> {
    say_raw!(
        "{}",
        crate::http::openapi::Published::new(&crate::http::router::document()).json()
    )
}

pub use health::{base_url as health_url, run_health};

/// True when `e` is a write to a reader that went away (`| head`, `| grep
/// -q`): the command then ends quietly with success, as a filter should.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
pub use manual::{print_completions, write_manpages};

/// `config check`: the effective configuration, secrets redacted.
pub fn print_config(config: &Config) -> std::io::Result<()> {
    say_raw!("{}", config.redacted_toml())
}

pub fn print_example() -> std::io::Result<()> {
    say_raw!("{EXAMPLE}")
}
