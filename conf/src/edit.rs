//! Writing live peer changes back to the table file, keeping the
//! operator's comments, blank lines and key order, atomically.
//!
//! Peers added, removed or changed on a running wgdp (through `wg set`)
//! must survive a restart. [`TableFile`] edits the `[[peers]]` tables of
//! the file with `toml_edit`, which keeps everything it is not asked to
//! change byte for byte, and [`TableFile::save`] replaces the file
//! atomically (temporary file in the same directory, fsync, rename, fsync
//! of the directory).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use toml_edit::{Array, ArrayOfTables, DocumentMut, ImDocument, Item, Table, Value};
use zeroize::Zeroizing;

use crate::cidr::Cidr;
use crate::error::{ConfError, ConfErrors, Location};
use crate::keys::{PresharedKey, PublicKey};
use crate::PeerConf;

/// A table file opened for editing: the document as `toml_edit` holds it
/// (every comment and blank line included) and where it came from.
/// `Debug` shows only the path: the document may hold the private key.
#[derive(Clone)]
pub struct TableFile {
    doc: DocumentMut,
    path: PathBuf,
}

impl fmt::Debug for TableFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TableFile {
    /// Reads and parses the file at `path` for editing.
    ///
    /// Only the TOML syntax and the shape of `peers` (absent, or an array
    /// of `[[peers]]` tables) are checked here: the file was validated when
    /// it was loaded, and [`TableFile::to_toml_string`] can be checked again
    /// with [`crate::Config::from_str`] before saving.
    pub fn open(path: &Path) -> Result<Self, ConfErrors> {
        let text = fs::read_to_string(path).map_err(|source| ConfError::Read {
            file: path.to_owned(),
            source,
        })?;
        let text = Zeroizing::new(text);
        let origin = path.display().to_string();
        let at = |offset: usize| Location::from_offset(&origin, &text, offset);
        let parsed = ImDocument::parse(text.as_str()).map_err(|e| ConfError::Syntax {
            at: at(e.span().map_or(0, |s| s.start)),
            message: e.message().trim_end().replace('\n', "; "),
        })?;
        if let Some(peers) = parsed.get("peers") {
            if !peers.is_array_of_tables() {
                return Err(ConfError::WrongType {
                    at: at(peers.span().map_or(0, |s| s.start)),
                    path: "peers".into(),
                    expected: "array of [[peers]] tables (to be edited in place)",
                    found: peers.type_name(),
                }
                .into());
            }
        }
        Ok(TableFile {
            doc: parsed.into_mut(),
            path: path.to_owned(),
        })
    }

    /// The file this table was read from and [`TableFile::save`] writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The document as it would be saved. It may hold the private key.
    pub fn to_toml_string(&self) -> Zeroizing<String> {
        Zeroizing::new(self.doc.to_string())
    }

    /// Makes the `[[peers]]` entry for `peer.public_key` say `peer`.
    ///
    /// An existing entry is updated in place: fields whose value is
    /// unchanged are left exactly as written (format and comments
    /// included), changed values keep their line's comment, fields that
    /// became absent (e.g. `endpoint` now `None`) are removed, new fields
    /// are added at the end of the table. Without an entry, a new
    /// `[[peers]]` table is appended after the last one (at the end of the
    /// file if there is none).
    pub fn upsert_peer(&mut self, peer: &PeerConf) {
        self.upsert_peers(std::slice::from_ref(peer));
    }

    /// [`TableFile::upsert_peer`] for each of `peers`, in order, with one
    /// pass over the file's entries for all of them (a `wg setconf` of
    /// 100k peers must not search the file once per peer).
    pub fn upsert_peers(&mut self, peers: &[PeerConf]) {
        if peers.is_empty() {
            return;
        }
        if !self.doc.contains_key("peers") {
            // `open` refused any other shape of `peers`: it is absent.
            self.doc
                .insert("peers", Item::ArrayOfTables(ArrayOfTables::new()));
        }
        let Some(tables) = self
            .doc
            .get_mut("peers")
            .and_then(Item::as_array_of_tables_mut)
        else {
            return;
        };
        let mut by_key: HashMap<PublicKey, usize> = HashMap::new();
        for (i, t) in tables.iter().enumerate() {
            if let Some(key) = public_key(t) {
                by_key.entry(key).or_insert(i);
            }
        }
        for peer in peers {
            match by_key
                .get(&peer.public_key)
                .and_then(|&i| tables.get_mut(i))
            {
                Some(table) => update(table, peer),
                None => {
                    tables.push(new_table(peer));
                    by_key.insert(peer.public_key, tables.len() - 1);
                }
            }
        }
        // A prefix moves to the peer that is given it last, as in the
        // kernel: a group that routed it gives it up.
        let taken: HashSet<Cidr> = peers
            .iter()
            .flat_map(|p| p.allowed_ips.iter().copied())
            .collect();
        self.prune_groups(&HashSet::new(), &taken);
    }

