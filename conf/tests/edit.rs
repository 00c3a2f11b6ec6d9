//! `TableFile`: peer edits keep everything else byte for byte; atomic save.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use conf::{Cidr, Config, PeerConf, PresharedKey, PublicKey, TableFile};

/// A table with comments everywhere, an inline-commented endpoint, a
/// multi-line allowed_ips array, a section after the peers and a comment
/// at the very end.
const TABLE: &str = r#"# wgdp tunnel table for gw1
# (edited by hand and by wgdp)

[interface]
private_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="   # test key
listen_port = 51820

[dpdk]
eal_args = ["-l", "0-2"]
workers = [1, 2]

[ports.tunnel]
device = "net_tap0"
address = ["192.0.2.1/24"]
tap = "wgdp-tun"

[ports.plaintext]
device = "net_tap1"
address = ["10.9.0.1/24"]
tap = "wgdp-plain"

# alice: laptop
[[peers]]
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
endpoint = "198.51.100.7:51820"  # her home router
allowed_ips = [
    "10.9.1.0/24",  # home LAN
]
persistent_keepalive = 25

# bob
[[peers]]
public_key = "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ="
allowed_ips = ["10.9.2.0/24"]

[metrics]
listen = "127.0.0.1:9586"

# end of table
"#;

const ALICE: &str = r#"# alice: laptop
[[peers]]
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
endpoint = "198.51.100.7:51820"  # her home router
allowed_ips = [
    "10.9.1.0/24",  # home LAN
]
persistent_keepalive = 25

"#;

