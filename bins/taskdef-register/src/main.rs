//! taskdef-register: register an ECS task definition exactly as written.
fn main() -> std::process::ExitCode {
    ecskit::cli::main(ecskit::taskdef_register::run)
}
