//! The `elt` binary: parses the command line, runs one command, prints the error chain once
//! and exits with a documented code (see [`cli::exit`]).

mod cli;

use clap::Parser;

fn main() {
    let args = cli::args::Cli::parse();
    let log_format = args.log_format;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(cli::exit::FAILED);
        }
    };
    let telemetry = match cli::telemetry::from_env(runtime.handle()) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(cli::exit::CONFIG);
        }
    };
    cli::logging::init(args.verbose, log_format, telemetry.as_ref());
    let code = match runtime.block_on(cli::commands::run(args)) {
        Ok(code) => code,
        Err(e) => {
            let code = cli::exit::for_error(&e);
            match log_format {
                cli::args::LogFormat::Human => eprintln!("error: {e:#}"),
                cli::args::LogFormat::Json => {
                    tracing::error!(error = format!("{e:#}"), exit_code = code, "command failed");
                }
            }
            code
        }
    };
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    // Do not wait for blocking tasks (a DuckDB load torn down by an error) at shutdown.
    runtime.shutdown_background();
    std::process::exit(code);
}
