//! CloudWatch Logs read the way ECS writes them, against the emulator: the stream ECS would
//! name for a task's container is read back (last lines for the failure report), and several
//! tasks' streams are merged in time order (`service-run --logs`).

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration, LogDriver, TaskDefinition};
use ecskit::service_run::logs::{self, Tail};
use ecskit_testkit::local_stack;

const GROUP: &str = "/ecs/web";
const TASK_A: &str =
    "arn:aws:ecs:us-west-2:123456789012:task/demo/aaaaaaaa00000000000000000000000a";
const TASK_B: &str =
    "arn:aws:ecs:us-west-2:123456789012:task/demo/bbbbbbbb00000000000000000000000b";

fn task_definition() -> TaskDefinition {
    TaskDefinition::builder()
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .log_configuration(
                    LogConfiguration::builder()
                        .log_driver(LogDriver::Awslogs)
                        .options("awslogs-group", GROUP)
                        .options("awslogs-stream-prefix", "ecs")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
}

/// Now, in CloudWatch's milliseconds: events older than 14 days are refused.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000
}

async fn put(ctx: &ecskit::aws::Ctx, stream: &str, events: &[(i64, &str)]) {
    let cw = ctx.logs();
    let _ = cw
        .create_log_stream()
        .log_group_name(GROUP)
        .log_stream_name(stream)
        .send()
        .await;
    cw.put_log_events()
        .log_group_name(GROUP)
        .log_stream_name(stream)
        .set_log_events(Some(
            events
                .iter()
                .map(|(t, m)| {
                    InputLogEvent::builder()
                        .timestamp(*t)
                        .message(*m)
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_stream_ecs_names_is_read_back_into_a_tail() {
    let stack = local_stack();
    let ctx = stack.ctx(false).await;
    ctx.logs()
        .create_log_group()
        .log_group_name(GROUP)
        .send()
        .await
        .unwrap();
    let now = now_ms();
    let lines: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
    let events: Vec<(i64, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (now + i as i64, l.as_str()))
        .collect();
    put(&ctx, "ecs/app/aaaaaaaa00000000000000000000000a", &events).await;

    let dest = logs::destinations(&task_definition());
    let tail = logs::tail(&ctx, dest["app"].as_ref(), "app", TASK_A, 5).await;
    assert_eq!(
        tail,
        Tail::Lines(vec![
            "line 26".into(),
            "line 27".into(),
            "line 28".into(),
            "line 29".into(),
            "line 30".into()
        ])
    );

    // Another task's stream does not exist: one line of explanation, not an error.
    let missing = logs::tail(&ctx, dest["app"].as_ref(), "app", TASK_B, 5).await;
    match missing {
        Tail::Unavailable(why) => assert!(
            why.contains("no log stream ecs/app/bbbbbbbb00000000000000000000000b in /ecs/web"),
            "{why}"
        ),
        other => panic!("expected no stream, got {other:?}"),
    }
}

#[tokio::test]
async fn two_tasks_streams_are_merged_in_time_order() {
    let stack = local_stack();
    let ctx = stack.ctx(false).await;
    ctx.logs()
        .create_log_group()
        .log_group_name(GROUP)
        .send()
        .await
        .unwrap();
    let t = now_ms();
    put(
        &ctx,
        "ecs/app/aaaaaaaa00000000000000000000000a",
        &[(t, "a1"), (t + 20, "a2")],
    )
    .await;
    put(
        &ctx,
        "ecs/app/bbbbbbbb00000000000000000000000b",
        &[(t + 10, "b1"), (t + 30, "b2")],
    )
    .await;

    let (sources, missing) =
        logs::sources(&task_definition(), &[TASK_A.into(), TASK_B.into()], None);
    assert!(missing.is_empty());
    let merged = logs::read_since(&ctx, &sources, t).await.unwrap();
    let rendered: Vec<String> = merged.iter().map(|l| l.render()).collect();
    assert_eq!(
        rendered,
        [
            "[aaaaaaaa app] a1",
            "[bbbbbbbb app] b1",
            "[aaaaaaaa app] a2",
            "[bbbbbbbb app] b2"
        ]
    );

    // A later poll starting at the last timestamp prints only what is new.
    let mut seen = merged.iter().map(|l| l.id.clone()).collect();
    put(
        &ctx,
        "ecs/app/aaaaaaaa00000000000000000000000a",
        &[(t + 40, "a3")],
    )
    .await;
    let next = logs::read_since(&ctx, &sources, t + 30).await.unwrap();
    let new: Vec<String> = logs::unseen(next, &mut seen)
        .iter()
        .map(|l| l.render())
        .collect();
    assert_eq!(new, ["[aaaaaaaa app] a3"]);
}
