//! The shim under a real containerd: a private containerd (its own root, state and socket in a
//! temporary directory) imports an OCI image of the demo's echo server and client built here,
//! and `ctr run --runtime io.containerd.wasock.v1` runs them with their policy in annotations.
//! The client's exchange succeeds with a grant, is refused without one (the audit line shows
//! the denial), and a policy with a mistake fails the start with its line and column.
//!
//! Needs root and containerd (`scripts/setup.sh` installs it); without them the test says why
//! and passes, except under CI (`CI` set), where it fails.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wasock-v1");
const RUNTIME: &str = "io.containerd.wasock.v1";
/// The image of the echo server and client as files, the server its entrypoint.
const IMAGE: &str = "docker.io/wasock/echo:test";
/// The platform of an image of wasm layers.
const WASM_PLATFORM: &str = "wasip1/wasm";
/// The image of the echo client as a wasm layer.
const LAYER_IMAGE: &str = "docker.io/wasock/echo-client-layer:test";

/// Why this machine cannot run the test, if it cannot.
fn missing() -> Option<String> {
    let uid = Command::new("id").arg("-u").output();
    if !uid.is_ok_and(|o| o.stdout.trim_ascii() == b"0") {
        return Some("containerd needs root, and this test runs as another user".into());
    }
    for tool in ["containerd", "ctr"] {
        let found = Command::new(tool).arg("--version").output();
        if !found.is_ok_and(|o| o.status.success()) {
            return Some(format!(
                "`{tool}` is not installed (scripts/setup.sh installs the distribution's \
                 containerd package)"
            ));
        }
    }
    None
}

/// A containerd of our own, stopped by its process id when dropped.
struct Containerd {
    child: Child,
    dir: PathBuf,
    namespace: String,
}

