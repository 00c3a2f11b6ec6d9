//! Packaging for real servers, checked without a container engine, systemd
//! or a NIC: the Dockerfile (hadolint, and its steps against
//! scripts/install.sh), the runtime image's packages against what `wgdp`
//! links and loads, the compose example (and that its settings are those
//! docker/test.sh runs the image with: that script builds and runs the image
//! for real), the systemd units (`systemd-analyze verify`), the mlx5 example
//! table, and the hardware guide's troubleshooting tables against every
//! counter wgdp reports.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Where scripts/install.sh puts hadolint (from PyPI).
const HADOLINT: &str = "/opt/wgdp-tools/bin/hadolint";

fn read(rel: &str) -> String {
    fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run scripts/install.sh --deps-only)"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wgdp-packaging-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A Dockerfile's instructions: continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => cur.push_str(part),
            None => {
                cur.push_str(t);
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    out
}

#[test]
fn hadolint_accepts_the_dockerfile() {
    let (ok, stdout, stderr) =
        run(Command::new(HADOLINT).arg(Path::new(ROOT).join("docker/Dockerfile")));
    assert!(ok && stdout.is_empty(), "hadolint:\n{stdout}{stderr}");
}

#[test]
fn dockerfile_builds_with_the_install_script() {
    let ins = instructions(&read("docker/Dockerfile"));
    let stages: Vec<(usize, &String)> = ins
        .iter()
        .enumerate()
        .filter(|(_, i)| i.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "a build and a runtime stage: {stages:?}");
    let (build_at, build) = stages[0];
    let (runtime_at, runtime) = stages[1];
    assert!(build.ends_with("-bookworm AS build"), "{build}");
    assert_eq!(runtime, "FROM debian:12-slim AS runtime");
    let build_runs: Vec<&String> = ins[build_at..runtime_at]
        .iter()
        .filter(|i| i.starts_with("RUN "))
        .collect();
    assert_eq!(
        build_runs,
        [
            "RUN scripts/install.sh --build-deps",
            "RUN scripts/install.sh --build"
        ],
        "the build stage does exactly what the install script does"
    );
    let runtime_ins = &ins[runtime_at..];
    assert!(runtime_ins
        .iter()
        .any(|i| i.starts_with("RUN /tmp/wgdp/scripts/install.sh --runtime ")));
    // No package manager or toolchain outside the shared script.
    for i in ins.iter().filter(|i| i.starts_with("RUN ")) {
        for tool in ["apt-get", "apt ", "cargo", "rustup", "pip"] {
            assert!(!i.contains(tool), "{i}: use scripts/install.sh instead");
        }
    }
    assert!(runtime_ins
        .iter()
        .any(|i| i == "COPY --from=build /src/target/release/wgdp /usr/local/bin/wgdp"));
    assert!(runtime_ins
        .iter()
        .any(|i| i.starts_with("RUN wgdp --version && wg --version && dpdk-devbind.py")));
    assert!(runtime_ins.iter().any(|i| i == r#"ENTRYPOINT ["wgdp"]"#));
    // Every file copied from the context exists; the modes used exist.
    for i in ins
        .iter()
        .filter(|i| i.starts_with("COPY ") && !i.contains("--from"))
    {
        let words: Vec<&str> = i.split_whitespace().collect();
        for src in &words[1..words.len() - 1] {
            assert!(Path::new(ROOT).join(src).exists(), "{i}: no {src}");
        }
    }
    let script = read("scripts/install.sh");
    for mode in ["--build-deps)", "--build)", "--runtime)"] {
        assert!(script.contains(mode), "install.sh lacks {mode}");
    }
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l == "target"), "{ignore}");
}

/// The packages `apt-cache` resolves `packages` to, with their dependencies.
fn closure(packages: &[String]) -> BTreeSet<String> {
    let (ok, stdout, stderr) = run(Command::new("apt-cache")
        .args([
            "depends",
            "--recurse",
            "--installed",
            "--no-recommends",
            "--no-suggests",
        ])
        .args([
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
        ])
        .args(packages));
    assert!(ok, "apt-cache: {stderr}");
    stdout
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('<'))
        .map(|l| l.split(':').next().unwrap_or(l).to_owned())
        .collect()
}

