//! `Config::load`: key files, their permissions, relative paths, warnings.
#![cfg(unix)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{with, BASE};
use conf::{Config, KeySource, PrivateKey};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "wgdp-conf-test-{}-{}-{}",
            std::process::id(),
            nanos,
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, content).expect("write");
        chmod(&path, mode);
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

#[test]
fn key_file_permissions_are_enforced() {
    let dir = TempDir::new();
    let key = dir.write("private.key", &format!("{KEY}\n"), 0o644);
    let conf = dir.write(
        "wgdp.toml",
        &with(
            2,
            &format!("private_key_file = {:?}", key.display().to_string()),
        ),
        0o644,
    );
    let err = Config::load(&conf)
        .expect_err("0644 key file is refused")
        .to_string();
    let expected_start = format!("{}:2:20: interface.private_key_file: ", conf.display());
    assert!(err.starts_with(&expected_start), "{err}");
    assert!(err.contains("mode 0644"), "{err}");
    assert!(
        err.contains(&format!("`chmod 600 {}`", key.display())),
        "{err}"
    );

    chmod(&key, 0o600);
    let loaded = Config::load(&conf).expect("0600 key file is fine");
    assert_eq!(
        loaded.config.interface.private_key,
        PrivateKey::from_bytes([1; 32])
    );
    assert_eq!(
        loaded.config.interface.key_source,
        KeySource::File(key.clone())
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    chmod(&key, 0o400);
    Config::load(&conf).expect("0400 key file is fine");
    chmod(&key, 0o620);
    Config::load(&conf).expect_err("group-writable key file is refused");
}

#[test]
fn relative_key_file_is_resolved_against_the_config_directory() {
    let dir = TempDir::new();
    fs::create_dir(dir.0.join("keys")).expect("mkdir");
    dir.write("keys/private.key", KEY, 0o600);
    let conf = dir.write(
        "wgdp.toml",
        &with(2, "private_key_file = \"keys/private.key\""),
        0o600,
    );
    let loaded = Config::load(&conf).expect("relative key file");
    assert_eq!(
        loaded.config.interface.key_source,
        KeySource::File(PathBuf::from("keys/private.key"))
    );
    assert_eq!(
        loaded.config.interface.private_key,
        PrivateKey::from_bytes([1; 32])
    );
    // The rendering keeps the reference, and loads back to the same config.
    let rendered = loaded.config.to_toml_string();
    assert!(
        rendered.contains("private_key_file = \"keys/private.key\""),
        "{rendered}"
    );
    assert!(!rendered.contains(KEY), "{rendered}");
    let again = dir.write("again.toml", &rendered, 0o600);
    assert_eq!(
        Config::load(&again).expect("round trip").config,
        loaded.config
    );
}

#[test]
fn key_file_problems() {
    let dir = TempDir::new();
    let conf = dir.write(
        "wgdp.toml",
        &with(2, "private_key_file = \"missing.key\""),
        0o600,
    );
    let err = Config::load(&conf)
        .expect_err("missing key file")
        .to_string();
    assert!(
        err.contains("interface.private_key_file: cannot read"),
        "{err}"
    );

    dir.write("missing.key", "not a key\n", 0o600);
    let err = Config::load(&conf).expect_err("bad key file").to_string();
    assert!(err.ends_with("content is not base64 of 32 bytes"), "{err}");

    dir.write("missing.key", &format!("{KEY}\n\n"), 0o600);
    Config::load(&conf).expect_err("only one trailing newline");

    let conf = dir.write("wgdp.toml", &with(2, "private_key_file = \"\""), 0o600);
    let err = Config::load(&conf).expect_err("a directory").to_string();
    assert!(err.ends_with("not a regular file"), "{err}");
}

#[test]
fn inline_key_in_readable_config_warns() {
    let dir = TempDir::new();
    let conf = dir.write("wgdp.toml", BASE, 0o644);
    let loaded = Config::load(&conf).expect("loads");
    assert_eq!(loaded.warnings.len(), 1);
    assert!(
        loaded.warnings[0].contains("chmod 600"),
        "{:?}",
        loaded.warnings
    );

    chmod(&conf, 0o600);
    let loaded = Config::load(&conf).expect("loads");
    assert!(loaded.warnings.is_empty());
}

#[test]
fn missing_config_file() {
    let dir = TempDir::new();
    let err = Config::load(&dir.0.join("nope.toml"))
        .expect_err("missing")
        .to_string();
    assert!(err.contains("nope.toml: cannot read"), "{err}");
}
