//! The command line: `serve`, `chat`, `flows check`, `flows schema`, `users`, `outbox`…

#[cfg(feature = "fakes")]
pub mod baseline;
pub mod chat;
#[cfg(feature = "fakes")]
pub mod loadgen;
#[cfg(feature = "fakes")]
pub mod simulate;
pub mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::flow::FlowSet;

/// carewell — a WhatsApp dialogue service driven by flow files.
#[derive(Debug, Parser)]
#[command(name = "carewell", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook server, the conversation worker and the outbox dispatcher.
    Serve,
    /// Talk to a running server as a WhatsApp customer would.
    Chat(chat::ChatArgs),
    /// Work with flow files.
    Flows {
        /// What to do with them.
        #[command(subcommand)]
        command: FlowsCommand,
    },
    /// Print a conversation's timeline: each turn, its guards and decisions with their flow lines,
    /// its effects, and every failure with its subsystem (reads DATABASE_URL).
    Explain {
        /// A conversation id (`phone_number_id:wa_id`) or a customer's number.
        key: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Decide stored turns again and print any difference from what was decided then (reads
    /// DATABASE_URL and FLOWS_DIR; exit 1 on a difference).
    Replay {
        /// A conversation id, a customer's number, `<conversation id>#<turn>`, or `--all`.
        key: Option<String>,
        /// Every conversation in the database.
        #[arg(long, conflicts_with = "key")]
        all: bool,
    },
    /// Run conversation tests (YAML) through the real pipeline against fakes; `--coverage` for the
    /// steps and transitions they took (built with `--features fakes`).
    #[cfg(feature = "fakes")]
    Simulate(simulate::SimulateArgs),
    /// Run many customers through whole journeys against fakes on loopback and report the numbers
    /// (built with `--features fakes`).
    #[cfg(feature = "fakes")]
    Loadgen(loadgen::LoadArgs),
    /// A do-nothing bot for `loadgen --baseline` (see `cli::baseline`).
    #[cfg(feature = "fakes")]
    #[command(hide = true)]
    BaselineBot,
    /// Tenants' secrets: `tenants new-key` prints a fresh TENANT_SECRETS_KEY; `tenants seal
    /// <tenant>` reads a secret from standard input and prints its sealed form for that tenant's
    /// tenant.yaml.
    Tenants {
        /// What to do.
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// The console's users (reads DATABASE_URL): `users add --name alice --role owner` makes
    /// the first owner, the password read from standard input.
    Users {
        /// What to do.
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Inspect and re-drive the outbox (reads DATABASE_URL).
    Outbox {
        /// What to do.
        #[command(subcommand)]
        command: OutboxCommand,
    },
}

/// `outbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List dead-lettered rows.
    Dead,
    /// Put a dead row (or all of them) back in the queue; a running server sends it.
    Redrive {
        /// The outbox id.
        id: Option<i64>,
        /// Every dead row.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

/// The tenant an offline command works on: `TENANT` (its folder under `TENANTS_DIR`), or the
/// single business's when unset. Errors: `TENANT` is not a tenant id.
pub fn cli_tenant() -> Result<crate::tenant::TenantId, String> {
    match std::env::var("TENANT").ok().filter(|t| !t.trim().is_empty()) {
        Some(t) => crate::tenant::TenantId::parse(t.trim()).map_err(|e| e.to_string()),
        None => Ok(crate::tenant::TenantId::default()),
    }
}

async fn open_store() -> Result<crate::store::Store, String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    crate::store::Store::connect(&settings.database, 2).await.map_err(|e| e.to_string())
}

/// `flows` subcommands.
#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Check every flow file; print each problem as file:line:col and exit 1 if any.
    Check {
        /// The flows directory.
        #[arg(default_value = "flows", env = "FLOWS_DIR")]
        dir: PathBuf,
    },
    /// Print the JSON Schema of the flow-file format (for editors).
    Schema,
    /// Draw a flow: Mermaid (default) or Graphviz DOT.
    Graph {
        /// The flow's id (`booking`).
        flow: String,
        /// `mermaid` or `dot`.
        #[arg(long, default_value = "mermaid")]
        format: String,
        /// The flows directory.
        #[arg(long, default_value = "flows", env = "FLOWS_DIR")]
        dir: PathBuf,
    },
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Flows { command: FlowsCommand::Check { dir } } => match FlowSet::load(&dir) {
            Ok(set) => {
                for f in set.flows.values() {
                    println!(
                        "ok  {}  {} v{}: {} steps, {} slots",
                        f.file,
                        f.id,
                        f.version,
                        f.steps.len(),
                        f.slots.len()
                    );
                }
                println!(
                    "ok  {}  business {:?} in {}",
                    dir.join("business.yaml").display(),
                    set.business.name,
                    set.business.time_zone_name
                );
                println!("ok  {}  {} ERP action(s)", dir.join("erp.yaml").display(), set.actions.len());
                let messages = dir.join("messages.yaml");
                let origin = if messages.is_file() { "every sentence checked" } else { "absent: built-in defaults" };
                println!("ok  {}  {origin}", messages.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Flows { command: FlowsCommand::Graph { flow, format, dir } } => match FlowSet::load(&dir) {
            Ok(set) => match (set.flow(&flow), format.as_str()) {
                (Some(f), "mermaid") => {
                    print!("{}", crate::flow::diagram::mermaid(f));
                    ExitCode::SUCCESS
                }
                (Some(f), "dot") => {
                    print!("{}", crate::flow::diagram::dot(f));
                    ExitCode::SUCCESS
                }
                (Some(_), other) => {
                    eprintln!("unknown format {other:?}: use mermaid or dot");
                    ExitCode::FAILURE
                }
                (None, _) => {
                    eprintln!("no flow {flow:?}; flows: {}", set.flows.keys().cloned().collect::<Vec<_>>().join(", "));
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Flows { command: FlowsCommand::Schema } => {
            println!("{}", serde_json::to_string_pretty(&crate::flow::flow_file_schema()).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Command::Explain { key, json } => runtime(async move {
            let result = async {
                let store = open_store().await?;
                let timelines = crate::explain::build(&store, &cli_tenant()?, &key).await.map_err(|e| e.to_string())?;
                if timelines.is_empty() {
                    return Err(format!("no conversation for {key:?}"));
                }
                for t in &timelines {
                    if json {
                        println!("{}", serde_json::to_string_pretty(t).unwrap_or_default());
                    } else {
                        println!("{}", crate::explain::render(t));
                    }
                }
                Ok(())
            };
            match result.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("explain: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Replay { key, all } => runtime(async move {
            let result = async {
                let settings = Settings::from_env().map_err(|e| e.to_string())?;
                let tenant = cli_tenant()?;
                let flows_dir = match &settings.tenants_dir {
                    Some(dir) => dir.join(tenant.as_str()).join("flows"),
                    None => settings.flows_dir.clone(),
                };
                let flows = crate::flow::FlowSet::load(&flows_dir).map_err(|e| e.to_string())?;
                let store = open_store().await?;
                let results = match (key, all) {
                    (Some(key), _) => crate::replay::replay(&store, &tenant, &flows, &key).await,
                    (None, true) => crate::replay::replay_all(&store, &tenant, &flows).await,
                    (None, false) => {
                        return Err::<bool, String>("name a conversation (or a turn: id#n), or pass --all".into());
                    }
                }
                .map_err(|e| e.to_string())?;
                print!("{}", crate::replay::render(&results));
                Ok(results.iter().all(|r| r.differences.is_empty()))
            };
            match result.await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("replay: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Tenants { command } => tenants(command),
        Command::Users { command } => runtime(users::run(command)),
        Command::Outbox { command } => runtime(async move {
            let result = async {
                let store = open_store().await?;
                let tenant = cli_tenant()?;
                match command {
                    OutboxCommand::Dead => {
                        let rows = store.dead_outbox(&tenant, 500).await.map_err(|e| e.to_string())?;
                        if rows.is_empty() {
                            println!("no dead outbox rows");
                        }
                        for r in rows {
                            println!(
                                "#{} {} {} attempts={} {}",
                                r.id,
                                r.kind,
                                r.conversation_id,
                                r.attempts,
                                r.last_error.unwrap_or_default()
                            );
                        }
                    }
                    OutboxCommand::Redrive { id, all } => {
                        if id.is_none() && !all {
                            return Err("give an outbox id, or --all".into());
                        }
                        let n = store.redrive(&tenant, id).await.map_err(|e| e.to_string())?;
                        println!("{n} row(s) back in the queue; a running server sends them now");
                    }
                }
                Ok::<(), String>(())
            };
            match result.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("outbox: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        #[cfg(feature = "fakes")]
        Command::Simulate(args) => runtime(async move {
            match simulate::run(args).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("simulate: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        #[cfg(feature = "fakes")]
        Command::BaselineBot => runtime(async move {
            match baseline::run().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("baseline-bot: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        #[cfg(feature = "fakes")]
        Command::Loadgen(args) => runtime(async move {
            match loadgen::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("loadgen: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Chat(args) => runtime(async move {
            match chat::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("chat: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Serve => {
            let settings = match Settings::from_env() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            crate::telemetry::init(settings.log_json);
            runtime(async move {
                tracing::info!(
                    database = ?settings.database,
                    flows = %settings.flows_dir.display(),
                    whatsapp = if settings.graph.is_some() { "graph api" } else { "sandbox" },
                    erp = if settings.erp.is_some() { "frappe" } else { "sandbox" },
                    llm = settings.llm.as_ref().map(|l| l.model.as_str()).unwrap_or("none (deterministic extractors only)"),
                    "starting"
                );
                if settings.app_secret == crate::config::DEV_APP_SECRET {
                    tracing::warn!(
                        "WHATSAPP_APP_SECRET is unset: using the development secret (fine for the sandbox and `chat` only)"
                    );
                }
                let app = match crate::pipeline::App::build(settings).await {
                    Ok(app) => app,
                    Err(e) => {
                        eprintln!("cannot start: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                match crate::startup::serve(app).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("server stopped: {e}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
    }
}

/// The async runtime's worker threads: `RUNTIME_THREADS` when set (at least 1), else one per
/// core. Several processes on one machine do best with the cores shared out between them
/// (BENCHMARKS.md, "Scale-out"): more threads than cores only switch between each other.
fn runtime_threads() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    match std::env::var("RUNTIME_THREADS") {
        Ok(v) => v.trim().parse::<usize>().map(|n| n.max(1)).unwrap_or_else(|_| {
            eprintln!("RUNTIME_THREADS={v:?} is not a number of threads (write, say, RUNTIME_THREADS=2); using {cores}, one per core");
            cores
        }),
        Err(_) => cores,
    }
}

fn runtime(fut: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(runtime_threads()).enable_all().build() {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `carewell tenants …`.
#[derive(Debug, clap::Subcommand)]
pub enum TenantsCommand {
    /// Prints a new random key (64 hex digits) for TENANT_SECRETS_KEY.
    NewKey,
    /// Reads one line (a secret) from standard input and prints it sealed for `tenant` with
    /// TENANT_SECRETS_KEY.
    Seal {
        /// The tenant's id (its folder under TENANTS_DIR).
        tenant: String,
    },
}

fn tenants(command: TenantsCommand) -> ExitCode {
    use std::io::BufRead;
    match command {
        TenantsCommand::NewKey => {
            println!("{}", crate::tenant::secret::SecretsKey::generate_hex());
            ExitCode::SUCCESS
        }
        TenantsCommand::Seal { tenant } => {
            let sealed = (|| -> Result<String, String> {
                let tenant = crate::tenant::TenantId::parse(&tenant).map_err(|e| e.to_string())?;
                let key = std::env::var("TENANT_SECRETS_KEY")
                    .map_err(|_| crate::tenant::TenantError::KeyMissing.to_string())?;
                let key = crate::tenant::secret::SecretsKey::from_hex(&key).map_err(|e| e.to_string())?;
                eprintln!("the secret to seal for {tenant} (one line on standard input):");
                let mut secret = String::new();
                std::io::stdin().lock().read_line(&mut secret).map_err(|e| format!("reading the secret: {e}"))?;
                let secret = secret.trim_end_matches(['\n', '\r']);
                if secret.is_empty() {
                    return Err("the secret is empty".into());
                }
                Ok(key.seal(&tenant, secret))
            })();
            match sealed {
                Ok(s) => {
                    println!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tenants: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
