//! instance-profile: create or converge the ECS container-instance role and its instance profile.
fn main() -> std::process::ExitCode {
    ecskit::cli::main(ecskit::iam::instance_profile::run)
}
