//! `fortfolio`: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use fortfolio::cli::{self, Cli, Command, ConfigCommand};

fn main() -> ExitCode {
    fortfolio::install_crypto();
    let cli = Cli::parse();
    // Commands that need no configuration.
    match &cli.command {
        Command::Config(ConfigCommand::Example) => return done(cli::print_example().map_err(Into::into)),
        Command::Openapi => return done(cli::print_openapi().map_err(Into::into)),
        Command::Completions { shell } => return done(cli::print_completions(*shell).map_err(Into::into)),
        Command::Manpages { dir } => {
            return done(cli::write_manpages(dir).map(|n| println!("{n} man pages written to {}", dir.display())));
        }
        _ => {}
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => done(Err(e)),
    }
}

/// Success, or one line naming the error and exit 1; a reader that went
/// away (`| head`) is not an error.
fn done(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fortfolio: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // `health --url` asks that URL without reading the config (a monitoring
    // user need not be able to); either way it needs no multi-thread runtime.
    if let Command::Health { url, timeout, json } = &cli.command {
        let url = match url {
            Some(url) => url.clone(),
            None => cli::health_url(&cli.load_config()?),
        };
        return health(&url, *timeout, *json);
    }
    let config = cli.load_config()?;
    if matches!(cli.command, Command::Admin(_) | Command::Prices(_) | Command::Model(_)) {
        cli::privileges::become_data_dir_owner(&config)?;
    }
    let pin = matches!(cli.command, Command::Serve { .. }) && config.pins_to_cores();
    let runtime = fortfolio::server::runtime(pin)?;
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            cli::print_config(&config)?;
            match fortfolio::config::Config::file_to_read(cli.global.config.as_deref()) {
                Some(file) => eprintln!("config ok (file {})", file.display()),
                None => eprintln!("config ok (no file: built-in defaults and the environment)"),
            }
        }
        Command::Serve { .. } => {
            fortfolio::telemetry::init(&config);
            runtime.block_on(async {
                let running = fortfolio::server::start(config).await?;
                running.run_until_signal().await
            })?;
        }
        Command::Admin(cmd) => runtime.block_on(cli::run_admin(config, cmd))?,
        Command::Prices(cmd) => runtime.block_on(cli::run_prices(config, cmd))?,
        Command::Model(cmd) => runtime.block_on(cli::run_model(config, cmd))?,
        Command::Config(ConfigCommand::Example)
        | Command::Health { .. }
        | Command::Openapi
        | Command::Completions { .. }
        | Command::Manpages { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn health(url: &str, timeout: u64, json: bool) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let timeout = std::time::Duration::from_secs(timeout.max(1));
    let ready = runtime.block_on(cli::run_health(url, timeout, json))?;
    Ok(if ready { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
