//! image-push: tag a local image and push it to ECR through the Docker Engine API.
//! (Filled in by the image-push issue.)
