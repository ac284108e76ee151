//! task-run: run one task of a task definition on ECS (or on the local Docker Engine) and wait until it stops.
fn main() -> std::process::ExitCode {
    ecskit::cli::run_step::<ecskit::task_run::TaskRun>()
}
