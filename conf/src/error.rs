//! Errors: every one names the file, line, column and field path.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A position in the configuration text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name (or other origin) given to the parser.
    pub origin: String,
    /// Line, counting from 1.
    pub line: usize,
    /// Column in characters, counting from 1.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text` (clamped to the text).
    pub fn from_offset(origin: &str, text: &str, offset: usize) -> Self {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            origin: origin.to_owned(),
            line,
            column,
        }
    }
}

/// Where each line of a text starts, to turn many byte offsets into
/// [`Location`]s without rescanning the text for each (a 100k-peer table
/// has hundreds of thousands of positions).
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`.
    pub(crate) fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { starts }
    }

    /// The same as [`Location::from_offset`], in logarithmic time.
    pub(crate) fn locate(&self, origin: &str, text: &str, offset: usize) -> Location {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= end).max(1);
        let line_start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = text.get(line_start..end).map_or(0, |s| s.chars().count()) + 1;
        Location {
            origin: origin.to_owned(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// One problem with a configuration.
///
/// Display is `FILE:LINE:COLUMN: FIELD.PATH: message`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfError {
    /// The configuration file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The configuration file.
        file: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The text is not valid TOML.
    #[error("{at}: TOML syntax error: {message}")]
    Syntax {
        /// Where.
        at: Location,
        /// The parser's message.
        message: String,
    },
    /// A key that the schema does not know.
    #[error("{at}: {path}: unknown field (expected one of: {expected})")]
    UnknownField {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The fields allowed in that table.
        expected: String,
    },
    /// A required field is absent.
    #[error("{at}: {path}: missing field")]
    MissingField {
        /// Where the enclosing table is.
        at: Location,
        /// The field path.
        path: String,
    },
    /// A value of the wrong TOML type.
    #[error("{at}: {path}: expected {expected}, found {found}")]
    WrongType {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The expected type.
        expected: &'static str,
        /// The type given.
        found: &'static str,
    },
    /// An integer outside its range.
    #[error("{at}: {path}: {value} is out of range {min}..={max}")]
    OutOfRange {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The value given.
        value: i64,
        /// The smallest value allowed.
        min: i64,
        /// The largest value allowed.
        max: i64,
    },
    /// A list that must not be empty is.
    #[error("{at}: {path}: must not be empty")]
    Empty {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
    },
    /// A key that is not base64 of 32 bytes.
    #[error("{at}: {path}: not base64 of 32 bytes")]
    BadKey {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
    },
    /// Both or neither of `private_key` and `private_key_file`.
    #[error("{at}: {path}: {message}")]
    KeySource {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// What is wrong.
        message: &'static str,
    },
    /// An IP address that does not parse.
    #[error("{at}: {path}: {value:?} is not an IP address")]
    BadAddress {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The text given.
        value: String,
    },
    /// A prefix (`ADDRESS/LEN`) that does not parse.
    #[error("{at}: {path}: {value:?} is not a prefix: {reason}")]
    BadCidr {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The text given.
        value: String,
        /// Why.
        reason: String,
    },
    /// An allowed-IPs prefix with host bits set.
    #[error("{at}: {path}: {value} has host bits set; write {canonical}")]
    NonCanonicalCidr {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The prefix given.
        value: String,
        /// The same prefix with host bits cleared.
        canonical: String,
    },
    /// An endpoint that is not `IP:PORT` with a nonzero port.
    #[error(
        "{at}: {path}: {value:?} is not IP:PORT (IPv6 as [ADDR]:PORT, port nonzero, no host names)"
    )]
    BadEndpoint {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The text given.
        value: String,
    },
    /// A TAP interface name that Linux would refuse.
    #[error("{at}: {path}: {value:?} is not an interface name (1..=15 of A-Z a-z 0-9 _ . -, not \".\" or \"..\")")]
    BadTapName {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The text given.
        value: String,
    },
    /// An interface name that Linux (and `wg`) would refuse.
    #[error("{at}: {path}: {value:?} is not an interface name (1..=15 of A-Z a-z 0-9 _ . = + -, not \".\" or \"..\")")]
    BadInterfaceName {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The text given.
        value: String,
    },
    /// An AEAD backend name wgdp does not know.
    #[error("{at}: {path}: {value:?} is not an AEAD backend (\"auto\", \"ring\", \"ipsec-mb\", \"cryptodev\" or \"multibuffer\")")]
    BadAead {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The text given.
        value: String,
    },
    /// `aead = "cryptodev"` without `crypto_device`.
    #[error("{at}: {path}: \"cryptodev\" needs dpdk.crypto_device (the crypto device's name, e.g. \"crypto_aesni_mb0\")")]
    CryptodevWithoutDevice {
        /// Where (the `aead` value).
        at: Location,
        /// The field path.
        path: String,
    },
    /// `crypto_device` set while `aead` is not `"cryptodev"`.
    #[error("{at}: {path}: set, but dpdk.aead is not \"cryptodev\"")]
    DeviceWithoutCryptodev {
        /// Where (the `crypto_device` value).
        at: Location,
        /// The field path.
        path: String,
    },
    /// A listening address that is not `IP:PORT` with a nonzero port.
    #[error(
        "{at}: {path}: {value:?} is not IP:PORT (IPv6 as [ADDR]:PORT, port nonzero, no host names)"
    )]
    BadListen {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The text given.
        value: String,
    },
    /// A wg-quick file line that cannot be imported (see `import_wg_quick`).
    #[error("{at}: {path}: {message}")]
    WgQuick {
        /// Where.
        at: Location,
        /// The section and key, e.g. `Peer[1].AllowedIPs`, or the section.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `dpdk.eal_args` whose lcore options (`-l`, `--lcores`, `-c`,
    /// `--main-lcore`) do not parse.
    #[error("{at}: {path}: {message}")]
    EalLcores {
        /// Where the `eal_args` field is.
        at: Location,
        /// The field path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A worker lcore that `dpdk.eal_args` does not enable.
    #[error("{at}: {path}: lcore {lcore} is not enabled by dpdk.eal_args (it enables {enabled})")]
    WorkerNotEnabled {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The worker lcore.
        lcore: u32,
        /// The lcores `eal_args` enables, e.g. `0, 1, 2`.
        enabled: String,
    },
    /// A worker lcore that is EAL's main lcore.
    #[error("{at}: {path}: lcore {lcore} is EAL's main lcore, which runs the control thread")]
    WorkerIsMain {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The worker lcore.
        lcore: u32,
    },
    /// A gateway that no address prefix of its port contains.
    #[error("{at}: {path}: gateway {gateway} is not inside any of the port's address prefixes")]
    GatewayOutside {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The gateway given.
        gateway: String,
    },
    /// A second gateway of the same address family.
    #[error("{at}: {path}: more than one {family} gateway")]
    GatewayRepeated {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// "IPv4" or "IPv6".
        family: &'static str,
    },
    /// A peer whose public key is the interface's own.
    #[error("{at}: {path}: is the interface's own public key")]
    OwnPublicKey {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
    },
    /// An `mss_clamp` that is neither "auto", "off" nor an MSS.
    #[error("{at}: {path}: {value} is not \"auto\", \"off\" or an MSS (536..=65495)")]
    BadMssClamp {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The value given.
        value: String,
    },
    /// A port range that does not parse.
    #[error("{at}: {path}: {value:?} is not a port range (FIRST-LAST, 1..=65535, FIRST <= LAST)")]
    BadPortRange {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The text given.
        value: String,
    },
    /// A peer with more lanes than there are workers.
    #[error("{at}: {path}: {lanes} lanes but only {workers} workers (dpdk.workers)")]
    LanesOverWorkers {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The lanes asked for.
        lanes: u16,
        /// The workers configured.
        workers: usize,
    },
    /// A multi-lane peer without `ports.tunnel.lane_ports`.
    #[error("{at}: {path}: {lanes} lanes need ports.tunnel.lane_ports (one outer source port per worker)")]
    LanesWithoutPorts {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The lanes asked for.
        lanes: u16,
    },
    /// A lane port range smaller than the workers.
    #[error("{at}: {path}: {ports} ports for {workers} workers (dpdk.workers): give each worker its own")]
    LanePortsTooFew {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// Ports in the range.
        ports: usize,
        /// The workers configured.
        workers: usize,
    },
    /// A role given twice: `[ports.both]` beside `[ports.tunnel]` or
    /// `[ports.plaintext]`.
    #[error("{at}: {path}: [ports.both] already carries the {role} role: give [ports.both] alone (one port, both roles) or [ports.tunnel] and [ports.plaintext]")]
    RoleTwice {
        /// Where.
        at: Location,
        /// The field path of the second table.
        path: String,
        /// The role, `tunnel` or `plaintext`.
        role: String,
    },
    /// `[ports.tunnel]` and `[ports.plaintext]` on one device, which is
    /// allowed only as two VLANs of it: each port with its own `vlan`,
    /// and one MTU.
    #[error("{at}: {path}: {problem}")]
    SharedDevice {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A value that must be unique appears twice.
    #[error("{at}: {path}: duplicate of {first} ({value})")]
    Duplicate {
        /// Where the second occurrence is.
        at: Location,
        /// The field path of the second occurrence.
        path: String,
        /// The field path of the first occurrence.
        first: String,
        /// The repeated value.
        value: String,
    },
    /// An allowed-IPs prefix given to two peers.
    #[error("{at}: {path}: {cidr} is already an allowed IP of {other}")]
    DuplicateAllowedIp {
        /// Where the second occurrence is.
        at: Location,
        /// The field path of the second occurrence.
        path: String,
        /// The prefix.
        cidr: String,
        /// The peer that has it first, e.g. `peers[0]`.
        other: String,
    },
    /// A group name that is not 1..=32 of `A-Z a-z 0-9 _ . -`.
    #[error("{at}: {path}: {value:?} is not a group name (1..=32 of A-Z a-z 0-9 _ . -)")]
    BadGroupName {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The text given.
        value: String,
    },
    /// A group member that is no `[[peers]]` entry's public key.
    #[error("{at}: {path}: {key} is not the public_key of any [[peers]] entry")]
    UnknownGroupMember {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The key given.
        key: String,
    },
    /// A group prefix that a peer's allowed IPs or another group already
    /// route.
    #[error("{at}: {path}: {cidr} is already routed to {other} (nested prefixes are fine: the longest match wins)")]
    GroupPrefixTaken {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The prefix.
        cidr: String,
        /// Who routes it first, e.g. `peers[0]` or `groups[1]`.
        other: String,
    },
    /// A group with more members than [`crate::MAX_GROUP_MEMBERS`].
    #[error("{at}: {path}: {count} members; a group has at most {max}")]
    TooManyMembers {
        /// Where.
        at: Location,
        /// The field path.
        path: String,
        /// The members given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A private key file that cannot be read.
    #[error("{at}: {path}: cannot read {file}: {source}")]
    KeyFileRead {
        /// Where the `private_key_file` field is.
        at: Location,
        /// The field path.
        path: String,
        /// The key file, resolved.
        file: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A private key file readable or writable by group or others.
    #[error("{at}: {path}: {file} has mode {mode:04o}, readable or writable by group/others; refusing it: run `chmod 600 {file}`")]
    KeyFileMode {
        /// Where the `private_key_file` field is.
        at: Location,
        /// The field path.
        path: String,
        /// The key file, resolved.
        file: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A private key file whose content is not a key.
    #[error("{at}: {path}: {file}: content is not base64 of 32 bytes")]
    KeyFileContent {
        /// Where the `private_key_file` field is.
        at: Location,
        /// The field path.
        path: String,
        /// The key file, resolved.
        file: PathBuf,
    },
    /// `private_key_file` given to the pure parser, which reads no files.
    #[error("{at}: {path}: key files are read only by Config::load")]
    KeyFileNotLoaded {
        /// Where the `private_key_file` field is.
        at: Location,
        /// The field path.
        path: String,
    },
}

/// All the problems found in one configuration (at least one).
#[derive(Debug)]
pub struct ConfErrors(pub Vec<ConfError>);

impl ConfErrors {
    /// The problems, in document order as far as it is known.
    pub fn errors(&self) -> &[ConfError] {
        &self.0
    }
}

impl From<ConfError> for ConfErrors {
    fn from(e: ConfError) -> Self {
        ConfErrors(vec![e])
    }
}

impl fmt::Display for ConfErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfErrors {}

#[cfg(test)]
mod tests {
    use super::{LineIndex, Location};

    #[test]
    fn the_index_locates_like_the_scan() {
        let text = "a = 1\n\nname = \"é€x\"\n[t]\nlast";
        let index = LineIndex::new(text);
        for offset in 0..=text.len() + 3 {
            assert_eq!(
                index.locate("f", text, offset),
                Location::from_offset("f", text, offset),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn offsets_to_line_and_column() {
        let text = "ab\ncé = 1\n";
        let at = |o| Location::from_offset("f", text, o).to_string();
        assert_eq!(at(0), "f:1:1");
        assert_eq!(at(2), "f:1:3");
        assert_eq!(at(3), "f:2:1");
        // Columns count characters, not bytes; a mid-character offset or
        // one past the end is clamped.
        assert_eq!(at(6), "f:2:3");
        assert_eq!(at(5), "f:2:2");
        assert_eq!(at(999), "f:3:1");
    }
}