    /// Removes the `[[peers]]` entry (entries, if the file repeats it) for
    /// `key`, with the comments above its header. Returns whether there was
    /// one. Removing the last peer removes `peers` altogether.
    pub fn remove_peer(&mut self, key: &PublicKey) -> bool {
        self.remove_peers(std::slice::from_ref(key)) > 0
    }

    /// [`TableFile::remove_peer`] for each of `keys`, in one pass over the
    /// file's entries; returns how many entries were removed.
    pub fn remove_peers(&mut self, keys: &[PublicKey]) -> usize {
        let Some(peers) = self
            .doc
            .get_mut("peers")
            .and_then(Item::as_array_of_tables_mut)
        else {
            return 0;
        };
        let doomed: HashSet<&PublicKey> = keys.iter().collect();
        let before = peers.len();
        peers.retain(|t| public_key(t).is_none_or(|k| !doomed.contains(&k)));
        let removed = before - peers.len();
        if peers.is_empty() {
            self.doc.remove("peers");
        }
        self.prune_groups(&doomed.into_iter().copied().collect(), &HashSet::new());
        removed
    }

    /// Takes the peers `gone` out of every `[[groups]]` entry's `members`
    /// and the prefixes `taken` out of their `prefixes`; a group left
    /// without members or prefixes is removed, as the running wgdp removes
    /// it (the file stays valid: no group names a peer it lacks or a
    /// prefix a peer routes). Returns the names of the groups removed.
    pub fn prune_groups(
        &mut self,
        gone: &HashSet<PublicKey>,
        taken: &HashSet<Cidr>,
    ) -> Vec<String> {
        let Some(groups) = self
            .doc
            .get_mut("groups")
            .and_then(Item::as_array_of_tables_mut)
        else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for group in groups.iter_mut() {
            retain_strings(group, "members", |s| {
                s.parse::<PublicKey>().is_ok_and(|k| !gone.contains(&k))
            });
            retain_strings(group, "prefixes", |s| {
                s.parse::<Cidr>().is_ok_and(|c| !taken.contains(&c))
            });
        }
        groups.retain(|g| {
            let empty = |key| {
                g.get(key)
                    .and_then(Item::as_array)
                    .is_none_or(Array::is_empty)
            };
            let doomed = empty("members") || empty("prefixes");
            if doomed {
                let name = g.get("name").and_then(Item::as_str).unwrap_or_default();
                removed.push(name.to_owned());
            }
            !doomed
        });
        if groups.is_empty() {
            self.doc.remove("groups");
        }
        removed
    }

