//! image-push: tag a local image and push it to ECR through the Docker Engine API.
fn main() -> std::process::ExitCode {
    ecskit::cli::run_step::<ecskit::image_push::ImagePush>()
}
