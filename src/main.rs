//! The `carewell` binary: see [`carewell::cli`] for the subcommands.

fn main() -> std::process::ExitCode {
    carewell::cli::main()
}
