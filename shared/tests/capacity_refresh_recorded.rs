//! capacity-create's instance refresh on recorded Auto Scaling answers (the emulator has no
//! instance refreshes): a new AMI rolls the instances; a refresh that failed or was cancelled is
//! started again on a later run while instances still run an older template version; one that
//! is running is never joined by another; a group whose instances are all on the pinned version
//! gets no call at all.

use ecskit::capacity_create::{Rollout, roll};
use serde_json::Value;

mod json_replay;
use json_replay::{Exchange, Replay};

/// DescribeInstanceRefreshes answering one refresh (the newest) in `status`, or none.
fn last_refresh(status: Option<&str>) -> Exchange {
    let members = status
        .map(|s| {
            format!(
                "<member><InstanceRefreshId>r-1</InstanceRefreshId><AutoScalingGroupName>acme-ec2</AutoScalingGroupName><Status>{s}</Status></member>"
            )
        })
        .unwrap_or_default();
    json_replay::ok(
        "DescribeInstanceRefreshes",
        Value::String(format!(
            "<DescribeInstanceRefreshesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
             <DescribeInstanceRefreshesResult><InstanceRefreshes>{members}</InstanceRefreshes></DescribeInstanceRefreshesResult>\
             <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeInstanceRefreshesResponse>"
        )),
    )
}

fn started() -> Exchange {
    json_replay::ok(
        "StartInstanceRefresh",
        Value::String(
            "<StartInstanceRefreshResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
             <StartInstanceRefreshResult><InstanceRefreshId>r-2</InstanceRefreshId></StartInstanceRefreshResult>\
             <ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></StartInstanceRefreshResponse>"
                .into(),
        ),
    )
}

fn rollout(stale: usize, image_change: Option<(&'static str, &'static str)>) -> Rollout<'static> {
    Rollout {
        name: "acme-ec2",
        instances: 2,
        stale,
        image_change,
    }
}

#[tokio::test]
async fn a_new_ami_rolls_the_instances() {
    let replay = Replay::new(vec![last_refresh(Some("Successful")), started()]);
    let ctx = replay.ctx(false);
    roll(&ctx, &rollout(2, Some(("ami-0aaaaaaa", "ami-0bbbbbbb"))))
        .await
        .unwrap();
    assert_eq!(
        ctx.report().actions,
        [
            "roll the 2 instance(s) of Auto Scaling group acme-ec2 from ami-0aaaaaaa to ami-0bbbbbbb (instance refresh)"
        ]
    );
    assert!(replay.left().is_empty(), "{:?}", replay.left());
}

#[tokio::test]
async fn a_failed_or_cancelled_refresh_is_started_again_while_instances_are_behind() {
    for status in ["Failed", "Cancelled", "RollbackSuccessful"] {
        let replay = Replay::new(vec![last_refresh(Some(status)), started()]);
        let ctx = replay.ctx(false);
        roll(&ctx, &rollout(1, None)).await.unwrap();
        assert_eq!(
            ctx.report().actions,
            [format!(
                "roll the 1 instance(s) of Auto Scaling group acme-ec2 still on an older launch template version again (the last instance refresh is {status})"
            )],
            "{status}"
        );
        assert_eq!(
            replay.sent(),
            ["DescribeInstanceRefreshes", "StartInstanceRefresh"]
        );
    }
}

#[tokio::test]
async fn no_refresh_starts_while_one_runs_even_for_a_new_ami() {
    for status in ["InProgress", "Pending", "Cancelling", "RollbackInProgress"] {
        // No StartInstanceRefresh is recorded: sending one would fail the replay.
        let replay = Replay::new(vec![last_refresh(Some(status))]);
        let ctx = replay.ctx(false);
        roll(&ctx, &rollout(2, Some(("ami-0aaaaaaa", "ami-0bbbbbbb"))))
            .await
            .unwrap();
        assert!(ctx.report().actions.is_empty(), "{status}");
        assert_eq!(replay.sent(), ["DescribeInstanceRefreshes"], "{status}");
    }
}

#[tokio::test]
async fn instances_behind_after_a_successful_refresh_or_on_the_pinned_version_are_left() {
    // Behind, but the last refresh succeeded (a setting that is not the AMI changed): no roll.
    let replay = Replay::new(vec![last_refresh(Some("Successful"))]);
    let ctx = replay.ctx(false);
    roll(&ctx, &rollout(1, None)).await.unwrap();
    assert!(ctx.report().actions.is_empty());
    // All on the pinned version: not even a read.
    let replay = Replay::new(vec![]);
    let ctx = replay.ctx(false);
    roll(&ctx, &rollout(0, None)).await.unwrap();
    assert!(replay.sent().is_empty());
}
