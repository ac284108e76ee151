//! instance-profile: create or converge the ECS container-instance role and its instance profile.
fn main() -> std::process::ExitCode {
    ecskit::cli::main(ecskit::instance_profile::run)
}
