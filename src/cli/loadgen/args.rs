//! The options of `carewell loadgen`.

/// How customers answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Buttons and list rows wherever offered (names and car details are typed).
    Buttons,
    /// Everything typed.
    Typed,
    /// Half the customers each way.
    Mixed,
    /// Each customer only says hello and gets the menu: many conversations of one message each
    /// (for the memory a process needs with many conversations; no booking reaches the ERP).
    Greet,
}

/// Options of `loadgen`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Journeys to complete (one customer each).
    #[arg(long, default_value_t = 200)]
    pub conversations: usize,
    /// Customers talking at the same time.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// How customers answer.
    #[arg(long, value_enum, default_value = "mixed")]
    pub mode: Mode,
    /// A PostgreSQL URL (a fresh database is created on that server); SQLite in a temporary file
    /// when absent.
    #[arg(long)]
    pub postgres: Option<String>,
    /// Server processes sharing the database (PostgreSQL only for more than one).
    #[arg(long, default_value_t = 1)]
    pub servers: usize,
    /// Configure a fake LLM answering after this many milliseconds.
    #[arg(long)]
    pub llm_latency_ms: Option<u64>,
    /// Extra conversations that each wait on the LLM while the journeys run.
    #[arg(long, default_value_t = 0)]
    pub llm_waiters: usize,
    /// Seconds to wait for one reply before counting an error.
    #[arg(long, default_value_t = 30)]
    pub reply_timeout: u64,
    /// Print the report as JSON as well.
    #[arg(long)]
    pub json: bool,
    /// Run the journeys against a do-nothing bot instead of the service (`cli::baseline`): the
    /// ceiling of this machine for this load generator, to print beside the service's numbers.
    #[arg(long, conflicts_with_all = ["postgres", "llm_latency_ms", "llm_waiters"])]
    pub baseline: bool,
    /// The servers' log filter (`RUST_LOG` syntax, for instance `info`); when given, their logs
    /// are kept in the work directory (printed at the end) instead of being removed.
    #[arg(long)]
    pub server_log: Option<String>,
    /// Every this many milliseconds, kill one server process (SIGKILL, in turn) and start it
    /// again on its port; webhooks it refused meanwhile are delivered again, as WhatsApp does.
    /// The servers' leases and outbox claims run out after 2 s instead of 30 so that the journeys
    /// a killed process held go on soon. The check at the end is the same: every journey
    /// completed, every booking in the ERP once.
    #[arg(long, conflicts_with = "baseline")]
    pub kill_every_ms: Option<u64>,
    /// Each server process's runtime threads (`RUNTIME_THREADS`); by default this machine's
    /// cores shared out between the processes, at least one each.
    #[arg(long)]
    pub server_threads: Option<usize>,
    /// Each server process's CPU budget in cores (for instance `0.2`), as a container's CPU
    /// limit gives an instance: each process runs in a control group of its own
    /// (`cpu_limit::CpuGroup`; Linux, with write access to the cgroup file system). For
    /// measuring scale-out where the database and the load generator share the machine with
    /// the servers: with a fixed budget per instance, more instances have more CPU between them.
    #[arg(long, value_parser = parse_cores)]
    pub server_cpu_limit: Option<f64>,
}

/// A positive, finite number of cores, such as `0.25` or `1`.
fn parse_cores(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(cores) if cores.is_finite() && cores > 0.0 => Ok(cores),
        _ => Err(format!("`{text}` is not a CPU budget: give a positive number of cores, such as 0.25")),
    }
}

/// Each server process's runtime threads: as asked, or the cores shared out between the
/// processes (at least one each).
pub(super) fn server_threads(args: &LoadArgs) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    args.server_threads.unwrap_or(cores / args.servers.max(1)).max(1)
}