impl Containerd {
    /// Starts containerd with a private root, state and sockets, and waits until it answers.
    fn start() -> Containerd {
        let dir = std::env::temp_dir().join(format!("wasock-containerd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        // Only what the test uses: no CRI, no snapshotters that need kernel or tool support.
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \
             \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \
             \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\"]\n\
             [stream_processors.\"io.wasock.test.wasm-layer\"]\n\
             \x20 accepts = [\"{WASM_LAYER}\"]\n\
             \x20 returns = \"{TAR_LAYER}\"\n\
             \x20 path = \"sh\"\n\
             \x20 args = [\"-c\", \"cat >/dev/null; head -c 1024 /dev/zero\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"{d}/debug.sock\"\n"
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        // containerd finds `containerd-shim-wasock-v1` for the runtime on its PATH.
        let shim_dir = Path::new(SHIM).parent().unwrap();
        let path = format!(
            "{}:{}",
            shim_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let containerd = Containerd {
            child,
            dir,
            namespace: format!("wasock-test-{}", std::process::id()),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !containerd.ctr(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not answer within 30 s; its log:\n{}",
                containerd.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        containerd
    }

    /// containerd's own log (the shims' logs included).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr` on our containerd's socket and namespace.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// `ctr ARGS`, run to its end.
    fn ctr(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run ctr")
    }

    /// Imports an OCI image archive for `platform`, and unpacks it.
    fn import(&self, archive: &[u8], platform: &str) {
        let path = self.dir.join("image.tar");
        std::fs::write(&path, archive).unwrap();
        let import = self.ctr(&[
            "images",
            "import",
            "--platform",
            platform,
            path.to_str().unwrap(),
        ]);
        assert!(import.status.success(), "import: {}", text(&import));
    }

    /// `ctr run --rm` of the test image under the shim, with `annotations`, running `args`
    /// (the component's path in the image first).
    fn run(&self, id: &str, annotations: &[(&str, &str)], args: &[&str]) -> Command {
        self.run_image(IMAGE, id, annotations, args)
    }

    /// `ctr run --rm` of `image` under the shim, with `annotations`, running `args`.
    fn run_image(
        &self,
        image: &str,
        id: &str,
        annotations: &[(&str, &str)],
        args: &[&str],
    ) -> Command {
        let platform = match image {
            LAYER_IMAGE => WASM_PLATFORM.to_string(),
            _ => format!("linux/{}", host_arch()),
        };
        let mut c = self.command(&["run", "--rm", "--net-host", "--runtime", RUNTIME]);
        c.arg("--platform").arg(platform);
        for (key, value) in annotations {
            c.arg("--annotation").arg(format!("{key}={value}"));
        }
        c.arg(image).arg(id).args(args);
        c
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Containers a failed test left running (the server's): killed and deleted through
        // containerd, which ends their shims.
        let tasks = self.ctr(&["tasks", "ls", "-q"]);
        for id in String::from_utf8_lossy(&tasks.stdout).split_whitespace() {
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
            let _ = self.ctr(&["tasks", "delete", "-f", id]);
            let _ = self.ctr(&["containers", "delete", id]);
        }
        // SIGTERM to our containerd's pid: it stops its plugins and exits.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        // The shim's state directory for the namespace, empty once its containers are gone.
        let _ = std::fs::remove_dir(Path::new("/run/containerd/wasock").join(&self.namespace));
    }
}

/// `sha256:HEX` of `bytes`.
fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A tar archive of `files` (path, bytes), as regular files.
fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut header, path, *bytes).unwrap();
    }
    b.into_inner().unwrap()
}

/// This machine's architecture as OCI platforms name it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The media type of a layer of files (an uncompressed tar).
const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// The media type of a wasm component layer, as runwasi's library reads them.
const WASM_LAYER: &str = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";

/// An OCI image layout in a tar archive (what `ctr images import` reads): the image `name`
/// for this machine's platform, with `layers` (media type, bytes) and the entrypoint
/// `entrypoint`.
fn oci_image(name: &str, layers: &[(&str, Vec<u8>)], entrypoint: &str) -> Vec<u8> {
    // runwasi's library looks for wasm layers in images for the `wasm` architecture only.
    let (os, arch) = match layers
        .iter()
        .any(|(media_type, _)| *media_type == WASM_LAYER)
    {
        true => ("wasip1", "wasm"),
        false => ("linux", host_arch()),
    };
    // A wasm layer unpacks, through the stream processor, as an empty tar: two zero blocks.
    let diff_ids: Vec<String> = (layers.iter())
        .map(|(media_type, l)| match *media_type {
            WASM_LAYER => digest(&[0; 1024]),
            _ => digest(l),
        })
        .collect();
    let config = serde_json::json!({
        "architecture": arch,
        "os": os,
        "config": { "Entrypoint": [entrypoint] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    })
    .to_string();
    let descriptors: Vec<serde_json::Value> = (layers.iter())
        .map(|(media_type, l)| {
            serde_json::json!({ "mediaType": media_type, "digest": digest(l), "size": l.len() })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(config.as_bytes()),
            "size": config.len(),
        },
        "layers": descriptors,
    })
    .to_string();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(manifest.as_bytes()),
            "size": manifest.len(),
            "platform": { "architecture": arch, "os": os },
            "annotations": { "io.containerd.image.name": name },
        }],
    })
    .to_string();
    let blob = |bytes: &[u8]| format!("blobs/{}", digest(bytes).replace(':', "/"));
    let mut entries: Vec<(String, &[u8])> = vec![
        ("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json".into(), index.as_bytes()),
        (blob(manifest.as_bytes()), manifest.as_bytes()),
        (blob(config.as_bytes()), config.as_bytes()),
    ];
    entries.extend(layers.iter().map(|(_, l)| (blob(l), l.as_slice())));
    let entries: Vec<(&str, &[u8])> = entries.iter().map(|(p, b)| (p.as_str(), *b)).collect();
    tar(&entries)
}

/// A finished command's exit code, stdout and stderr, for assertion messages.
fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A policy with a mistake on its second line, column 28 (the port).
const BAD_POLICY: &str =
    "allow-inbound = [\"tcp://loopback:*\"]\nallow-outbound = [\"tcp://x:99999\"]\n";

