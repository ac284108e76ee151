//! The demo's application, in the seeds' words: at start it reads its config files from
//! `s3://BUCKET/PREFIX/` (`CONFIG_URI`) through the standard credential chain, which inside an
//! ECS task (or `task-run --local`) is the task role's credentials endpoint. It says whose
//! credentials it got (the role, never the keys), what it read (names and sizes, never the
//! values), that it is refused outside its prefix, and then serves on its port.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() {
    let config_uri = std::env::var("CONFIG_URI").unwrap_or_default();
    let Some((bucket, prefix)) = config_uri
        .strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .map(|(b, p)| (b.to_string(), p.trim_end_matches('/').to_string()))
    else {
        println!("CONFIG_URI is not s3://BUCKET/PREFIX/ ({config_uri:?}): nothing to read");
        return serve().await;
    };
    // The seeds' `curl 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`: whose
    // credentials the endpoint hands out (the role, never the keys).
    match endpoint_role().await {
        Some(Ok(role)) => {
            println!("credentials from the container credentials endpoint: role {role}")
        }
        Some(Err(e)) => println!("the container credentials endpoint did not answer: {e}"),
        None => println!("no container credentials endpoint: using the default credential chain"),
    }
    let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    if let Ok(id) = aws_sdk_sts::Client::new(&conf)
        .get_caller_identity()
        .send()
        .await
    {
        println!("signed in as {}", id.arn().unwrap_or("(no ARN)"));
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            // Emulators (AWS_ENDPOINT_URL) have no per-bucket DNS names.
            .force_path_style(std::env::var_os("AWS_ENDPOINT_URL").is_some())
            .build(),
    );
    for name in ["global.properties", "keys.properties"] {
        let key = format!("{prefix}/{name}");
        match read(&s3, &bucket, &key).await {
            Ok(text) => {
                let settings = text
                    .lines()
                    .filter(|l| l.contains('=') && !l.trim_start().starts_with('#'))
                    .count();
                println!(
                    "read s3://{bucket}/{key}: {} bytes, {settings} settings (values not shown)",
                    text.len()
                );
            }
            Err(e) => println!("could not read s3://{bucket}/{key}: {e}"),
        }
    }
    // Least privilege, observed: outside its prefix the task role is refused.
    let outside = [
        (
            bucket.clone(),
            "another-app/config/global.properties".to_string(),
        ),
        (
            format!("{bucket}-other"),
            format!("{prefix}/global.properties"),
        ),
    ];
    for (b, k) in outside {
        match read(&s3, &b, &k).await {
            Ok(_) => println!("NOT refused: read s3://{b}/{k}"),
            Err(e) => println!("refused: s3://{b}/{k} ({e})"),
        }
    }
    let write = s3
        .put_object()
        .bucket(&bucket)
        .key(format!("{prefix}/written-by-the-app"))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    match write {
        Ok(_) => println!("NOT refused: wrote into s3://{bucket}/{prefix}/"),
        Err(e) => println!(
            "refused: writing into s3://{bucket}/{prefix}/ ({})",
            code(&e)
        ),
    }
    serve().await
}

/// GETs the credentials endpoint as ECS's agent serves it (the RELATIVE_URI form at
/// 169.254.170.2, or FULL_URI with its authorization token) and returns the `RoleArn`.
async fn endpoint_role() -> Option<Result<String, String>> {
    let (url, token) = match std::env::var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        Ok(rel) => (format!("http://169.254.170.2{rel}"), None),
        Err(_) => (
            std::env::var("AWS_CONTAINER_CREDENTIALS_FULL_URI").ok()?,
            std::env::var("AWS_CONTAINER_AUTHORIZATION_TOKEN").ok(),
        ),
    };
    Some(get_role_arn(&url, token.as_deref()).await)
}

async fn get_role_arn(url: &str, token: Option<&str>) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or("not an http:// URI")?;
    let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let auth = token
        .map(|t| format!("Authorization: {t}\r\n"))
        .unwrap_or_default();
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {hostport}\r\n{auth}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(body).map_err(|_| {
        format!(
            "the answer is not JSON ({})",
            text.lines().next().unwrap_or_default()
        )
    })?;
    doc["RoleArn"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "the answer names no RoleArn".to_string())
}

async fn read(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String, String> {
    let obj = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| code(&e))?;
    let bytes = obj
        .body
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .into_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// An SDK error's code (AccessDenied, NoSuchKey ...), never its request details.
fn code<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .map(str::to_string)
        .unwrap_or_else(|| "no answer".to_string())
}

/// Answers `ok` on PORT (8080), as the task's port mapping says, until it is stopped.
async fn serve() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_string());
    let listener = match tokio::net::TcpListener::bind(format!("0.0.0.0:{port}")).await {
        Ok(l) => l,
        Err(e) => {
            println!("cannot listen on port {port}: {e}");
            return;
        }
    };
    println!("serving on port {port}");
    let stop = async {
        #[cfg(unix)]
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => {
                println!("stopping (SIGTERM)");
                return;
            }
            accepted = listener.accept() => {
                if let Ok((mut conn, _)) = accepted {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 1024];
                        let _ = tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf)).await;
                        let _ = conn
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
                            .await;
                    });
                }
            }
        }
    }
}
