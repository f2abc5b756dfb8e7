//! The shim under a real containerd: a private containerd (its own root, state and socket in a
//! temporary directory) imports an OCI image of the demo's echo server and client built here,
//! and `ctr run --runtime io.containerd.wasock.v1` runs them with their policy in annotations.
//! The client's exchange succeeds with a grant, is refused without one (the audit line shows
//! the denial), and a policy with a mistake fails the start with its line and column.
//!
//! Then the same as kubelet drives it: pods through containerd's CRI API (`runtime.v1` on
//! containerd's socket), runtime handler `wasock`, the policy in the pods' annotations (which
//! the CRI plugin hands the shim through `pod_annotations`), the pods' sandbox a static pause
//! program built here, what the containers print read from their CRI log files.
//!
//! Needs root and containerd (`scripts/setup.sh` installs it); without them the test says why
//! and passes, except under CI (`CI` set), where it fails.

use containerd_client::tonic;
use k8s_cri::v1 as cri;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wasock-v1");
const RUNTIME: &str = "io.containerd.wasock.v1";
/// The image of the echo server and client as files, the server its entrypoint.
const IMAGE: &str = "docker.io/wasock/echo:test";
/// The platform of an image of wasm layers.
const WASM_PLATFORM: &str = "wasip1/wasm";
/// The image of the echo client as a wasm layer.
const LAYER_IMAGE: &str = "docker.io/wasock/echo-client-layer:test";
/// An image whose one layer is a WASI 0.3 component (`raw-p3-lookup`).
const P3_LAYER_IMAGE: &str = "docker.io/wasock/p3-lookup-layer:test";

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

/// Which of containerd's APIs a test drives.
#[derive(Clone, Copy, PartialEq)]
enum Api {
    /// containerd's own, through `ctr`; its CRI plugin off.
    Ctr,
    /// The CRI plugin's (what kubelet uses), with the runtime handler `wasock`.
    Cri,
}

/// The runtime handler the CRI test's pods name (a RuntimeClass's `handler`).
const CRI_HANDLER: &str = "wasock";
/// The pod sandbox ("pause") image of the CRI test, built by it.
const PAUSE_IMAGE: &str = "docker.io/wasock/pause:test";

/// A containerd of our own, stopped by its process id when dropped.
struct Containerd {
    child: Child,
    dir: PathBuf,
    namespace: String,
    /// The cgroup its containers' cgroups are made in, in each hierarchy: `ctr`'s are
    /// `/NAMESPACE/ID`, the CRI test's pods have this as their cgroup parent.
    cgroup: String,
}

