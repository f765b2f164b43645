//! The `stepwise` binary.

fn main() -> std::process::ExitCode {
    stepwise_runtime::cli::main()
}
