//! capacity-create's instance refresh on recorded Auto Scaling answers (the emulator has no
//! instance refreshes): a new AMI rolls the instances, to the template's exact version (desired
//! configuration, skipping instances already on it); a refresh that failed or was cancelled for
//! an older version is superseded on a later run while instances still run an older version;
//! one that failed for this very version is not restarted (a warning, no change) unless
//! --retry-refresh; one that is running is never joined by another; a group whose instances are
//! all on the pinned version gets no call at all.

use ecskit::capacity_create::{GroupSpec, Rollout, roll};
use serde_json::Value;

mod json_replay;
use json_replay::{Exchange, Replay};

/// DescribeInstanceRefreshes answering one refresh (the newest) in `status`, or none.
fn last_refresh(status: Option<&str>) -> Exchange {
    last_refresh_for(status, None)
}

/// The same, the refresh started for template `lt-0abc` at `version`.
fn last_refresh_for(status: Option<&str>, version: Option<i64>) -> Exchange {
    let desired = version
        .map(|v| {
            format!(
                "<DesiredConfiguration><LaunchTemplate><LaunchTemplateId>lt-0abc</LaunchTemplateId><Version>{v}</Version></LaunchTemplate></DesiredConfiguration>"
            )
        })
        .unwrap_or_default();
    let members = status
        .map(|s| {
            format!(
                "<member><InstanceRefreshId>r-1</InstanceRefreshId><AutoScalingGroupName>acme-ec2</AutoScalingGroupName><Status>{s}</Status>{desired}</member>"
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

/// The group at template `lt-0abc` version 3.
fn spec() -> &'static GroupSpec {
    Box::leak(Box::new(GroupSpec {
        min: 0,
        max: 2,
        desired: None,
        subnets: vec!["subnet-0a1b2c3d".into()],
        template_id: "lt-0abc".into(),
        version: 3,
        instance_types: vec!["t3.small".into()],
        spot: false,
    }))
}

fn rollout(stale: usize, image_change: Option<(&'static str, &'static str)>) -> Rollout<'static> {
    Rollout {
        name: "acme-ec2",
        spec: spec(),
        instances: 2,
        stale,
        image_change,
        retry: false,
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
    // To the template's exact version, skipping the instances already on it.
    let start = &replay.bodies()[1];
    for part in [
        "DesiredConfiguration.LaunchTemplate.LaunchTemplateId=lt-0abc",
        "DesiredConfiguration.LaunchTemplate.Version=3",
        "Preferences.SkipMatching=true",
    ] {
        assert!(start.contains(part), "{part} not in {start}");
    }
}

#[tokio::test]
async fn a_failed_or_cancelled_refresh_of_an_older_version_is_superseded_while_instances_are_behind()
 {
    for status in ["Failed", "Cancelled", "RollbackSuccessful"] {
        // For version 2 (or started without a desired configuration): this run's version 3
        // supersedes it.
        for version in [Some(2), None] {
            let replay = Replay::new(vec![last_refresh_for(Some(status), version), started()]);
            let ctx = replay.ctx(false);
            roll(&ctx, &rollout(1, None)).await.unwrap();
            assert_eq!(
                ctx.report().actions,
                [format!(
                    "roll the 1 instance(s) of Auto Scaling group acme-ec2 still on an older launch template version to version 3 (the last instance refresh is {status})"
                )],
                "{status}"
            );
            assert_eq!(
                replay.sent(),
                ["DescribeInstanceRefreshes", "StartInstanceRefresh"]
            );
        }
    }
}

#[tokio::test]
async fn a_refresh_that_failed_for_this_version_is_not_restarted_without_retry_refresh() {
    for status in ["Failed", "Cancelled", "RollbackSuccessful"] {
        // No StartInstanceRefresh is recorded: sending one would fail the replay.
        let replay = Replay::new(vec![last_refresh_for(Some(status), Some(3))]);
        let ctx = replay.ctx(false);
        roll(&ctx, &rollout(1, None)).await.unwrap();
        assert!(ctx.report().actions.is_empty(), "{status}");
        assert!(!ctx.report().changed, "{status}");
        assert_eq!(replay.sent(), ["DescribeInstanceRefreshes"], "{status}");
    }
}

#[tokio::test]
async fn retry_refresh_restarts_a_refresh_that_failed_for_this_version() {
    for status in ["Failed", "Cancelled", "RollbackSuccessful"] {
        let replay = Replay::new(vec![last_refresh_for(Some(status), Some(3)), started()]);
        let ctx = replay.ctx(false);
        let r = Rollout {
            retry: true,
            ..rollout(1, None)
        };
        roll(&ctx, &r).await.unwrap();
        assert_eq!(
            ctx.report().actions,
            [format!(
                "roll the 1 instance(s) of Auto Scaling group acme-ec2 still on an older launch template version again (--retry-refresh) (the last instance refresh is {status})"
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
