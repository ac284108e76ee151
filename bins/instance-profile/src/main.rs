//! instance-profile: create or converge the ECS container-instance role and its instance profile.
fn main() -> std::process::ExitCode {
    ecskit::cli::run_step::<ecskit::instance_profile::InstanceProfile>()
}
