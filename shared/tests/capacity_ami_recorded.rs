//! capacity-create's pinned `--ami` on recorded EC2 answers: only an AMI of Amazon (owner alias
//! amazon), of this account, or of an owner the user allowed (`--allow-ami-owner`) is taken,
//! and only when available. (The emulator cannot hold another account's AMI: every AMI of its
//! own is owned by Amazon or by the caller.)

use ecskit::capacity_create::{Arch, check_image};
use serde_json::Value;

mod json_replay;
use json_replay::{Exchange, Replay};

const ACCOUNT: &str = "123456789012";

/// DescribeImages answering one x86_64 EBS AMI of `owner` (with `alias`) in `state`.
fn image(owner: &str, alias: Option<&str>, state: &str) -> Exchange {
    let alias = alias
        .map(|a| format!("<imageOwnerAlias>{a}</imageOwnerAlias>"))
        .unwrap_or_default();
    json_replay::ok(
        "DescribeImages",
        Value::String(format!(
            "<DescribeImagesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>1</requestId>\
             <imagesSet><item><imageId>ami-0aaaaaaa</imageId><imageOwnerId>{owner}</imageOwnerId>{alias}\
             <imageState>{state}</imageState><architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType>\
             </item></imagesSet></DescribeImagesResponse>"
        )),
    )
}

async fn check(answer: Exchange, allowed: &[&str]) -> ecskit::Result<()> {
    let replay = Replay::new(vec![answer]);
    let ctx = replay.ctx(false);
    let allowed: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
    let out = check_image(&ctx, "ami-0aaaaaaa", Arch::X86_64, ACCOUNT, &allowed).await;
    assert_eq!(replay.sent(), ["DescribeImages"]);
    out
}

#[tokio::test]
async fn an_ami_of_another_owner_is_refused_unless_its_owner_is_allowed() {
    let err = check(image("111122223333", None, "available"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert_eq!(
        err.to_string(),
        "--ami ami-0aaaaaaa: owned by account 111122223333, which is neither Amazon nor this account (123456789012)"
    );
    assert!(
        err.render().contains("--allow-ami-owner 111122223333"),
        "{}",
        err.render()
    );
    // Another owner allowed is not this one.
    assert!(
        check(image("111122223333", None, "available"), &["444455556666"])
            .await
            .is_err()
    );
    // The opt-in.
    check(image("111122223333", None, "available"), &["111122223333"])
        .await
        .unwrap();
    // An alias other than amazon is not Amazon.
    assert!(
        check(
            image("111122223333", Some("aws-marketplace"), "available"),
            &[]
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn amazons_and_this_accounts_available_amis_are_taken() {
    check(image("137112412989", Some("amazon"), "available"), &[])
        .await
        .unwrap();
    check(image(ACCOUNT, None, "available"), &[]).await.unwrap();
    let err = check(image(ACCOUNT, None, "pending"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{}", err.render());
    assert_eq!(
        err.to_string(),
        "--ami ami-0aaaaaaa: its state is pending, not available"
    );
}
