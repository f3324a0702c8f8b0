//! Runs a sync from Rust, without the CLI:
//! `cargo run -p elt-runner --example library -- elt.toml demo`.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let config = args.next().unwrap_or_else(|| "elt.toml".into());
    let connection = args.next().unwrap_or_else(|| "demo".into());
    let project = elt_runner::Project::load(&config)?;
    let report =
        elt_runner::sync(&project, &connection, &elt_runner::SyncOptions::default()).await?;
    print!("{}", report.to_table());
    if report.status != elt_runner::RunOutcome::Succeeded {
        std::process::exit(1);
    }
    Ok(())
}
