//! The real proxies users put in front of besedka, started from a temp config on free loopback
//! ports and stopped when dropped: haproxy (Debian's `haproxy`) and nginx (Debian's `nginx`,
//! its stream module from `libnginx-mod-stream`). `.ci/run` installs both; outside CI a test
//! without them says on stderr that it is skipped ([`super::skip`]), under CI it fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::WAIT;

/// A program's path, or `None` (skipped, said on stderr) when it is not installed outside CI.
pub fn program(name: &str, test: &str) -> Option<PathBuf> {
    let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists());
    if found.is_none() {
        super::skip(test, &format!("{name} is not installed"));
    }
    found
}

/// A loopback port nothing listens on (just now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A proxy process, killed when dropped; its temp dir holds its config and logs.
pub struct Proxy {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// What the proxy logged (its error log, or its stderr's file).
    pub fn log(&self) -> String {
        ["error.log", "stderr"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.path().join(f)).ok())
            .collect()
    }
}

/// Waits until every port accepts a connection.
fn wait_listening(proxy: &mut Proxy, ports: &[u16]) {
    let start = Instant::now();
    for &port in ports {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("the proxy exited ({status}): {}", proxy.log());
            }
            assert!(
                start.elapsed() < WAIT,
                "the proxy never listened on {port}: {}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn spawn(mut cmd: Command, dir: tempfile::TempDir, ports: &[u16]) -> Proxy {
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start the proxy");
    let mut proxy = Proxy { child, dir };
    wait_listening(&mut proxy, ports);
    proxy
}

/// haproxy in TCP mode, one frontend per `(listen port, backend)`, each sending the PROXY
/// protocol v2 header (`send-proxy-v2`) to its backend.
pub fn haproxy(routes: &[(u16, SocketAddr)]) -> Option<Proxy> {
    let bin = program("haproxy", "the haproxy tests")?;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = String::from(
        "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
         timeout client 120s\n  timeout server 120s\n",
    );
    for (i, (port, to)) in routes.iter().enumerate() {
        cfg.push_str(&format!(
            "frontend f{i}\n  bind 127.0.0.1:{port}\n  default_backend b{i}\n\
             backend b{i}\n  server s{i} {to} send-proxy-v2\n"
        ));
    }
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-db").arg("-f").arg(&path);
    let ports: Vec<u16> = routes.iter().map(|r| r.0).collect();
    Some(spawn(cmd, dir, &ports))
}

/// nginx with `stream` routes (TCP, `proxy_protocol on` towards the backend) and `http`
/// routes (a reverse proxy with `X-Forwarded-For` and WebSocket upgrades), as the README
/// configures it.
pub fn nginx(stream: &[(u16, SocketAddr)], http: &[(u16, SocketAddr)]) -> Option<Proxy> {
    let bin = program("nginx", "the nginx tests")?;
    let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    if !stream.is_empty() && !module.exists() {
        super::skip(
            "the nginx stream tests",
            "nginx's stream module is not installed (libnginx-mod-stream)",
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let mut cfg = String::new();
    if !stream.is_empty() {
        cfg.push_str(&format!("load_module {};\n", module.display()));
    }
    cfg.push_str(&format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\nevents {{ worker_connections 1024; }}\n"
    ));
    if !stream.is_empty() {
        cfg.push_str("stream {\n");
        for (port, to) in stream {
            cfg.push_str(&format!(
                "  server {{ listen 127.0.0.1:{port}; proxy_pass {to}; proxy_protocol on; }}\n"
            ));
        }
        cfg.push_str("}\n");
    }
    if !http.is_empty() {
        cfg.push_str(&format!(
            "http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n"
        ));
        for (port, to) in http {
            cfg.push_str(&format!(
                "  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      \
                 proxy_pass http://{to};\n      proxy_http_version 1.1;\n      \
                 proxy_set_header Host $host;\n      \
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n      \
                 proxy_set_header Upgrade $http_upgrade;\n      \
                 proxy_set_header Connection \"upgrade\";\n      \
                 proxy_read_timeout 1h;\n    }}\n  }}\n"
            ));
        }
        cfg.push_str("}\n");
    }
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, cfg).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-p").arg(dir.path()).arg("-c").arg(&path);
    let ports: Vec<u16> = stream.iter().chain(http).map(|r| r.0).collect();
    Some(spawn(cmd, dir, &ports))
}
