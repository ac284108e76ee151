//! capacity-create: create or converge EC2 capacity (launch template, Auto Scaling group, capacity provider) for a cluster.
fn main() -> std::process::ExitCode {
    ecskit::cli::run_step::<ecskit::capacity_create::CapacityCreate>()
}
