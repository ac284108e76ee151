//! image-push: tag a local image and push it to ECR through the Docker Engine API.
fn main() -> std::process::ExitCode {
    ecskit::cli::main(ecskit::image_push::run)
}
