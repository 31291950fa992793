//! The command line (SPEC §7): `serve | config | admin | prices | model`.

pub mod admin_client;

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use axum::http::Method;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::cli::admin_client::{print_events, print_users, segment, Backend};
use crate::config::{Config, Overrides, EXAMPLE};

#[derive(Debug, Parser)]
#[command(name = "fortfolio", version, about = "A self-hosted financial API in one binary")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file (default: ./config.toml if present)
    #[arg(long, global = true, value_name = "FILE")]
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
    /// Write a consistent online snapshot (data and keys) to FILE
    Backup { file: PathBuf },
    /// Restore a snapshot written by `admin backup` (server stopped)
    Restore { file: PathBuf },
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
    /// Query security events, newest first
    Events {
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
    if let AdminCommand::Restore { file } = &cmd {
        if crate::cli::admin_client::server_running(&config).await {
            bail!("stop the server first: restore replaces the database it has open");
        }
        let staged = crate::store::redb::RedbStore::stage_restore(config.data_dir(), file)?;
        // Keys first: a database without the keys that sealed it is useless.
        for (name, bytes) in &staged.extras {
            crate::security::keyfile::write_private(&config.data_dir().join(name), bytes)?;
        }
        let rows = staged.commit()?;
        println!(
            "restored {rows} records from {} into {}",
            file.display(),
            config.data_dir().display()
        );
        return Ok(());
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
            println!(
                "created {} ({})",
                u["email"].as_str().unwrap_or(""),
                u["id"].as_str().unwrap_or("")
            );
            if generated {
                println!("password (shown once): {password}");
            }
        }
        AdminCommand::User(UserCommand::List { json }) => {
            let users = backend.call(Method::GET, "/admin/users", None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                print_users(&users)?;
            }
        }
        AdminCommand::User(UserCommand::Disable { email }) => {
            backend
                .call(Method::POST, &format!("/admin/users/{}/disable", segment(&email)), None)
                .await?;
            println!("disabled {email}; its sessions are ended");
        }
        AdminCommand::User(UserCommand::Enable { email }) => {
            backend
                .call(Method::POST, &format!("/admin/users/{}/enable", segment(&email)), None)
                .await?;
            println!("enabled {email}");
        }
        AdminCommand::User(UserCommand::Unlock { email }) => {
            let r = backend
                .call(Method::POST, &format!("/admin/users/{}/unlock", segment(&email)), None)
                .await?;
            println!("unlocked {email} ({} lock records cleared)", r["locks_cleared"]);
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
                println!("two-factor authentication turned off for {email}");
            } else {
                println!("{email} had no two-factor authentication");
            }
        }
        AdminCommand::Events {
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
                println!("{}", serde_json::to_string_pretty(&events)?);
            } else {
                print_events(&events)?;
            }
        }
        AdminCommand::Backup { file } => {
            let path = std::path::absolute(&file).with_context(|| format!("bad path {}", file.display()))?;
            if path.exists() {
                bail!("{} exists; choose a new file", path.display());
            }
            eprintln!("writing a consistent snapshot to {} ...", path.display());
            let r = backend
                .call(
                    Method::POST,
                    "/admin/backup",
                    Some(json!({"path": path.to_string_lossy()})),
                )
                .await?;
            println!(
                "backup written: {} ({} records, {} bytes, {:.2} s); it holds the server keys: keep it private",
                path.display(),
                r["records"],
                r["bytes"],
                r["seconds"].as_f64().unwrap_or(0.0)
            );
        }
        AdminCommand::Restore { .. } | AdminCommand::Migrate { .. } => {}
        AdminCommand::Sessions(SessionsCommand::Revoke { email }) => {
            let r = backend
                .call(Method::POST, "/admin/sessions/revoke", Some(json!({"email": email})))
                .await?;
            println!("revoked {} sessions of {email}", r["sessions_revoked"]);
        }
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
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<8} {:<45} {:>6} {:<10} {:<10} {:>12} SOURCE",
                    "SYMBOL", "NAME", "ROWS", "FIRST", "LAST", "LAST_CLOSE"
                );
                for s in list.as_array().into_iter().flatten() {
                    println!(
                        "{:<8} {:<45} {:>6} {:<10} {:<10} {:>12} {}",
                        s["symbol"].as_str().unwrap_or(""),
                        s["name"].as_str().unwrap_or("").chars().take(45).collect::<String>(),
                        s["rows"],
                        s["first"].as_str().unwrap_or("-"),
                        s["last"].as_str().unwrap_or("-"),
                        s["last_close"].as_str().unwrap_or("-"),
                        s["source"].as_str().unwrap_or(""),
                    );
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
            let mut progress = Progress::new(total);
            for (sym, candles) in groups {
                let symbol = crate::domain::Symbol::parse(&sym).map_err(|e| anyhow::anyhow!("{e}"))?;
                // Chunks keep each request small and let the bar move.
                for chunk in candles.chunks(2000) {
                    let body = json!({"symbol": symbol.as_str(), "name": name, "candles": chunk});
                    backend.call(Method::POST, "/admin/prices/import", Some(body)).await?;
                    progress.advance(chunk.len());
                }
                progress.finish();
                println!("imported {} rows for {}", candles.len(), symbol);
            }
            if !parsed.errors.is_empty() {
                println!("{} bad rows skipped (see above)", parsed.errors.len());
            }
            Ok(())
        }
    }
}

