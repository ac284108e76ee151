//! Test support shared by the image-push tests (library and CLI): an image built from scratch
//! on the local engine (nothing is pulled), the credentials decoded from the emulator's ECR
//! token, and a look at the registry's manifests without the code under test.
#![allow(dead_code)]

use std::io::{Read, Write};

use base64::Engine as _;
use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

/// A name no other test (or earlier run) used: the registry keeps its contents across tests.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// Builds `name:tag` `FROM scratch` with two files of unique content (two layers) through the
/// legacy builder, and returns the reference.
pub async fn build_scratch_image(name: &str, tag: &str) -> String {
    let docker = Docker::connect_with_defaults()
        .expect("DOCKER_HOST")
        // bollard's default is 2 minutes a request: a build on a busy 2-core machine can take
        // longer, and a slow engine is not what these tests test.
        .with_timeout(std::time::Duration::from_secs(600))
        .negotiate_version()
        .await
        .expect("the local stack's Docker Engine answers");
    let mut context = tar::Builder::new(Vec::new());
    let files: [(&str, String); 3] = [
        (
            "Dockerfile",
            "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n".to_string(),
        ),
        (
            "a.txt",
            format!("first layer of {name} {}\n", uuid::Uuid::new_v4()),
        ),
        (
            "b.txt",
            format!("second layer of {name} {}\n", uuid::Uuid::new_v4()).repeat(50),
        ),
    ];
    for (path, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        context
            .append_data(&mut header, path, body.as_bytes())
            .unwrap();
    }
    let context = context.into_inner().unwrap();
    let reference = format!("{name}:{tag}");
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(&reference)
        .rm(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        item.unwrap_or_else(|e| panic!("building {reference}: {e}"));
    }
    reference
}

/// Removes a local image (best effort), so tests leave the shared engine tidy.
pub async fn remove_image(reference: &str) {
    if let Ok(docker) = Docker::connect_with_defaults()
        && let Ok(docker) = docker.negotiate_version().await
    {
        let _ = docker
            .remove_image(
                reference,
                Some(bollard::query_parameters::RemoveImageOptions {
                    force: true,
                    ..Default::default()
                }),
                None,
            )
            .await;
    }
}

/// The emulator's ECR token as the SDK returns it, and the `USER:PASSWORD` it decodes to.
pub async fn ecr_token(stack: &ecskit_testkit::LocalStack) -> (String, String) {
    let ctx = stack.ctx(false).await;
    let out = ctx
        .ecr()
        .get_authorization_token()
        .send()
        .await
        .expect("GetAuthorizationToken");
    let token = out.authorization_data.unwrap()[0]
        .authorization_token
        .clone()
        .unwrap();
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&token)
            .unwrap(),
    )
    .unwrap();
    (token, decoded)
}

/// The digest the registry serves for `repo:tag` (`Docker-Content-Digest`), asked directly over
/// HTTP with basic auth, or the HTTP status when it serves none.
pub fn registry_manifest_digest(
    registry: &str,
    repo: &str,
    tag: &str,
    user_password: &str,
) -> Result<String, u16> {
    let mut s = std::net::TcpStream::connect(registry).expect("connect to the registry");
    let auth = base64::engine::general_purpose::STANDARD.encode(user_password);
    write!(
        s,
        "HEAD /v2/{repo}/manifests/{tag} HTTP/1.0\r\nHost: {registry}\r\nAuthorization: Basic {auth}\r\n\
         Accept: application/vnd.docker.distribution.manifest.v2+json\r\n\
         Accept: application/vnd.oci.image.manifest.v1+json\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if status != 200 {
        return Err(status);
    }
    response
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
        .ok_or(status)
}