/// The paths dpkg may know `path` under: as given, resolved, and without
/// the `/usr` that merged-/usr systems add.
fn candidates(path: &str) -> [String; 3] {
    let real = fs::canonicalize(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let real = real.to_string_lossy().into_owned();
    let unmerged = real.strip_prefix("/usr").unwrap_or(&real).to_owned();
    [path.to_owned(), real, unmerged]
}

/// The package owning each of `paths`, in one `dpkg -S` (it is slow).
fn owners(paths: &[&str]) -> Vec<(String, String)> {
    let all: Vec<[String; 3]> = paths.iter().map(|p| candidates(p)).collect();
    // Fails when some candidate is unknown; the known ones are printed.
    let (_, stdout, _) = run(Command::new("dpkg").arg("-S").args(all.iter().flatten()));
    let known: Vec<(&str, &str)> = stdout
        .lines()
        .filter_map(|l| {
            let (pkg, file) = l.split_once(": ")?;
            Some((pkg.split(':').next().unwrap_or(pkg), file))
        })
        .collect();
    paths
        .iter()
        .zip(&all)
        .map(|(path, cands)| {
            let pkg = cands
                .iter()
                .find_map(|c| known.iter().find(|(_, f)| f == c).map(|(p, _)| *p))
                .unwrap_or_else(|| panic!("dpkg -S: no package owns {path} ({cands:?})"));
            (path.to_string(), pkg.to_owned())
        })
        .collect()
}

#[test]
fn runtime_packages_provide_what_wgdp_links_and_loads() {
    let (ok, list, stderr) =
        run(Command::new(Path::new(ROOT).join("scripts/install.sh")).args(["--list", "runtime"]));
    assert!(ok, "{stderr}");
    let runtime: Vec<String> = list.lines().map(str::to_owned).collect();
    let have = closure(&runtime);
    let (ok, ldd, stderr) = run(Command::new("ldd").arg(env!("CARGO_BIN_EXE_wgdp")));
    assert!(ok, "{stderr}");
    let mut libs: Vec<&str> = ldd
        .lines()
        .filter_map(|l| l.split("=> ").nth(1)?.split_whitespace().next())
        .collect();
    assert!(libs.iter().any(|l| l.contains("librte_eal")), "{ldd}");
    let pmds = "/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0";
    let plugins: Vec<String> = [
        "bus_pci",
        "bus_vdev",
        "mempool_ring",
        "net_mlx5",
        "net_ice",
        "net_i40e",
        "net_ixgbe",
        "net_tap",
        "net_af_xdp",
    ]
    .iter()
    .map(|p| format!("{pmds}/librte_{p}.so.23"))
    .collect();
    libs.extend(plugins.iter().map(String::as_str));
    libs.extend([
        "/usr/bin/wg",
        "/usr/bin/dpdk-devbind.py",
        "/usr/bin/dpdk-hugepages.py",
    ]);
    for (lib, pkg) in owners(&libs) {
        assert!(
            have.contains(&pkg),
            "{lib} comes from {pkg}, which scripts/install.sh --runtime does not install"
        );
    }
}

#[test]
fn compose_example_gives_the_container_what_dpdk_needs() {
    let compose = read("docker/compose.yaml");
    let lines: Vec<&str> = compose.lines().map(str::trim).collect();
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    for needed in [
        "dockerfile: docker/Dockerfile",
        "command: [\"setup\", \"--config\", \"/etc/wgdp/wgdp.toml\"]",
        "condition: service_completed_successfully",
        "network_mode: host",
        "cpuset: \"2,4-19\"",
        "- IPC_LOCK",
        "- NET_ADMIN",
        "- NET_RAW",
        "memlock: -1",
        "- /dev/infiniband:/dev/infiniband",
        "# - /dev/vfio:/dev/vfio",
        "- /dev/net/tun:/dev/net/tun",
        "- /dev/hugepages:/dev/hugepages",
        "- /etc/wgdp:/etc/wgdp ",
        "- /var/run/wireguard:/var/run/wireguard",
        "restart: on-failure",
    ] {
        assert!(has(needed), "docker/compose.yaml lacks {needed:?}");
    }
    // The CPU set is the example's main lcore and workers.
    let example = read("conf/examples/mlx5-100g.toml");
    assert!(example.contains(r#""-l", "2,4-19""#));
}

/// The `wgdp` service of docker/compose.yaml gives the container what
/// docker/test.sh gives the concentrator it runs from the image (every
/// capability dropped but NET_ADMIN, host networking, /dev/net/tun, the table
/// and UAPI volumes, SIGTERM with a 15 s grace period, the CPU set of the
/// table's lcores), and scripts/test.sh (CI) runs that script.
#[test]
fn compose_settings_are_those_docker_test_runs() {
    let compose = read("docker/compose.yaml");
    let script = read("docker/test.sh");
    for (in_compose, in_script) in [
        (
            "    cap_drop:\n      - ALL\n",
            "--cap-drop ALL --cap-add NET_ADMIN",
        ),
        ("      - NET_ADMIN ", "--cap-add NET_ADMIN)"),
        ("    network_mode: host\n", "--network host"),
        ("    privileged: true\n", "(--privileged --network host"),
        ("      - /sys:/sys\n", "-v /sys:/sys"),
        ("      - /dev:/dev\n", "-v /dev:/dev"),
        (
            "      - /dev/net/tun:/dev/net/tun ",
            "--device /dev/net/tun",
        ),
        ("    cpuset: ", "--cpuset-cpus 0-1"),
        ("      - /etc/wgdp:/etc/wgdp ", "-v \"$WORK/etc:/etc/wgdp\""),
        (
            "      - /var/run/wireguard:/var/run/wireguard ",
            "-v /var/run/wireguard:/var/run/wireguard",
        ),
        ("    stop_signal: SIGTERM\n", "--stop-signal SIGTERM"),
        ("    stop_grace_period: 15s\n", "stop -t 15 "),
        ("      RUST_LOG: info\n", "-e RUST_LOG=info"),
    ] {
        assert!(
            compose.contains(in_compose),
            "docker/compose.yaml lacks {in_compose:?}"
        );
        assert!(
            script.contains(in_script),
            "docker/test.sh lacks {in_script:?}"
        );
    }
    // The table docker/test.sh runs pins lcores 0 and 1: its CPU set. The
    // topology's default is one worker, lcore i on CPU i mod the CPUs, after
    // the main lcore 0 on CPU 0: "0@0,1@1".
    let topology = read("tests/e2e/topology.sh");
    for piece in [
        "WORKERS=${E2E_WORKERS:-1}",
        r#"local LCORES="0@0""#,
        r#"LCORES+=",$i@$((i % CPUS))""#,
    ] {
        assert!(topology.contains(piece), "topology.sh lacks {piece:?}");
    }
    assert!(
        read("scripts/test.sh")
            .lines()
            .any(|l| l == "docker/test.sh --quick"),
        "scripts/test.sh does not run docker/test.sh"
    );
}

#[test]
fn systemd_units_verify() {
    let dir = TempDir::new("units");
    let mut units = Vec::new();
    for unit in ["wgdp-setup.service", "wgdp.service"] {
        let text = read(&format!("packaging/systemd/{unit}"));
        assert!(text.contains("/usr/local/bin/wgdp "), "{unit}");
        // Verify against the binary under test: systemd-analyze checks
        // that every Exec command exists.
        let text = text.replace("/usr/local/bin/wgdp", env!("CARGO_BIN_EXE_wgdp"));
        let path = dir.0.join(unit);
        fs::write(&path, text).expect("write unit");
        units.push(path);
    }
    let (ok, stdout, stderr) = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units));
    let about_ours: Vec<&str> = stderr.lines().filter(|l| l.contains("wgdp")).collect();
    assert!(
        ok && about_ours.is_empty(),
        "systemd-analyze verify:\n{stdout}{stderr}"
    );
    let service = read("packaging/systemd/wgdp.service");
    for needed in [
        "Requires=wgdp-setup.service",
        "After=wgdp-setup.service",
        "Restart=on-failure",
        "StandardError=journal",
        "LimitMEMLOCK=infinity",
        "ProtectSystem=strict",
    ] {
        assert!(
            service.lines().any(|l| l.starts_with(needed)),
            "wgdp.service lacks {needed}"
        );
    }
    assert!(read("packaging/systemd/wgdp-setup.service").contains("Type=oneshot"));
}

#[test]
fn mlx5_example_passes_wgdp_check() {
    let dir = TempDir::new("mlx5");
    let config = dir.0.join("wgdp.toml");
    fs::write(&config, read("conf/examples/mlx5-100g.toml")).expect("write");
    let key = dir.0.join("private.key");
    fs::write(&key, "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n").expect("write key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let (ok, stdout, stderr) = run(Command::new(env!("CARGO_BIN_EXE_wgdp"))
        .args(["check", "--config"])
        .arg(&config));
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.ends_with("ok: 2 peers, 3 allowed-ip prefixes, 16 workers\n"),
        "{stdout}"
    );
    assert!(stderr.is_empty(), "warnings: {stderr}");
}

