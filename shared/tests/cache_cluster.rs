//! The Redis adapter in cluster mode (as ElastiCache Serverless requires), against a real
//! three-node `redis-server` cluster started here: generations, pages and rate limits of
//! tenants whose keys hash to different nodes, the Lua scripts loaded on each node on first
//! use (EVALSHA, then NOSCRIPT, then load).

use std::{
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use snowcast::{
    adapters::redis::Redis,
    domain::{forecast::TenantId, rate_limit::Quota},
    ports::cache::{Generations, RateLimiter, SharedCache},
};

/// Three masters on free ports, no replicas, no persistence.
struct Cluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Cluster bus ports are the node's port + 10000: keep both free and below 65536.
        let ports: Vec<u16> = (0..3)
            .map(|_| {
                loop {
                    let port = free_port();
                    if port < 55_000
                        && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
                    {
                        break port;
                    }
                }
            })
            .collect();
        let nodes = ports
            .iter()
            .map(|port| {
                Command::new("redis-server")
                    .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                    .args([
                        "--cluster-enabled",
                        "yes",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ])
                    .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                    .arg("--dir")
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server (Debian package redis-server; scripts/setup installs it)")
            })
            .collect();
        let cluster = Cluster {
            nodes,
            ports,
            _dir: dir,
        };
        for port in &cluster.ports {
            let started = Instant::now();
            while TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "node did not start"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(created.success(), "redis-cli --cluster create failed");
        let started = Instant::now();
        while !cluster.ports.iter().all(|port| cluster_ok(*port)) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "cluster never became ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }
}

fn cluster_ok(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "info"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok"))
        .unwrap_or(false)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generations_pages_and_limits_work_across_a_cluster() {
    let cluster = Cluster::start();
    let url = format!("redis://127.0.0.1:{}", cluster.ports[0]);
    let redis = Redis::connect(&url, true, Duration::from_millis(500)).unwrap();
    // Tenants spread over the slots, so over all three nodes.
    let tenants: Vec<TenantId> = (0..24)
        .map(|i| TenantId::new(&format!("tenant-{i}")).unwrap())
        .collect();
    let started = Instant::now();
    while redis.current(&tenants[0]).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for tenant in &tenants {
        let before = redis.current(tenant).await.unwrap();
        assert_eq!(before.age, None, "never bumped");
        redis.bump(tenant).await.unwrap();
        let after = redis.current(tenant).await.unwrap();
        assert_eq!(after.number, before.number + 1);
        assert!(after.age.is_some_and(|age| age < Duration::from_secs(5)));

        let key = format!("s{}:page", after.number);
        redis
            .put(
                tenant,
                &key,
                tenant.as_str().as_bytes(),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        let page = redis.get(tenant, &key).await.unwrap().unwrap();
        assert_eq!(&page[..], tenant.as_str().as_bytes());

        let quota = Quota::new(1, 2).unwrap();
        let decisions: Vec<bool> = [
            redis.acquire(tenant, quota).await.unwrap(),
            redis.acquire(tenant, quota).await.unwrap(),
            redis.acquire(tenant, quota).await.unwrap(),
        ]
        .iter()
        .map(|d| d.allowed)
        .collect();
        assert_eq!(decisions, [true, true, false], "{}", tenant.as_str());
    }
    // The keys really are spread: every node holds some.
    for port in &cluster.ports {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "dbsize"])
            .output()
            .unwrap();
        let keys: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(keys > 0, "node {port} holds no key");
    }
}
