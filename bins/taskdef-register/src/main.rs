//! taskdef-register: register an ECS task definition exactly as written.
fn main() -> std::process::ExitCode {
    ecskit::cli::run_step::<ecskit::taskdef_register::TaskdefRegister>()
}
