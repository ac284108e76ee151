//! config-upload: configuration files to S3, encrypted, checksummed, only what changed.
fn main() -> std::process::ExitCode {
    ecskit::cli::main(ecskit::config_upload::run)
}
