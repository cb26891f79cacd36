//! `agentplane`: the origin server and its tools.

fn main() -> std::process::ExitCode {
    agentplane_origin::cli::main()
}
