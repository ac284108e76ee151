//! config-upload: configuration files to S3, encrypted, checksummed, only what changed.
fn main() -> std::process::ExitCode {
    ecskit::cli::run_step::<ecskit::config_upload::ConfigUpload>()
}
