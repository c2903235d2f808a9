//! Redis killed mid-run: a proxy with `on_unavailable = "closed"` refuses with 503
//! `ledger_unavailable`, one with `"open"` admits unchecked; restarted (empty), it is used again.

use switchyard_tests::redis::RedisServer;

use crate::support::{Cluster, body};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_redis_is_answered_as_on_unavailable_says() {
    let Some(redis) = RedisServer::start().await else { return };
    let policies = [Some("closed"), Some("open")];
    let cluster =
        Cluster::start_with(Some(redis), "requests_per_minute = 1000", &policies).await.unwrap();
    for i in 0..2 {
        let reply = cluster.chat(i, &body(false, 16)).await;
        assert_eq!(reply.status, 200, "before the outage: {}", reply.text());
    }
    let mut cluster = cluster;
    cluster.redis.as_mut().unwrap().kill().await;

    let closed = cluster.chat(0, &body(false, 16)).await;
    assert_eq!(closed.status, 503, "{}", closed.text());
    assert_eq!(closed.json()["error"]["code"], "ledger_unavailable");
    assert_eq!(closed.header("retry-after"), "1");
    let open = cluster.chat(1, &body(true, 16)).await;
    assert_eq!(open.status, 200, "{}", open.text());
    assert_eq!(cluster.upstream.hits(), 3, "only the open proxy's request left");
    let unchecked = cluster.usage(1).await["totals_since_start"]["unchecked"].clone();
    assert_eq!(unchecked, 1, "counted as admitted unchecked");

    // Restarted empty on the same address, Redis is used again: the dead pooled connections are
    // replaced, and the limits count from zero (docs/limits.md, "Restart losing state").
    cluster.redis.as_mut().unwrap().restart().await;
    cluster.fresh_window().await;
    for i in 0..2 {
        let reply = cluster.chat(i, &body(false, 16)).await;
        assert_eq!(reply.status, 200, "after the restart: {}", reply.text());
    }
    let window = cluster.usage(0).await["window"].clone();
    assert_eq!(window["requests_this_minute"], 2, "{window}");
    cluster.stop().await;
}