    /// Writes the document to [`TableFile::path`] atomically: to a new
    /// temporary file in the same directory with the original's mode (and,
    /// on Unix, owner), fsynced, renamed over the original, then the
    /// directory fsynced. A symbolic link is followed: its target is
    /// replaced. On failure the original is untouched and the temporary
    /// file removed.
    pub fn save(&self) -> io::Result<()> {
        let target = match fs::canonicalize(&self.path) {
            Ok(target) => target,
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.path.clone(),
            Err(e) => return Err(e),
        };
        let original = match fs::metadata(&target) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map_or_else(|| "wgdp.toml".into(), |n| n.to_string_lossy());
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let temp = dir.join(format!(
            ".{name}.wgdp-tmp.{}.{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let text = self.to_toml_string();
        let written = write_temp(&temp, text.as_bytes(), original.as_ref())
            .and_then(|()| fs::rename(&temp, &target));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        fs::File::open(&dir)?.sync_all()
    }
}

/// Creates `temp` (never an existing file), gives it the mode and owner of
/// `original`, writes `bytes` and syncs it to disk.
fn write_temp(temp: &Path, bytes: &[u8], original: Option<&fs::Metadata>) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(temp)?;
    if let Some(original) = original {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let created = file.metadata()?;
            if (created.uid(), created.gid()) != (original.uid(), original.gid()) {
                std::os::unix::fs::fchown(&file, Some(original.uid()), Some(original.gid()))?;
            }
        }
        file.set_permissions(original.permissions())?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

/// A new `[[peers]]` table for `peer`, fields in schema order, preceded
/// by a blank line.
fn new_table(peer: &PeerConf) -> Table {
    let mut table = Table::new();
    table.decor_mut().set_prefix("\n");
    let key = peer.public_key.to_string();
    table.insert("public_key", Item::Value(key.into()));
    if let Some(k) = &peer.preshared_key {
        table.insert("preshared_key", Item::Value(k.to_base64().as_str().into()));
    }
    if let Some(e) = peer.endpoint {
        table.insert("endpoint", Item::Value(e.to_string().into()));
    }
    let array: Array = peer.allowed_ips.iter().map(|c| c.to_string()).collect();
    table.insert("allowed_ips", Item::Value(Value::Array(array)));
    if let Some(k) = peer.persistent_keepalive {
        table.insert("persistent_keepalive", Item::Value(i64::from(k).into()));
    }
    table
}

/// The public key of a `[[peers]]` table, if it has a valid one.
/// Keeps the strings of the array `key` of `table` for which `keep` holds
/// (other values are left alone).
fn retain_strings(table: &mut Table, key: &str, keep: impl Fn(&str) -> bool) {
    if let Some(array) = table.get_mut(key).and_then(Item::as_array_mut) {
        array.retain(|v| v.as_str().is_none_or(&keep));
    }
}

fn public_key(table: &Table) -> Option<PublicKey> {
    table.get("public_key")?.as_str()?.parse().ok()
}

/// Sets `key` to `value`, keeping the old value's decor (the spaces around
/// it and a comment after it) when there was one.
fn set(table: &mut Table, key: &str, mut value: Value) {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        Some(other) => *other = Item::Value(value),
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

/// Sets `key` to `value` (or removes it, for `None`) unless the table
/// already says `current`, which is what the file means for it.
fn sync<T: PartialEq>(table: &mut Table, key: &str, current: T, wanted: T, value: Option<Value>) {
    if current == wanted {
        return;
    }
    match value {
        Some(value) => set(table, key, value),
        None => {
            table.remove(key);
        }
    }
}

/// Brings every field but `public_key` of `table` in line with `peer`.
fn update(table: &mut Table, peer: &PeerConf) {
    let str_of = |t: &Table, key: &str| t.get(key).and_then(Item::as_str).map(str::to_owned);

    let current = str_of(table, "preshared_key").and_then(|s| s.parse::<PresharedKey>().ok());
    let value = peer
        .preshared_key
        .as_ref()
        .map(|k| Value::from(k.to_base64().as_str()));
    sync(
        table,
        "preshared_key",
        current,
        peer.preshared_key.clone(),
        value,
    );

    let current = str_of(table, "endpoint").and_then(|s| s.parse::<SocketAddr>().ok());
    let value = peer.endpoint.map(|e| Value::from(e.to_string()));
    sync(table, "endpoint", current, peer.endpoint, value);

    let current: Option<Vec<Cidr>> = match table.get("allowed_ips") {
        None => Some(Vec::new()),
        Some(item) => item.as_array().and_then(|a| {
            a.iter()
                .map(|v| v.as_str().and_then(|s| s.parse().ok()))
                .collect()
        }),
    };
    let array: Array = peer.allowed_ips.iter().map(|c| c.to_string()).collect();
    sync(
        table,
        "allowed_ips",
        current,
        Some(peer.allowed_ips.clone()),
        Some(Value::Array(array)),
    );

    let current = match table.get("persistent_keepalive") {
        None => Some(None),
        Some(item) => item
            .as_integer()
            .and_then(|k| u16::try_from(k).ok())
            .map(|k| Some(k).filter(|&k| k != 0)),
    };
    let wanted = peer.persistent_keepalive;
    let value = wanted.map(|k| Value::from(i64::from(k)));
    sync(table, "persistent_keepalive", current, Some(wanted), value);
}
