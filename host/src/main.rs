//! `demo-host`: wires the command line to the library.

use clap::Parser;
use demo_host::cli::args::{Cli, Command};
use demo_host::cli::{inspect, list};
use demo_host::plugin::loader::Loader;
use demo_host::{app, plugin};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Installed before ratatui's hook, which chains to it after restoring the terminal.
    let _ = color_eyre::install();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::List) => {
                println!("{}", list::render(&plugin::locate::discover()));
                Ok(0)
            }
            Some(Command::Inspect(args)) => {
                let loader = Loader::new();
                let plugin = app::load_built(&loader, &args.plugin, args.no_build)?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&*plugin.description)?);
                } else {
                    print!("{}", inspect::render_text(&plugin.description));
                }
                Ok(0)
            }
            Some(Command::Up(args)) => app::run_env_step(&args, app::ENV_UP_STEP).await,
            Some(Command::Down(args)) => app::run_env_step(&args, app::ENV_DOWN_STEP).await,
            Some(Command::Doctor(args)) => app::doctor(&args),
            Some(Command::Run(args)) => run(&args).await,
            None => run(&cli.run).await,
        }
    });
    // Plugin threads stuck past their timeout must not keep the process alive.
    runtime.shutdown_background();
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code.clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &demo_host::cli::args::RunArgs) -> anyhow::Result<i32> {
    if args.headless {
        app::run_headless(args).await
    } else {
        app::run_interactive(args).await
    }
}
