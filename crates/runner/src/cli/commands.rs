//! One function per command. Results go to stdout; progress, logs and errors to stderr.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use elt_core::{Error, ErrorKind};
use elt_runner::{Project, RunOutcome, SyncOptions, registry};

use clap::CommandFactory;

use super::args::{CdcAction, Cli, Command, DeadLetterAction, LogFormat, StateAction, SyncArgs};
use super::exit;
use super::progress::{Display, Progress};

/// The starter project `elt init` writes.
const INIT_TEMPLATE: &str = include_str!("../../../../specs/examples/demo.toml");

/// Runs the command; returns the exit code, or an error that decides it.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let log_format = cli.log_format;
    match cli.command {
        Command::Init { force } => init(&cli.config, force),
        Command::Connectors => connectors(),
        Command::Spec { kind } => spec(&kind),
        Command::Validate => {
            let project = Project::load(&cli.config)?;
            project.check_environment()?;
            project.check_endpoints()?;
            let (s, d, c) = project.counts();
            if c == 0 {
                return Err(Error::config(format!(
                    "{}: no connections: add a `[connections.NAME]` table with a `source` and a `destination` (`elt init` writes a starter project)",
                    cli.config.display()
                ))
                .into());
            }
            println!(
                "{}: valid ({s} sources, {d} destinations, {c} connections)",
                cli.config.display()
            );
            Ok(exit::SUCCESS)
        }
        Command::Check(args) => check(&Project::load(&cli.config)?, &args.connection).await,
        Command::Discover { connection, json } => {
            super::discover::discover(&Project::load(&cli.config)?, &connection.connection, json)
                .await
        }
        Command::Sync(args) => sync(&Project::load(&cli.config)?, args, log_format).await,
        Command::State { action } => state(&Project::load(&cli.config)?, action).await,
        Command::Runs {
            connection,
            limit,
            json,
        } => {
            super::runs::runs(
                &Project::load(&cli.config)?,
                &connection.connection,
                limit as usize,
                json,
            )
            .await
        }
        Command::DeadLetter {
            action: DeadLetterAction::List(args),
        } => super::deadletter::list(&Project::load(&cli.config)?, &args).await,
        Command::DeadLetter {
            action: DeadLetterAction::Replay(args),
        } => super::deadletter::replay(&Project::load(&cli.config)?, &args).await,
        Command::Cdc {
            action: CdcAction::Drop { connection, stream },
        } => {
            super::cdc::drop(
                &Project::load(&cli.config)?,
                &connection.connection,
                stream.as_deref(),
            )
            .await
        }
        Command::Backfill { action } => {
            super::backfill::backfill(&Project::load(&cli.config)?, action).await
        }
        Command::Reconcile(args) => super::reconcile::run(&Project::load(&cli.config)?, args).await,
        Command::Plan(args) => super::plan::plan(&Project::load(&cli.config)?, &args).await,
        Command::Test(args) => super::datatests::test(&Project::load(&cli.config)?, &args).await,
        Command::DbtSources(args) => super::dbt::sources(&Project::load(&cli.config)?, &args).await,
        Command::Ui(args) => {
            let ip = args.listen.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
            super::ui::serve(&cli.config, std::net::SocketAddr::new(ip, args.port)).await
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "elt", &mut std::io::stdout());
            Ok(exit::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .context("writing the man page")?;
            Ok(exit::SUCCESS)
        }
    }
}

fn init(path: &std::path::Path, force: bool) -> anyhow::Result<i32> {
    if path.exists() && !force {
        return Err(Error::config(format!(
            "{} exists; pass --force to replace it",
            path.display()
        ))
        .into());
    }
    std::fs::write(path, INIT_TEMPLATE).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}; try: elt sync --connection demo", path.display());
    Ok(exit::SUCCESS)
}