impl Containerd {
    /// Starts containerd with a private root, state and sockets for `api`, and waits until it
    /// answers.
    fn start(api: Api) -> Containerd {
        let name = match api {
            Api::Ctr => "ctr",
            Api::Cri => "cri",
        };
        let dir =
            std::env::temp_dir().join(format!("wasock-containerd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        // Only what the test uses: no snapshotters that need kernel or tool support; the CRI
        // plugin only for the CRI test, with the runtime handler `wasock` as the README gives
        // it, the pause image built by the test, no CNI configuration (its pods use the host's
        // network), and its streaming server on loopback. A `runtimes` table replaces the
        // default one: runc stays, as the default runtime's entry the plugin requires. The
        // pods' oom_score_adj is kept at containerd's own: a pod sandbox asks for -998, which
        // a host without CAP_SYS_RESOURCE (a container, some VMs) refuses (the shim's
        // container build then fails with `io error`).
        let (cri_off, cri) = match api {
            Api::Ctr => ("\"io.containerd.grpc.v1.cri\", ", String::new()),
            Api::Cri => (
                "",
                format!(
                    "[plugins.\"io.containerd.grpc.v1.cri\"]\n\
                     \x20 sandbox_image = \"{PAUSE_IMAGE}\"\n\
                     \x20 stream_server_address = \"127.0.0.1\"\n\
                     \x20 stream_server_port = \"0\"\n\
                     \x20 disable_apparmor = true\n\
                     \x20 restrict_oom_score_adj = true\n\
                     [plugins.\"io.containerd.grpc.v1.cri\".cni]\n\
                     \x20 conf_dir = \"{d}/cni/net.d\"\n\
                     \x20 bin_dir = \"{d}/cni/bin\"\n\
                     [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n\
                     \x20 runtime_type = \"io.containerd.runc.v2\"\n\
                     [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{CRI_HANDLER}]\n\
                     \x20 runtime_type = \"{RUNTIME}\"\n\
                     \x20 pod_annotations = [\"wasock/*\"]\n"
                ),
            ),
        };
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [{cri_off}\
             \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \
             \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\"]\n\
             [stream_processors.\"io.wasock.test.wasm-layer\"]\n\
             \x20 accepts = [\"{WASM_LAYER}\"]\n\
             \x20 returns = \"{TAR_LAYER}\"\n\
             \x20 path = \"sh\"\n\
             \x20 args = [\"-c\", \"cat >/dev/null; head -c 1024 /dev/zero\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"{d}/debug.sock\"\n{cri}"
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
        let namespace = match api {
            Api::Ctr => format!("wasock-test-{}", std::process::id()),
            // The CRI plugin's namespace.
            Api::Cri => "k8s.io".to_string(),
        };
        let cgroup = match api {
            Api::Ctr => namespace.clone(),
            Api::Cri => format!("wasock-cri-{}", std::process::id()),
        };
        let containerd = Containerd {
            child,
            dir,
            namespace,
            cgroup,
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
            LAYER_IMAGE | P3_LAYER_IMAGE => WASM_PLATFORM.to_string(),
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
        // What a failed test left mounted under our directory (a pod's shm, a container's
        // root), deepest first, so that the directory can go.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut ours: Vec<&str> = (mounts.lines())
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| Path::new(m).starts_with(&self.dir))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // The containers' parent cgroup, in each hierarchy (v1's) or the one (v2), once empty.
        let hierarchies = std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten();
        for hierarchy in hierarchies.flatten() {
            let _ = std::fs::remove_dir(hierarchy.path().join(&self.cgroup));
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(&self.cgroup));
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
    let files: Vec<(&str, &[u8], u32)> = files.iter().map(|(p, b)| (*p, *b, 0o644)).collect();
    tar_with_modes(&files)
}

/// A tar archive of `files` (path, bytes, mode), as regular files.
fn tar_with_modes(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, bytes, mode) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(*mode);
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

/// The echo server and client components as files of an image whose entrypoint is the
/// server, with a policy file that has a mistake.
fn echo_image() -> Vec<u8> {
    let server_wasm = std::fs::read(wasock_guests::path("std-echo-server").unwrap()).unwrap();
    let client_wasm = std::fs::read(wasock_guests::path("std-echo-client").unwrap()).unwrap();
    let p3_wasm = std::fs::read(wasock_guests::RAW_P3_LOOKUP).unwrap();
    let files = tar(&[
        ("std-echo-server.wasm", &server_wasm),
        ("std-echo-client.wasm", &client_wasm),
        ("raw-p3-lookup.wasm", &p3_wasm),
        ("etc/wasock/bad.toml", BAD_POLICY.as_bytes()),
    ]);
    oci_image(IMAGE, &[(TAR_LAYER, files)], "/std-echo-server.wasm")
}

/// One test's containerd at a time: they would share the machine's two cores, and the timings
/// they print would be the other's too.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The test is skipped where it cannot run (and fails under CI); true when it can run.
fn can_run(what: &str) -> bool {
    if let Some(why) = missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the {what} test cannot run under CI: {why}"
        );
        println!("{what} test skipped: {why}");
        return false;
    }
    true
}

/// A policy with a mistake on its second line, column 28 (the port).
const BAD_POLICY: &str =
    "allow-inbound = [\"tcp://loopback:*\"]\nallow-outbound = [\"tcp://x:99999\"]\n";

#[test]
fn components_run_under_containerd_with_the_policy_of_their_annotations() {
    if !can_run("containerd") {
        return;
    }
    let _one_containerd_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let client_wasm = std::fs::read(wasock_guests::path("std-echo-client").unwrap()).unwrap();
    let containerd = Containerd::start(Api::Ctr);
    containerd.import(&echo_image(), &format!("linux/{}", host_arch()));
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

    // A WASI 0.3 command (it needs the engine with concurrency support, the 0.2 ones above
    // ran on the one without): from the image's files, compiled at start, then from a wasm
    // layer of its own, precompiled by the first start and loaded by the second.
    containerd.import(
        &oci_image(
            P3_LAYER_IMAGE,
            &[(
                WASM_LAYER,
                std::fs::read(wasock_guests::RAW_P3_LOOKUP).unwrap(),
            )],
            "/raw-p3-lookup.wasm",
        ),
        WASM_PLATFORM,
    );
    let lookups = [("wasock/allow-lookup", "true")];
    let runs = [
        containerd.run("p3-files", &lookups, &["/raw-p3-lookup.wasm"]),
        containerd.run_image(P3_LAYER_IMAGE, "p3-layer-cold", &lookups, &[]),
        containerd.run_image(P3_LAYER_IMAGE, "p3-layer-warm", &lookups, &[]),
    ];
    for mut run in runs {
        let run = run.output().unwrap();
        let out = text(&run);
        assert_eq!(
            run.status.code(),
            Some(0),
            "{out}\ncontainerd's log:\n{}",
            containerd.log()
        );
        assert!(
            out.contains("raw-p3-lookup: ") && out.contains(" checks passed"),
            "{out}"
        );
    }

    let server = server.wait_with_output().unwrap();
    assert_eq!(server.status.code(), Some(0), "server: {}", text(&server));
    drop(containerd);
}

/// The CRI test's pause program: it waits, as a pod's sandbox does, until it is killed.
const PAUSE_RS: &str = "fn main() {\n    loop {\n        std::thread::park();\n    }\n}\n";

/// An image whose entrypoint `/pause` is [`PAUSE_RS`] built as a static executable (the shim
/// runs a container whose entrypoint is an ELF file as a Linux container, and the image has no
/// C library), by the toolchain running this test.
fn pause_image(dir: &Path) -> Vec<u8> {
    let source = dir.join("pause.rs");
    let binary = dir.join("pause");
    std::fs::write(&source, PAUSE_RS).unwrap();
    let built = Command::new("rustc")
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
        ])
        .args(["-C", "strip=symbols", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .expect("run rustc");
    assert!(
        built.status.success(),
        "build the pause program: {}",
        text(&built)
    );
    let pause = std::fs::read(&binary).unwrap();
    let files = tar_with_modes(&[("pause", &pause, 0o755)]);
    oci_image(PAUSE_IMAGE, &[(TAR_LAYER, files)], "/pause")
}

/// How long one CRI call may take (StartContainer's includes starting a shim).
const CRI_CALL: Duration = Duration::from_secs(60);
/// How long a pod's container may run before the test gives up on it.
const CONTAINER_RUN: Duration = Duration::from_secs(60);

/// A client of the CRI plugin of our containerd, on its socket, as kubelet is.
struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: cri::runtime_service_client::RuntimeServiceClient<Channel>,
    images: cri::image_service_client::ImageServiceClient<Channel>,
    /// Where the pods' logs go (a pod's `log_directory` is `logs/NAME`).
    logs: PathBuf,
    /// containerd's log, for failures.
    containerd_log: PathBuf,
    /// The pods' cgroup parent.
    cgroup_parent: String,
}

/// A pod of the CRI test: its sandbox, its one container and that container's log file.
struct Pod {
    name: String,
    sandbox: String,
    container: String,
    log: PathBuf,
}

impl Cri {
    /// Connects to `containerd`'s socket and waits until the CRI plugin answers `Version`.
    fn connect(containerd: &Containerd) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let socket = containerd.dir.join("containerd.sock");
        let channel = rt
            .block_on(containerd_client::connect(&socket))
            .expect("connect to containerd's socket");
        let logs = containerd.dir.join("pod-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let c = Cri {
            rt,
            runtime: cri::runtime_service_client::RuntimeServiceClient::new(channel.clone()),
            images: cri::image_service_client::ImageServiceClient::new(channel),
            logs,
            containerd_log: containerd.dir.join("containerd.log"),
            cgroup_parent: format!("/{}", containerd.cgroup),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut runtime = c.runtime.clone();
            match c.call(runtime.version(cri::VersionRequest::default())) {
                Ok(v) => {
                    println!(
                        "CRI: {} {} (API {})",
                        v.runtime_name, v.runtime_version, v.runtime_api_version
                    );
                    break;
                }
                // The plugin did not load: containerd's log says why.
                Err(e) if e.contains("unknown service") => panic!(
                    "containerd serves no CRI: {e}\ncontainerd's log:\n{}",
                    containerd.log()
                ),
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "the CRI plugin did not answer within 30 s: {e}\ncontainerd's log:\n{}",
                    containerd.log()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    /// What containerd (and the shims) logged, but for its routine lines, for failures.
    fn containerd_log(&self) -> String {
        let log = std::fs::read_to_string(&self.containerd_log).unwrap_or_default();
        let lines: Vec<&str> = (log.lines())
            .filter(|l| !l.contains("level=info msg=\"loading plugin"))
            .collect();
        lines.join("\n")
    }

    /// One CRI call, bounded by [`CRI_CALL`]; its failure as the status's code and message.
    fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, String> {
        match (self.rt).block_on(async { tokio::time::timeout(CRI_CALL, call).await }) {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
            Err(_) => Err(format!("no answer within {CRI_CALL:?}")),
        }
    }

    /// Waits until the CRI plugin knows `image` (an import reaches it as an event).
    fn wait_for_image(&self, image: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let request = cri::ImageStatusRequest {
                image: Some(cri::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                verbose: false,
            };
            let mut images = self.images.clone();
            let found = self.call(images.image_status(request));
            if found.as_ref().is_ok_and(|s| s.image.is_some()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the CRI plugin does not know {image} 30 s after its import: {found:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The sandbox config of pod `name`: its annotations, its log directory, its cgroup
    /// parent, the host's network (no CNI needed).
    fn pod_config(&self, name: &str, annotations: &[(&str, &str)]) -> cri::PodSandboxConfig {
        let log_directory = self.logs.join(name);
        std::fs::create_dir_all(&log_directory).unwrap();
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: format!("{name}-uid"),
                namespace: "default".into(),
                attempt: 0,
            }),
            log_directory: log_directory.display().to_string(),
            annotations: (annotations.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(host_network()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// As kubelet runs a pod of one container: RunPodSandbox (runtime handler `wasock`, the
    /// pod's annotations), CreateContainer (`image` running `command`, with
    /// `container_annotations`), StartContainer.
    fn start_pod(
        &self,
        name: &str,
        image: &str,
        pod_annotations: &[(&str, &str)],
        container_annotations: &[(&str, &str)],
        command: &[&str],
    ) -> Pod {
        let config = self.pod_config(name, pod_annotations);
        let mut runtime = self.runtime.clone();
        let sandbox = self
            .call(runtime.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: CRI_HANDLER.into(),
            }))
            .unwrap_or_else(|e| {
                panic!(
                    "RunPodSandbox {name}: {e}\ncontainerd's log:\n{}",
                    self.containerd_log()
                )
            })
            .pod_sandbox_id;
        let (command, args) = match command.split_first() {
            Some((first, rest)) => (vec![first.to_string()], strings(rest)),
            None => (vec![], vec![]),
        };
        let container_config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            command,
            args,
            annotations: (container_annotations.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log_path: format!("{name}/0.log"),
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(host_network()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let container = self
            .call(runtime.create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(container_config),
                sandbox_config: Some(config),
            }))
            .unwrap_or_else(|e| {
                panic!(
                    "CreateContainer {name}: {e}\ncontainerd's log:\n{}",
                    self.containerd_log()
                )
            })
            .container_id;
        self.call(runtime.start_container(cri::StartContainerRequest {
            container_id: container.clone(),
        }))
        .unwrap_or_else(|e| {
            panic!(
                "StartContainer {name}: {e}\ncontainerd's log:\n{}",
                self.containerd_log()
            )
        });
        Pod {
            name: name.into(),
            log: self.logs.join(name).join(name).join("0.log"),
            sandbox,
            container,
        }
    }

    /// ContainerStatus of the pod's container until it has exited, bounded by
    /// [`CONTAINER_RUN`].
    fn wait_for_exit(&self, pod: &Pod) -> cri::ContainerStatus {
        let deadline = Instant::now() + CONTAINER_RUN;
        loop {
            let mut runtime = self.runtime.clone();
            let status = self
                .call(runtime.container_status(cri::ContainerStatusRequest {
                    container_id: pod.container.clone(),
                    verbose: false,
                }))
                .unwrap_or_else(|e| panic!("ContainerStatus {}: {e}", pod.name))
                .status
                .expect("a container's status");
            if status.state == cri::ContainerState::ContainerExited as i32 {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {CONTAINER_RUN:?}: {status:?}\nits log:\n{}",
                pod.name,
                self.log(pod)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The lines of the pod's container log (what `kubectl logs` shows): the CRI log
    /// format's `TIME STREAM TAG LINE`, as `LINE`.
    fn log(&self, pod: &Pod) -> String {
        let raw = std::fs::read_to_string(&pod.log).unwrap_or_default();
        let lines: Vec<&str> = (raw.lines())
            .map(|l| l.splitn(4, ' ').nth(3).unwrap_or(l))
            .collect();
        lines.join("\n")
    }

    /// Waits until the pod's log has a line that starts with `prefix`; the rest of it.
    fn wait_for_line(&self, pod: &Pod, prefix: &str) -> String {
        let deadline = Instant::now() + CONTAINER_RUN;
        loop {
            let log = self.log(pod);
            if let Some(rest) = log.lines().find_map(|l| l.strip_prefix(prefix)) {
                return rest.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no line {prefix:?} in {}'s log within {CONTAINER_RUN:?}:\n{log}",
                pod.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// As kubelet ends a pod: StopPodSandbox, then RemovePodSandbox (its container with it).
    fn remove_pod(&self, pod: &Pod) {
        let mut runtime = self.runtime.clone();
        self.call(runtime.stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.sandbox.clone(),
        }))
        .unwrap_or_else(|e| {
            panic!(
                "StopPodSandbox {}: {e}\ncontainerd's log:\n{}",
                pod.name,
                self.containerd_log()
            )
        });
        self.call(runtime.remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.sandbox.clone(),
        }))
        .unwrap_or_else(|e| {
            panic!(
                "RemovePodSandbox {}: {e}\ncontainerd's log:\n{}",
                pod.name,
                self.containerd_log()
            )
        });
    }
}

impl Drop for Cri {
    /// The pods a failed test left, stopped and removed as kubelet would (which ends their
    /// shims cleanly, before containerd stops).
    fn drop(&mut self) {
        let mut runtime = self.runtime.clone();
        let pods = self.call(runtime.list_pod_sandbox(cri::ListPodSandboxRequest::default()));
        for pod in pods.map(|p| p.items).unwrap_or_default() {
            let _ = self.call(runtime.stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            }));
            let _ = self.call(runtime.remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.id,
            }));
        }
    }
}

/// The host's network namespace (a pod with `hostNetwork: true`), the others the pod's.
fn host_network() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Node as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// `items` as owned strings.
fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A container's exit, for assertion messages: its status and its log.
fn exited(cri: &Cri, pod: &Pod, status: &cri::ContainerStatus) -> String {
    format!(
        "{}: exit code {}, reason {:?}, message {:?}\n--- log\n{}",
        pod.name,
        status.exit_code,
        status.reason,
        status.message,
        cri.log(pod)
    )
}

#[test]
fn pods_run_under_containerd_cri_with_the_policy_of_their_pod_annotations() {
    if !can_run("CRI") {
        return;
    }
    let _one_containerd_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let containerd = Containerd::start(Api::Cri);
    let platform = format!("linux/{}", host_arch());
    containerd.import(&echo_image(), &platform);
    containerd.import(&pause_image(&containerd.dir), &platform);
    let client_wasm = std::fs::read(wasock_guests::path("std-echo-client").unwrap()).unwrap();
    containerd.import(
        &oci_image(
            LAYER_IMAGE,
            &[(WASM_LAYER, client_wasm)],
            "/std-echo-client.wasm",
        ),
        WASM_PLATFORM,
    );
    let cri = Cri::connect(&containerd);
    for image in [IMAGE, PAUSE_IMAGE, LAYER_IMAGE] {
        cri.wait_for_image(image);
    }
    let ready = started.elapsed();

    // A pod whose policy has a mistake: its container exits with code 2, and its log names the
    // annotation, the line and the column.
    let pod_started = Instant::now();
    let bad = cri.start_pod(
        "bad-policy",
        IMAGE,
        &[("wasock/policy", BAD_POLICY)],
        &[],
        &[],
    );
    let status = cri.wait_for_exit(&bad);
    let bad_time = pod_started.elapsed();
    let out = exited(&cri, &bad, &status);
    println!("{out}");
    assert_eq!(status.exit_code, 2, "{out}");
    assert!(
        out.contains("wasock: error: annotation wasock/policy:2:28: expected a port 1-65535"),
        "{out}\ncontainerd's log:\n{}",
        containerd.log()
    );
    cri.remove_pod(&bad);

    // The server, in a pod allowed to listen on loopback, for two connections.
    let server = cri.start_pod(
        "echo-server",
        IMAGE,
        &[("wasock/policy", "allow-inbound = [\"tcp://loopback:*\"]")],
        &[],
        &["/std-echo-server.wasm", "127.0.0.1:0", "2"],
    );
    let addr = cri.wait_for_line(&server, "listening on ");
    let port = addr.rsplit(':').next().unwrap().to_string();
    let grant = format!("allow-outbound = [\"tcp://127.0.0.1:{port}\"]");

    // A client in a pod granted another port: refused, and the audit line in its log shows
    // the denial. Its container's own annotation grants the server's port, and counts for
    // nothing: the policy is the pod's.
    let refused = cri.start_pod(
        "client-refused",
        IMAGE,
        &[
            ("wasock/policy", "allow-outbound = [\"tcp://127.0.0.1:1\"]"),
            ("wasock/audit", "true"),
        ],
        &[("wasock/policy", &grant)],
        &["/std-echo-client.wasm", &addr, "denied"],
    );
    let status = cri.wait_for_exit(&refused);
    let out = exited(&cri, &refused, &status);
    println!("{out}");
    assert_ne!(status.exit_code, 0, "{out}");
    assert!(out.contains("access-denied"), "{out}");
    assert!(
        (out.lines())
            .any(|l| l.contains("\"op\":\"connect\"") && l.contains("\"verdict\":\"deny\"")),
        "{out}"
    );
    cri.remove_pod(&refused);

    // The same client in a pod granted the server's port: the exchange succeeds.
    let pod_started = Instant::now();
    let granted = cri.start_pod(
        "client-granted",
        IMAGE,
        &[("wasock/policy", &grant), ("wasock/stats", "true")],
        &[],
        &["/std-echo-client.wasm", &addr, "hello from a pod"],
    );
    let status = cri.wait_for_exit(&granted);
    let granted_time = pod_started.elapsed();
    let out = exited(&cri, &granted, &status);
    println!("{out}");
    assert_eq!(status.exit_code, 0, "{out}");
    assert!(out.contains("hello from a pod"), "{out}");
    assert!(out.contains("wasock: stats: sockets created 1"), "{out}");
    cri.remove_pod(&granted);

    // The client from its image of a wasm layer, in a pod granted the server's port.
    let pod_started = Instant::now();
    let layer = cri.start_pod(
        "client-layer",
        LAYER_IMAGE,
        &[("wasock/policy", &grant)],
        &[],
        &["/std-echo-client.wasm", &addr, "hello from a wasm layer"],
    );
    let status = cri.wait_for_exit(&layer);
    let layer_time = pod_started.elapsed();
    let out = exited(&cri, &layer, &status);
    println!("{out}");
    assert_eq!(status.exit_code, 0, "{out}");
    assert!(out.contains("received: hello from a wasm layer"), "{out}");
    cri.remove_pod(&layer);

    // The server served its two connections and exited.
    let status = cri.wait_for_exit(&server);
    let out = exited(&cri, &server, &status);
    assert_eq!(status.exit_code, 0, "{out}");
    cri.remove_pod(&server);
    println!(
        "CRI: containerd up with the three images {ready:?}; a pod from RunPodSandbox to its \
         container's exit: bad policy {bad_time:?}, granted client {granted_time:?}, \
         client of a wasm layer {layer_time:?} (compiles); whole test {:?}",
        started.elapsed()
    );
    drop(cri);
    drop(containerd);
}