/// `fortfolio model evaluate …`
pub async fn run_model(config: Config, cmd: ModelCommand) -> anyhow::Result<()> {
    let ModelCommand::Evaluate { symbol, horizon, json } = cmd;
    let backend = Backend::connect(&config).await?;
    eprintln!("evaluating {symbol} at horizon {horizon} (5-fold walk-forward)...");
    let r = backend
        .call(
            Method::GET,
            &format!("/admin/model/evaluate?symbol={}&horizon={horizon}", segment(&symbol)),
            None,
        )
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let e = &r["evaluation"];
    println!(
        "{} horizon {} days, model {}",
        r["symbol"].as_str().unwrap_or(""),
        horizon,
        r["model"].as_str().unwrap_or("")
    );
    println!(
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
    );
    for f in e["fold_details"].as_array().into_iter().flatten() {
        println!(
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
        );
    }
    let acc = e["directional_accuracy"].as_f64().unwrap_or(f64::NAN);
    let base_acc = e["baseline_directional_accuracy"].as_f64().unwrap_or(f64::NAN);
    let mae = e["mae"].as_f64().unwrap_or(f64::NAN);
    let base_mae = e["baseline_mae"].as_f64().unwrap_or(f64::NAN);
    let level = e["interval_level"].as_f64().unwrap_or(f64::NAN);
    let coverage = e["interval_coverage"].as_f64().unwrap_or(f64::NAN);
    println!(
        "overall: directional accuracy {acc:.4} vs baseline {base_acc:.4} (majority direction of each training window)"
    );
    println!("         MAE of the return       {mae:.6} vs baseline {base_mae:.6} (zero return)");
    println!(
        "         interval coverage       {coverage:.4} of test outcomes inside the {:.0}% interval (calibrated on training rows only)",
        level * 100.0
    );
    let verdict = match (acc > base_acc, mae < base_mae) {
        (true, true) => "the model beats both baselines out of sample",
        (true, false) => "the model beats the direction baseline but not the zero-return MAE baseline",
        (false, true) => "the model beats the zero-return MAE baseline but not the direction baseline",
        (false, false) => "the model does NOT beat the naive baselines out of sample",
    };
    println!("verdict: {verdict}");
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
    eprintln!("copying {total} records from {} ...", file.display());
    let target = crate::store::postgres::PostgresStore::connect(url, 2)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", crate::config::redact_url(url)))?;
    let mut progress = |what: &str, n: u64| eprintln!("  {what}: {n}");
    let counts = target
        .load_snapshot(&snapshot, &mut progress)
        .await
        .map_err(|e| anyhow::anyhow!("{e}; the database was left as it was"))?;
    println!("copied into {}:", crate::config::redact_url(url));
    for (table, n) in counts {
        println!("  {table:<17} {n:>8}");
    }
    let keys = config.data_dir();
    println!(
        "counts match. Next, on every instance: storage.backend = \"postgres\", \
         auth.jwt_secret_file = a copy of {} (sessions and tokens stay valid) and \
         auth.totp_key_file = a copy of {} (it sealed the 2FA secrets).",
        keys.join("jwt.key").display(),
        keys.join("totp.key").display()
    );
    Ok(())
}

/// A progress bar on stderr, drawn only on a terminal.
struct Progress {
    total: usize,
    done: usize,
    tty: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        use std::io::IsTerminal;
        Self {
            total: total.max(1),
            done: 0,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn advance(&mut self, n: usize) {
        self.done += n;
        if self.tty {
            let width = 30;
            let filled = self.done * width / self.total;
            eprint!(
                "\r[{}{}] {:>3}% {}/{} rows",
                "#".repeat(filled),
                ".".repeat(width - filled.min(width)),
                self.done * 100 / self.total,
                self.done,
                self.total
            );
        }
    }

    fn finish(&mut self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// Prints the OpenAPI document exactly as the server serves it.
pub fn print_openapi() {
    print!(
        "{}",
        crate::http::openapi::Published::new(&crate::http::router::document()).json()
    );
}

pub fn print_example() {
    print!("{EXAMPLE}");
}