/// The first column (`| \`name\` |`) of the table under `heading` in the
/// hardware guide.
fn table_names(heading: &str) -> BTreeSet<String> {
    let doc = read("docs/hardware.md");
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("docs/hardware.md has no {heading:?}"));
    let section = &doc[start + heading.len()..];
    let end = section.find("\n#").unwrap_or(section.len());
    section[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn hardware_guide_explains_every_counter() {
    let drops = table_names("### Drop reasons");
    let want: BTreeSet<String> = dataplane::counters::DropReason::ALL
        .iter()
        .map(|r| r.label().to_owned())
        .collect();
    let missing: Vec<&String> = want.difference(&drops).collect();
    assert!(
        missing.is_empty(),
        "drop reasons missing from docs/hardware.md: {missing:?}"
    );
    let stale: Vec<&String> = drops.difference(&want).collect();
    assert!(
        stale.is_empty(),
        "docs/hardware.md lists unknown drop reasons: {stale:?}"
    );

    let control = table_names("### Control counters");
    let want: BTreeSet<String> = control::counters::ControlCounters::default()
        .snapshot()
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .collect();
    let missing: Vec<&String> = want.difference(&control).collect();
    assert!(
        missing.is_empty(),
        "control counters missing from docs/hardware.md: {missing:?}"
    );
    let stale: Vec<&String> = control.difference(&want).collect();
    assert!(
        stale.is_empty(),
        "docs/hardware.md lists unknown control counters: {stale:?}"
    );
}
