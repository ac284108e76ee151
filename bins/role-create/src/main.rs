//! role-create: create or converge the ECS task role and execution role.
fn main() -> std::process::ExitCode {
    ecskit::cli::run_step::<ecskit::role_create::RoleCreate>()
}
