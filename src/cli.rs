//! The command line (SPEC §7): `serve | config | admin | prices | model`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use axum::http::Method;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::admin::client::{print_events, print_users, segment, Backend};
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
        AdminCommand::Sessions(SessionsCommand::Revoke { email }) => {
            let r = backend
                .call(Method::POST, "/admin/sessions/revoke", Some(json!({"email": email})))
                .await?;
            println!("revoked {} sessions of {email}", r["sessions_revoked"]);
        }
    }
    Ok(())
}

pub fn print_example() {
    print!("{EXAMPLE}");
}
