//! `fortfolio`: parse the command line and dispatch.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use fortfolio::cli::{self, Cli, Command, ConfigCommand};

fn main() -> std::process::ExitCode {
    fortfolio::install_crypto();
    let cli = Cli::parse();
    if let Command::Config(ConfigCommand::Example) = cli.command {
        cli::print_example();
        return std::process::ExitCode::SUCCESS;
    }
    if let Command::Openapi = cli.command {
        cli::print_openapi();
        return std::process::ExitCode::SUCCESS;
    }
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fortfolio: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.load_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            print!("{}", config.redacted_toml());
            eprintln!("config ok");
            Ok(())
        }
        Command::Config(ConfigCommand::Example) | Command::Openapi => Ok(()),
        Command::Serve { .. } => {
            fortfolio::telemetry::init(&config);
            runtime.block_on(async {
                let running = fortfolio::server::start(config).await?;
                running.run_until_signal().await
            })
        }
        Command::Admin(cmd) => runtime.block_on(cli::run_admin(config, cmd)),
        Command::Prices(cmd) => runtime.block_on(cli::run_prices(config, cmd)),
        Command::Model(cmd) => runtime.block_on(cli::run_model(config, cmd)),
    }
}