#[test]
fn components_run_under_containerd_with_the_policy_of_their_annotations() {
    if let Some(why) = missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the containerd test cannot run under CI: {why}"
        );
        println!("containerd test skipped: {why}");
        return;
    }
    let server_wasm = std::fs::read(wasock_guests::path("std-echo-server").unwrap()).unwrap();
    let client_wasm = std::fs::read(wasock_guests::path("std-echo-client").unwrap()).unwrap();
    let containerd = Containerd::start();
    // The server and client components as files of an image whose entrypoint is the server.
    let files = tar(&[
        ("std-echo-server.wasm", &server_wasm),
        ("std-echo-client.wasm", &client_wasm),
        ("etc/wasock/bad.toml", BAD_POLICY.as_bytes()),
    ]);
    containerd.import(
        &oci_image(IMAGE, &[(TAR_LAYER, files)], "/std-echo-server.wasm"),
        &format!("linux/{}", host_arch()),
    );
    // The client as a wasm layer of an image of its own.
    containerd.import(
        &oci_image(
            LAYER_IMAGE,
            &[(WASM_LAYER, client_wasm.clone())],
            "/std-echo-client.wasm",
        ),
        WASM_PLATFORM,
    );

    // A policy with a mistake: the container does not run; its stderr names the annotation
    // (or the image's file), the line and the column. Timed: the shim's cold start.
    let started = Instant::now();
    let bad = (containerd.run("bad-inline", &[("wasock/policy", BAD_POLICY)], &[]))
        .output()
        .unwrap();
    let cold = started.elapsed();
    println!("bad inline policy: {}", text(&bad));
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(
            "wasock: error: annotation wasock/policy:2:28: expected a port 1-65535 or a range"
        ),
        "{}",
        text(&bad)
    );
    let started = Instant::now();
    let bad = (containerd.run(
        "bad-file",
        &[("wasock/policy-file", "/etc/wasock/bad.toml")],
        &[],
    ))
    .output()
    .unwrap();
    let warm = started.elapsed();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("wasock: error: /etc/wasock/bad.toml:2:28: "),
        "{}",
        text(&bad)
    );
    println!("policy refused at start: cold {cold:?}, warm {warm:?} (ctr run to exit)");

    // The server, allowed to listen on loopback; its image's entrypoint.
    let mut server = (containerd.run(
        "server",
        &[("wasock/policy", "allow-inbound = [\"tcp://loopback:*\"]")],
        &["/std-echo-server.wasm", "127.0.0.1:0", "3"],
    ))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (lines, seen) = mpsc::channel();
    let stdout = BufReader::new(server.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let addr = loop {
        match seen.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => match line.strip_prefix("listening on ") {
                Some(addr) => break addr.to_string(),
                None => continue,
            },
            Err(e) => {
                let _ = server.kill();
                let out = server.wait_with_output().unwrap();
                panic!(
                    "the server did not listen ({e}): {}\ncontainerd's log:\n{}",
                    text(&out),
                    containerd.log()
                );
            }
        }
    };
    let port = addr.rsplit(':').next().unwrap();

    // A client granted another port: refused, and the audit line shows the denial.
    let refused = (containerd.run(
        "client-refused",
        &[
            ("wasock/policy", "allow-outbound = [\"tcp://127.0.0.1:1\"]"),
            ("wasock/audit", "true"),
        ],
        &["/std-echo-client.wasm", &addr, "denied"],
    ))
    .output()
    .unwrap();
    let out = text(&refused);
    println!("refused client: {out}");
    assert_ne!(refused.status.code(), Some(0), "{out}");
    assert!(out.contains("access-denied"), "{out}");
    assert!(
        (out.lines())
            .any(|l| l.contains("\"op\":\"connect\"") && l.contains("\"verdict\":\"deny\"")),
        "{out}"
    );

    // The same client granted the server's port: the exchange succeeds; stats at exit.
    let started = Instant::now();
    let granted = (containerd.run(
        "client-granted",
        &[
            (
                "wasock/policy",
                &format!("allow-outbound = [\"tcp://127.0.0.1:{port}\"]"),
            ),
            ("wasock/stats", "true"),
        ],
        &["/std-echo-client.wasm", &addr, "hello from a pod"],
    ))
    .output()
    .unwrap();
    let exchange = started.elapsed();
    let out = text(&granted);
    println!("granted client: {out}");
    assert_eq!(granted.status.code(), Some(0), "{out}");
    assert!(out.contains("hello from a pod"), "{out}");
    assert!(out.contains("wasock: stats: sockets created 1"), "{out}");
    println!("granted client: {exchange:?} from ctr run to its exit");

    // The client from its wasm layer, twice: the first start compiles the component (in the
    // shim, which stores it precompiled in containerd's content store), the second loads it.
    let grant = format!("allow-outbound = [\"tcp://127.0.0.1:{port}\"]");
    let mut times = Vec::new();
    for id in ["layer-cold", "layer-warm"] {
        let started = Instant::now();
        let run = (containerd.run_image(
            LAYER_IMAGE,
            id,
            &[("wasock/policy", &grant)],
            &["/std-echo-client.wasm", &addr, id],
        ))
        .output()
        .unwrap();
        times.push(started.elapsed());
        let out = text(&run);
        assert_eq!(
            run.status.code(),
            Some(0),
            "{out}\ncontainerd's log:\n{}",
            containerd.log()
        );
        assert!(out.contains(id), "{out}");
    }
    let content = containerd.ctr(&["content", "ls"]);
    assert!(
        String::from_utf8_lossy(&content.stdout).contains("runwasi.io/precompiled/wasock/"),
        "the precompiled component is in the content store: {}",
        text(&content)
    );
    println!(
        "wasm layer client, ctr run to exit: cold {:?} (compiles), warm {:?} (precompiled)",
        times[0], times[1]
    );

    let server = server.wait_with_output().unwrap();
    assert_eq!(server.status.code(), Some(0), "server: {}", text(&server));
    drop(containerd);
}
