//! `demo-host`: wires the command line to the library.

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use demo_host::cli::args::{Cli, Command};
use demo_host::cli::{inspect, list, settings};
use demo_host::plugin::loader::Loader;
use demo_host::{app, plugin};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Installed before ratatui's hook, which chains to it after restoring the terminal.
    let _ = color_eyre::install();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
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
        if let Some(path) = &cli.log_file {
            demo_host::cli::log_file::init(path)?;
        }
        let files = settings::load()?;
        let sub = |name| matches.subcommand_matches(name).unwrap_or(&matches);
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
                    eprint!("{}", inspect::render_warnings(&plugin.warnings));
                }
                Ok(0)
            }
            Some(Command::Up(mut args)) => {
                settings::apply_env(&mut args, sub("up"), &files);
                app::run_env_step(&args, app::ENV_UP_STEP).await
            }
            Some(Command::Down(mut args)) => {
                settings::apply_env(&mut args, sub("down"), &files);
                app::run_env_step(&args, app::ENV_DOWN_STEP).await
            }
            Some(Command::Doctor(mut args)) => {
                settings::apply_env(&mut args, sub("doctor"), &files);
                app::doctor(&args)
            }
            Some(Command::Config(mut args)) => {
                let effective = settings::apply(&mut args, sub("config"), &files);
                print!("{}", settings::render(&effective, &files));
                Ok(0)
            }
            Some(Command::Completions { shell }) => {
                let mut out = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "demo-host", &mut out);
                print_all(&out)
            }
            Some(Command::Man) => {
                let mut out = Vec::new();
                clap_mangen::Man::new(Cli::command()).render(&mut out)?;
                print_all(&out)
            }
            Some(Command::New(args)) => new_plugin(&args),
            Some(Command::Run(mut args)) => run(&mut args, sub("run"), &files).await,
            None => {
                let mut args = cli.run;
                run(&mut args, &matches, &files).await
            }
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

async fn run(
    args: &mut demo_host::cli::args::RunArgs,
    matches: &ArgMatches,
    files: &[(std::path::PathBuf, settings::FileSettings)],
) -> anyhow::Result<i32> {
    settings::apply(args, matches, files);
    if args.headless {
        app::run_headless(args).await
    } else {
        app::run_interactive(args).await
    }
}

/// Writes generated text to stdout; a reader that stops early (`| head`) is not an error.
fn print_all(bytes: &[u8]) -> anyhow::Result<i32> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

fn new_plugin(args: &demo_host::cli::args::NewArgs) -> anyhow::Result<i32> {
    use demo_host::cli::new;
    let plugin_api = match args.plugin_api.clone().or_else(new::default_plugin_api) {
        Some(p) => p,
        None => anyhow::bail!(
            "this host was not built from a checkout it can find; pass --plugin-api <path to plugin-api>"
        ),
    };
    let dir = new::scaffold(&new::NewPlugin {
        name: args.name.clone(),
        parent: args.path.clone(),
        plugin_api,
    })?;
    println!(
        "created {}: `cargo test` there builds and loads it; `demo-host run --plugin {}` plays it",
        dir.display(),
        dir.display()
    );
    Ok(0)
}
