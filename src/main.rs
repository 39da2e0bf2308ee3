//! The `carewell` binary: see [`carewell::cli`] for the subcommands.

/// mimalloc rather than the system allocator: a turn allocates many small strings and JSON
/// values; measured with the load generator it cut the server's CPU per message by about 6% and
/// raised throughput by about 8% (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    carewell::cli::main()
}