const BOB: &str = r#"[[peers]]
public_key = "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ="
allowed_ips = ["10.9.2.0/24"]
"#;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wgdp-edit-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, content).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `text` opened as a table file in `dir`.
fn open(dir: &TempDir, text: &str) -> TableFile {
    let path = dir.write("wgdp.toml", text, 0o600);
    TableFile::open(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The edited text, checked to be a valid table.
fn edited(table: &TableFile) -> (String, Config) {
    let text = table.to_toml_string().to_string();
    let config = Config::from_str(&text, "edited.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, config)
}

fn peer(key: u8) -> PeerConf {
    PeerConf {
        public_key: PublicKey([key; 32]),
        preshared_key: None,
        endpoint: None,
        allowed_ips: Vec::new(),
        persistent_keepalive: None,
        lanes: 1,
    }
}

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|s| s.parse().expect("cidr")).collect()
}

/// The peers of TABLE as parsed.
fn parsed_peers() -> Vec<PeerConf> {
    Config::from_str(TABLE, "t").expect("TABLE is valid").peers
}

#[test]
fn opening_and_rendering_changes_nothing() {
    let dir = TempDir::new();
    let table = open(&dir, TABLE);
    assert_eq!(edited(&table).0, TABLE);
}

#[test]
fn upserting_an_unchanged_peer_changes_nothing() {
    let dir = TempDir::new();
    let mut table = open(&dir, TABLE);
    for p in parsed_peers() {
        table.upsert_peer(&p);
    }
    assert_eq!(edited(&table).0, TABLE);
}

#[test]
fn updating_a_peer_changes_only_its_lines() {
    let dir = TempDir::new();
    let mut table = open(&dir, TABLE);
    let mut alice = parsed_peers().remove(0);
    alice.endpoint = Some("203.0.113.9:4500".parse().expect("endpoint"));
    alice.persistent_keepalive = None;
    alice.preshared_key = Some(PresharedKey::from_bytes([3; 32]));
    table.upsert_peer(&alice);
    let (text, config) = edited(&table);
    let expected = TABLE
        .replace(
            "endpoint = \"198.51.100.7:51820\"  # her home router",
            "endpoint = \"203.0.113.9:4500\"  # her home router",
        )
        .replace(
            "]\npersistent_keepalive = 25\n",
            "]\npreshared_key = \"AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\"\n",
        );
    assert_eq!(text, expected);
    assert_eq!(config.peers[0], alice);
    assert_eq!(config.peers[1], parsed_peers()[1]);

    // A changed allowed_ips list replaces the array; the rest stays.
    let mut bob = parsed_peers().remove(1);
    bob.allowed_ips = cidrs(&["10.9.2.0/24", "fd00:2::/64"]);
    bob.endpoint = Some("[2001:db8::7]:51820".parse().expect("endpoint"));
    bob.persistent_keepalive = Some(10);
    table.upsert_peer(&bob);
    let (text, config) = edited(&table);
    let expected = expected.replace(
        BOB,
        "[[peers]]\npublic_key = \"BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=\"\n\
         allowed_ips = [\"10.9.2.0/24\", \"fd00:2::/64\"]\n\
         endpoint = \"[2001:db8::7]:51820\"\npersistent_keepalive = 10\n",
    );
    assert_eq!(text, expected);
    assert_eq!(config.peers[1], bob);
}

#[test]
fn a_new_peer_is_appended_after_the_last_one() {
    let dir = TempDir::new();
    let mut table = open(&dir, TABLE);
    let mut carol = peer(5);
    carol.allowed_ips = cidrs(&["10.9.3.0/24"]);
    carol.endpoint = Some("198.51.100.9:51820".parse().expect("endpoint"));
    carol.persistent_keepalive = Some(15);
    table.upsert_peer(&carol);
    let (text, config) = edited(&table);
    let expected = TABLE.replace(
        BOB,
        &format!(
            "{BOB}\n[[peers]]\npublic_key = \"BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=\"\n\
             endpoint = \"198.51.100.9:51820\"\nallowed_ips = [\"10.9.3.0/24\"]\n\
             persistent_keepalive = 15\n"
        ),
    );
    assert_eq!(text, expected);
    assert_eq!(config.peers.len(), 3);
    assert_eq!(config.peers[2], carol);
}

#[test]
fn removing_a_peer_takes_its_comment_and_nothing_else() {
    let dir = TempDir::new();
    let mut table = open(&dir, TABLE);
    assert!(table.remove_peer(&PublicKey([2; 32])));
    let (text, config) = edited(&table);
    assert_eq!(text, TABLE.replace(ALICE, ""));
    assert_eq!(config.peers, parsed_peers()[1..]);

    assert!(!table.remove_peer(&PublicKey([9; 32])), "no such peer");
    assert_eq!(edited(&table).0, TABLE.replace(ALICE, ""));
}

#[test]
fn batch_edits_match_one_at_a_time() {
    let dir = TempDir::new();
    let mut one = open(&dir, TABLE);
    let mut batch = one.clone();
    let mut alice = parsed_peers().remove(0);
    alice.persistent_keepalive = None;
    let mut changes = vec![alice];
    for n in 10..60 {
        let mut p = peer(n);
        p.allowed_ips = cidrs(&[&format!("10.9.{n}.0/24")]);
        changes.push(p);
    }
    // A peer named twice in one batch: the later entry wins.
    let mut again = changes[5].clone();
    again.persistent_keepalive = Some(7);
    changes.push(again);
    for p in &changes {
        one.upsert_peer(p);
    }
    batch.upsert_peers(&changes);
    assert_eq!(edited(&batch).0, edited(&one).0);
    let gone = [PublicKey([2; 32]), PublicKey([12; 32]), PublicKey([99; 32])];
    for k in &gone {
        one.remove_peer(k);
    }
    assert_eq!(batch.remove_peers(&gone), 2, "the third is not in the file");
    let (text, config) = edited(&batch);
    assert_eq!((text, config.peers.len()), (edited(&one).0, 50));
}

#[test]
fn removing_the_last_peer() {
    let dir = TempDir::new();
    let mut table = open(&dir, TABLE);
    assert!(table.remove_peer(&PublicKey([4; 32])));
    assert!(table.remove_peer(&PublicKey([2; 32])));
    let (text, config) = edited(&table);
    assert!(config.peers.is_empty());
    assert_eq!(
        text,
        TABLE
            .replace(ALICE, "")
            .replace(&format!("# bob\n{BOB}\n"), "")
    );
    assert!(!table.remove_peer(&PublicKey([2; 32])));

    // And a peer can be added back to the table that now has none.
    let mut dave = peer(6);
    dave.allowed_ips = cidrs(&["10.9.6.0/24"]);
    table.upsert_peer(&dave);
    assert_eq!(edited(&table).1.peers, [dave]);
}

#[test]
fn appending_to_a_file_without_peers() {
    let dir = TempDir::new();
    let head = &TABLE[..TABLE.find(ALICE).expect("alice")];
    let no_peers = format!("{head}# peers are added by wgdp\n");
    let mut table = open(&dir, &no_peers);
    let mut erin = peer(7);
    erin.preshared_key = Some(PresharedKey::from_bytes([8; 32]));
    table.upsert_peer(&erin);
    let (text, config) = edited(&table);
    assert_eq!(
        text,
        // `head` ends with a blank line; the trailing comment stays last.
        format!(
            "{head}[[peers]]\npublic_key = \"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\"\n\
             preshared_key = \"CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=\"\n\
             allowed_ips = []\n\n# peers are added by wgdp\n"
        )
    );
    assert_eq!(config.peers, [erin]);
}

#[test]
fn save_replaces_the_file_atomically_keeping_its_mode() {
    let dir = TempDir::new();
    let path = dir.write("wgdp.toml", TABLE, 0o640);
    let mut table = TableFile::open(&path).expect("open");
    assert_eq!(table.path(), path);
    assert!(table.remove_peer(&PublicKey([4; 32])));
    table.save().expect("save");
    let saved = fs::read_to_string(&path).expect("read back");
    assert_eq!(saved, *table.to_toml_string());
    assert_eq!(saved, TABLE.replace(&format!("# bob\n{BOB}\n"), ""));
    let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);
    assert_eq!(dir.names(), ["wgdp.toml"], "no temporary file left behind");
    let loaded = Config::load(&path).expect("loads");
    assert_eq!(loaded.config.peers, parsed_peers()[..1]);
}

