//! The harness itself: the clients the shared crate builds reach the emulator, and the local
//! registry's login is the one inside the emulator's ECR token.

use std::io::{Read, Write};

use base64::Engine;
use ecskit_testkit::local_stack;

#[tokio::test]
async fn a_shared_client_reaches_the_emulator() {
    let stack = local_stack();
    let ctx = stack.ctx(false).await;
    assert_eq!(ctx.account_id().await.unwrap(), "123456789012");
    // Asked once, cached after that.
    assert_eq!(ctx.account_id().await.unwrap(), "123456789012");
    let calls = ctx.calls().calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].operation, "GetCallerIdentity");
    assert!(ctx.calls().mutating().is_empty());
}

#[tokio::test]
async fn dry_run_gate_announces_and_refuses() {
    let stack = local_stack();
    let ctx = stack.ctx(true).await;
    assert!(!ctx.apply("create bucket demo"));
    let report = ctx.report();
    assert!(report.changed && report.dry_run);
    assert_eq!(report.actions, vec!["create bucket demo".to_string()]);
}

/// `GET /v2/` on the registry with an optional basic-auth header; returns the status code.
fn registry_status(registry: &str, auth: Option<(&str, &str)>) -> u16 {
    let mut s = std::net::TcpStream::connect(registry).unwrap();
    let header = auth
        .map(|(u, p)| {
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
        .unwrap_or_default();
    write!(
        s,
        "GET /v2/ HTTP/1.0\r\nHost: {registry}\r\n{header}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn the_registry_accepts_the_ecr_token_and_refuses_others() {
    let stack = local_stack();
    let ctx = stack.ctx(false).await;
    let auth = ctx.ecr().get_authorization_token().send().await.unwrap();
    let token = auth.authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_string();
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap(),
    )
    .unwrap();
    let (user, password) = decoded.split_once(':').unwrap();
    assert_eq!(registry_status(&stack.registry, None), 401);
    assert_eq!(registry_status(&stack.registry, Some((user, "wrong"))), 401);
    assert_eq!(
        registry_status(&stack.registry, Some((user, password))),
        200
    );
}