fn connectors() -> anyhow::Result<i32> {
    println!("sources:");
    for (kind, description) in registry::sources() {
        println!("  {kind:<12} {description}");
    }
    println!("destinations:");
    for (kind, description) in registry::destinations() {
        println!("  {kind:<12} {description}");
    }
    Ok(exit::SUCCESS)
}

fn spec(kind: &str) -> anyhow::Result<i32> {
    let mut found = serde_json::Map::new();
    if let Some(f) = registry::source(kind) {
        found.insert("source".into(), f.spec());
    }
    if let Some(f) = registry::destination(kind) {
        found.insert("destination".into(), f.spec());
    }
    if found.is_empty() {
        let known: Vec<_> = registry::source_kinds()
            .into_iter()
            .chain(registry::destination_kinds())
            .collect();
        return Err(Error::config(format!(
            "unknown connector type {kind:?}; known types: {}",
            known.join(", ")
        ))
        .into());
    }
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(exit::SUCCESS)
}

async fn check(project: &Project, connection: &str) -> anyhow::Result<i32> {
    let (config, source, destination) = project.connection(connection)?;
    project.check_environment()?;
    let mut failed = false;
    for (role, name, endpoint, result) in [
        (
            "source",
            &config.source,
            source.endpoint(),
            source.check().await,
        ),
        (
            "destination",
            &config.destination,
            destination.endpoint(),
            destination.check().await,
        ),
    ] {
        // Where it connected, and with which TLS mode, when the connector says.
        let at = match endpoint {
            Ok(Some(at)) => format!(" ({at})"),
            _ => String::new(),
        };
        match result {
            Ok(()) => println!("{role} {name}: ok{at}"),
            Err(e) => {
                failed = true;
                println!("{role} {name}: FAILED: {e:#}");
            }
        }
    }
    let cdc_tables: Vec<String> = config
        .streams
        .iter()
        .flatten()
        .filter(|s| s.sync == Some(elt_core::SyncMode::Cdc))
        .map(|s| s.name.clone())
        .collect();
    if !cdc_tables.is_empty() {
        let name = &config.source;
        match source.check_changes(&cdc_tables).await {
            Ok(problems) if problems.is_empty() => {
                println!("source {name}: change data capture: ok")
            }
            Ok(problems) => {
                failed = true;
                for problem in problems {
                    println!("source {name}: change data capture: FAILED: {problem}");
                }
            }
            Err(e) => {
                failed = true;
                println!("source {name}: change data capture: FAILED: {e:#}");
            }
        }
    }
    Ok(if failed { exit::FAILED } else { exit::SUCCESS })
}

async fn sync(project: &Project, args: SyncArgs, log_format: LogFormat) -> anyhow::Result<i32> {
    let connection = args.connection.connection;
    project.check_environment()?;
    let display = match log_format {
        LogFormat::Json => Display::Log,
        LogFormat::Human if std::io::stderr().is_terminal() => Display::Terminal,
        LogFormat::Human => Display::Lines,
    };
    let progress = (!args.quiet).then(|| Arc::new(Progress::new(display)));
    if let Some(path) = &args.metrics_file {
        elt_runner::Metrics::check_textfile(path).map_err(|e| {
            Error::config(format!(
                "--metrics-file: cannot write beside {}: {e} (the directory must exist and be \
                 writable)",
                path.display()
            ))
        })?;
    }
    let metrics = (args.metrics_file.is_some()
        || args.metrics_listen.is_some()
        || super::telemetry::exporting())
    .then(elt_runner::Metrics::new);
    if let (Some(addr), Some(metrics)) = (args.metrics_listen, &metrics) {
        let listener = super::ui::bind(addr, "--metrics-listen").await?;
        tracing::info!(address = %listener.local_addr()?, "serving /metrics");
        super::ui::serve_metrics(listener, metrics.clone());
    }
    let options = SyncOptions {
        streams: args.streams,
        full_refresh: args.full_refresh,
        backfill: args
            .backfill_from
            .zip(args.backfill_to)
            .map(|(from, to)| elt_core::Backfill {
                from,
                to,
                window: false,
            }),
        observer: progress.clone().map(|p| p as Arc<dyn elt_runner::Observer>),
        wait_for_lock: args.wait_for_lock.map(std::time::Duration::from_secs),
        reconcile_deletes: args.reconcile_deletes,
        max_dead_letter: args.max_dead_letter,
        max_slot_lag: args.max_slot_lag,
        metrics,
    };
    let metrics_file = args.metrics_file.as_deref();
    // A failure before any stream started still names the streams it was to sync.
    let planned = options.streams.clone().or_else(|| {
        let configured = project.connections.get(&connection)?.streams.as_ref()?;
        Some(configured.iter().map(|s| s.name.clone()).collect())
    });
    let context = match planned {
        Some(streams) => format!("connection {connection} (streams {})", streams.join(", ")),
        None => format!("connection {connection} (all streams)"),
    };
    let run = || {
        one_run(
            project,
            &connection,
            &options,
            &context,
            args.json,
            metrics_file,
        )
    };
    if args.follow {
        let interval = std::time::Duration::from_secs(args.follow_interval);
        return super::follow::follow(interval, run).await;
    }
    let code = run().await?;
    if let Some(progress) = progress {
        progress.finish();
    }
    Ok(code)
}