#[test]
fn save_through_a_symlink_replaces_the_target() {
    let dir = TempDir::new();
    let real = dir.write("real.toml", TABLE, 0o600);
    let link = dir.0.join("wgdp.toml");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let mut table = TableFile::open(&link).expect("open");
    table.upsert_peer(&peer(5));
    table.save().expect("save");
    assert!(fs::symlink_metadata(&link)
        .expect("lstat")
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_to_string(&real).expect("read"),
        *table.to_toml_string()
    );
    assert_eq!(dir.names(), ["real.toml", "wgdp.toml"]);
}

#[test]
fn save_fails_cleanly_when_the_target_cannot_be_replaced() {
    // Renaming a file over a non-empty directory fails even for root: the
    // temporary file must be removed and the directory left as it was.
    let dir = TempDir::new();
    let path = dir.write("wgdp.toml", TABLE, 0o600);
    let table = TableFile::open(&path).expect("open");
    fs::remove_file(&path).expect("rm");
    fs::create_dir(&path).expect("mkdir in its place");
    fs::write(path.join("inside"), "x").expect("write");
    assert!(table.save().is_err());
    assert_eq!(dir.names(), ["wgdp.toml"], "no temporary file left behind");
    assert_eq!(fs::read_to_string(path.join("inside")).expect("read"), "x");
}

#[test]
fn debug_does_not_show_the_document() {
    let dir = TempDir::new();
    let table = open(&dir, TABLE);
    let debug = format!("{table:?}");
    assert!(!debug.contains("AQEBAQEBAQEB"), "{debug}");
    assert!(debug.contains("wgdp.toml"), "{debug}");
}

#[test]
fn open_errors_carry_positions() {
    let dir = TempDir::new();
    let path = dir.write("bad.toml", "[interface]\nlisten_port = \n", 0o600);
    let err = TableFile::open(&path)
        .expect_err("syntax error")
        .to_string();
    let prefix = format!("{}:2:15: TOML syntax error: ", path.display());
    assert!(err.starts_with(&prefix), "{err}");

    let inline = "# top\npeers = [{ public_key = \"x\" }]\n[interface]\nlisten_port = 1\n";
    let path = dir.write("inline.toml", inline, 0o600);
    let err = TableFile::open(&path)
        .expect_err("inline peers")
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}:2:9: peers: expected array of [[peers]] tables (to be edited in place), found array",
            path.display()
        )
    );

    let missing = dir.0.join("absent.toml");
    let err = TableFile::open(&missing).expect_err("missing").to_string();
    assert!(
        err.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{err}"
    );
}

/// `TABLE` with two groups: both of its peers in `site`, bob alone in
/// `solo`.
fn with_groups() -> String {
    TABLE.replace(
        "[metrics]",
        "[[groups]]\nname = \"site\"\n\
         members = [\"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\", \"BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=\"]  # both\n\
         prefixes = [\"10.77.0.0/16\", \"10.78.0.0/16\"]\n\n\
         [[groups]]\nname = \"solo\"\nmembers = [\"BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=\"]\nprefixes = [\"10.79.0.0/16\"]\n\n\
         [metrics]",
    )
}

#[test]
fn removing_a_member_prunes_its_groups_and_the_file_stays_valid() {
    let dir = TempDir::new();
    let mut table = open(&dir, &with_groups());
    let bob = "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ="
        .parse()
        .expect("key");
    assert_eq!(table.remove_peers(&[bob]), 1);
    let (text, config) = edited(&table);
    // `solo` lost its only member: gone with its prefixes; `site` keeps
    // alice, and its comment.
    assert_eq!(config.groups.len(), 1, "{text}");
    assert_eq!(config.groups[0].name, "site");
    assert_eq!(config.groups[0].members, vec![peer(2).public_key]);
    assert!(text.contains("]  # both"), "{text}");
    assert!(!text.contains("solo"), "{text}");
}

#[test]
fn a_prefix_given_to_a_peer_leaves_its_group() {
    let dir = TempDir::new();
    let mut table = open(&dir, &with_groups());
    let mut alice = parsed_peers()[0].clone();
    alice
        .allowed_ips
        .push("10.78.0.0/16".parse().expect("cidr"));
    alice
        .allowed_ips
        .push("10.79.0.0/16".parse().expect("cidr"));
    table.upsert_peer(&alice);
    let (text, config) = edited(&table);
    assert_eq!(config.groups.len(), 1, "{text}");
    assert_eq!(config.groups[0].prefixes, cidrs(&["10.77.0.0/16"]));
}
