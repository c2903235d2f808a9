//! The response cache's shared level (`[cache] shared = true`) over the cluster's redis-server:
//! a deterministic request answered by one proxy is a hit on the others (the mock sees one
//! call), with the same answer; Redis down is a miss, never an error; a hit that a watching
//! plugin escalates is deleted from Redis too, so no other replica serves it again.

use switchyard_tests::client;
use switchyard_tests::harness::plugins_section;
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::redis::RedisServer;
use switchyard_tests::wasm;

use crate::support::{Cluster, body};

/// The cache-policy plugin (it caches deterministic requests: temperature 0) and the shared
/// level, with a timeout generous enough for a loaded 2-core test machine.
fn cache_config() -> (tempfile::TempDir, String) {
    // The longest deadline allowed: on a loaded machine a plugin call past the default 5 ms
    // would skip the cache (failure open) and the test would see a miss.
    let table = "[[plugin]]\nname = \"cache\"\nfile = \"cache_policy.wasm\"\nfailure = \"open\"\n\
                 timeout_ms = 1000\n";
    let (dir, plugins) = plugins_section(&[("cache_policy.wasm", wasm::CACHE_POLICY)], table);
    let cache = "[cache]\nshared = true\nshared_timeout_ms = 5000\n";
    (dir, format!("\n{cache}\n{plugins}"))
}

fn deterministic() -> String {
    let mut request: serde_json::Value = serde_json::from_str(&body(false, 16)).unwrap();
    request["temperature"] = 0.into();
    request.to_string()
}

/// [`deterministic`] with a prompt whose answer (`local heard: ...`) the watcher escalates.
fn escalated_by_the_watcher() -> String {
    let mut request: serde_json::Value = serde_json::from_str(&deterministic()).unwrap();
    request["messages"][0]["content"] = "ESCALATE this".into();
    request.to_string()
}

/// `switchyard_cache_shared_total{result}` on proxy `i`.
async fn shared(cluster: &Cluster, i: usize, result: &str) -> u64 {
    let metrics = client::get(&cluster.proxy(i).admin_url("/metrics")).await.text();
    let line = format!("switchyard_cache_shared_total{{result=\"{result}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(line.as_str())?.parse().ok()).unwrap_or(0)
}

/// Waits until proxy `i` counts `n` shared-level `result`s (writes and removals are off the
/// request path).
async fn counted(cluster: &Cluster, i: usize, result: &str, n: u64) {
    for _ in 0..3000 {
        if shared(cluster, i, result).await == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("proxy {i} never counted {n} shared {result}");
}

/// Waits until proxy `i` has written `n` answers to Redis.
async fn stored(cluster: &Cluster, i: usize, n: u64) {
    counted(cluster, i, "stored", n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_stored_by_one_proxy_is_a_hit_on_the_others() {
    let Some(redis) = RedisServer::start().await else { return };
    let (_dir, extra) = cache_config();
    let policies = [Some("closed"); 3];
    let cluster =
        Cluster::start_extra(Some(redis), "requests_per_minute = 1000", &policies, &extra)
            .await
            .unwrap();
    let first = cluster.chat(0, &deterministic()).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-switchyard-cache"), "miss");
    stored(&cluster, 0, 1).await;
    for i in [1, 2] {
        let reply = cluster.chat(i, &deterministic()).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("x-switchyard-cache"), "hit", "proxy {i}");
        assert_eq!(reply.header("x-switchyard-upstream"), "local");
        assert_eq!(reply.json(), first.json(), "the same answer");
        assert_eq!(shared(&cluster, i, "hit").await, 1, "proxy {i} found it in Redis");
    }
    assert_eq!(cluster.upstream.hits(), 1, "the mock answered once for the three proxies");
    // Now in proxy 1's own cache: no second trip to Redis.
    assert_eq!(cluster.chat(1, &deterministic()).await.header("x-switchyard-cache"), "hit");
    assert_eq!(shared(&cluster, 1, "hit").await, 1);
    assert_eq!(shared(&cluster, 1, "miss").await, 0);

    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_is_a_miss_never_an_error() {
    let Some(redis) = RedisServer::start().await else { return };
    let (_dir, extra) = cache_config();
    // `open`: the ledger admits without Redis, so the request shows what the cache does alone.
    let cluster =
        Cluster::start_extra(Some(redis), "requests_per_minute = 1000", &[Some("open")], &extra)
            .await
            .unwrap();
    let mut cluster = cluster;
    cluster.redis.as_mut().unwrap().kill().await;
    let reply = cluster.chat(0, &deterministic()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-cache"), "miss");
    assert_eq!(cluster.upstream.hits(), 1);
    // The failed lookup is counted (and the store after the answer, off the request path).
    assert!(shared(&cluster, 0, "error").await >= 1);
    assert_eq!(shared(&cluster, 0, "hit").await, 0);
    // This proxy's own cache still serves.
    assert_eq!(cluster.chat(0, &deterministic()).await.header("x-switchyard-cache"), "hit");
    assert_eq!(cluster.upstream.hits(), 1);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hit_that_is_escalated_is_deleted_from_redis_too() {
    let Some(redis) = RedisServer::start().await else { return };
    // Proxy 1 also runs the watcher, which escalates answers saying ESCALATE to `broken` (a
    // 500): the stored answer cannot be served there, and nothing replaces it.
    let broken = MockUpstream::start("broken", Behavior::Status(500)).await;
    let (_dir, extra) = cache_config();
    let files = [("cache_policy.wasm", wasm::CACHE_POLICY), ("watcher.wasm", wasm::WATCHER)];
    let tables = "[[plugin]]\nname = \"cache\"\nfile = \"cache_policy.wasm\"\nfailure = \"open\"\n\
                  timeout_ms = 1000\n\n\
                  [[plugin]]\nname = \"watcher\"\nfile = \"watcher.wasm\"\nfailure = \"closed\"\n\
                  timeout_ms = 1000\n\
                  config = { escalate_to = \"broken\" }\n";
    let (_watcher_dir, plugins) = plugins_section(&files, tables);
    let upstream = format!(
        "\n[[upstream]]\nname = \"broken\"\nbase_url = \"{}\"\nbackoff_ms = 1\n",
        broken.base_url()
    );
    let cache = "[cache]\nshared = true\nshared_timeout_ms = 5000\n";
    let watching = format!("\n{cache}\n{plugins}\n{upstream}");
    let proxies =
        [(Some("closed"), extra.as_str()), (Some("closed"), &watching), (Some("closed"), &extra)];
    let cluster =
        Cluster::start_each(Some(redis), "requests_per_minute = 1000", &proxies).await.unwrap();

    let first = cluster.chat(0, &escalated_by_the_watcher()).await;
    assert_eq!(first.status, 200, "{}", first.text());
    stored(&cluster, 0, 1).await;
    // Proxy 1 finds it in Redis; its watcher escalates the hit, to an upstream that fails.
    let escalated = cluster.chat(1, &escalated_by_the_watcher()).await;
    assert_eq!(shared(&cluster, 1, "hit").await, 1, "{}", escalated.text());
    assert!(broken.hits() >= 1, "escalated");
    counted(&cluster, 1, "removed", 1).await;
    // Gone from Redis: proxy 2 misses and asks the upstream again.
    let again = cluster.chat(2, &escalated_by_the_watcher()).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.header("x-switchyard-cache"), "miss");
    assert_eq!(shared(&cluster, 2, "miss").await, 1);
    assert_eq!(cluster.upstream.hits(), 2);
    cluster.stop().await;
}