/// One sync of `connection`: its summary on stdout, and its exit code.
async fn one_run(
    project: &Project,
    connection: &str,
    options: &SyncOptions,
    context: &str,
    json: bool,
    metrics_file: Option<&std::path::Path>,
) -> anyhow::Result<i32> {
    let report = elt_runner::sync(project, connection, options).await;
    // What the run committed stands whatever happens to its metrics: a failed write is an
    // error line, not the run's exit code (the path was checked before the run).
    if let (Some(path), Some(metrics)) = (metrics_file, &options.metrics)
        && let Err(e) = metrics.write_textfile(path)
    {
        eprintln!("elt: --metrics-file: cannot write {}: {e}", path.display());
    }
    let report = report.map_err(|e| anyhow::Error::new(e).context(context.to_owned()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    let locked = report
        .streams
        .iter()
        .any(|s| s.error_kind == Some(ErrorKind::Locked));
    // Exit 3 means nothing was done: when other streams committed, the run is partial.
    Ok(match report.status {
        RunOutcome::Succeeded if report.tests_failed() => exit::FAILED,
        RunOutcome::Succeeded => exit::SUCCESS,
        RunOutcome::Partial => exit::PARTIAL,
        RunOutcome::Failed if locked => exit::LOCKED,
        RunOutcome::Failed => exit::FAILED,
    })
}

async fn state(project: &Project, action: StateAction) -> anyhow::Result<i32> {
    match action {
        StateAction::Show {
            connection,
            stream,
            json,
        } => {
            let mut session = super::reading::bookkeeping(project, &connection.connection).await?;
            let mut states = session.state().await?;
            if let Some(stream) = &stream {
                states.retain(|name, _| name == stream);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&states)?);
                return Ok(exit::SUCCESS);
            }
            let windows = match session.windows() {
                Some(log) => log.windows(stream.as_deref()).await?,
                None => Vec::new(),
            };
            if states.is_empty() && windows.is_empty() {
                println!("no saved state");
            }
            for (name, state) in &states {
                println!("{name}: {}", state.to_json());
            }
            super::backfill::print_windows(&windows);
        }
        StateAction::Reset { connection, stream } => {
            let (config, _, destination) = project.connection(&connection.connection)?;
            let mut session = destination
                .open(&connection.connection, &config.dataset)
                .await?;
            let removed = session.reset_state(stream.as_deref()).await?;
            println!(
                "removed the state of {removed} stream(s); their next sync reads from the start"
            );
        }
    }
    Ok(exit::SUCCESS)
}
