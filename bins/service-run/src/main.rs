//! service-run: create or update an ECS service and watch it until it is stable or has failed.
fn main() -> std::process::ExitCode {
    ecskit::cli::run_step::<ecskit::service_run::ServiceRun>()
}
