//! The `s3-connector` binary: see `s3-connector --help`.

fn main() -> std::process::ExitCode {
    s3_connector::cli::main()
}
