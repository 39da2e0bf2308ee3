//! The `carewell` binary: see [`carewell::cli`] for the subcommands.

/// mimalloc rather than the system allocator: a turn allocates many small strings and JSON
/// values; measured with the load generator it cut the server's CPU per message by about 6% and
/// raised throughput by about 8% (BENCHMARKS.md). Built with mimalloc's `override` feature, so
/// the bundled SQLite's own `malloc`/`free` (its page caches, statements) use it too instead of
/// glibc's (whose `malloc_consolidate` and `_int_free` were 11% of the process in `perf`): 5 – 8%
/// more messages a second on SQLite in an A/B run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    carewell::cli::main()
}
