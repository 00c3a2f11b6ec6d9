//! Loading from a file: the private key file and the permission rules.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{ConfError, ConfErrors};
use crate::keys::{KeySource, PrivateKey};
use crate::validate::{self, KeyFileProblem};
use crate::Config;

/// A loaded configuration and the warnings about it.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Problems that do not stop wgdp, e.g. an inline private key in a
    /// file that group or others can read.
    pub warnings: Vec<String>,
}

/// The mode bits of `file`, where the platform has them.
#[cfg(unix)]
fn mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode(_meta: &fs::Metadata) -> u32 {
    0o600
}

/// Reads a private key file: mode must deny group and others; the content
/// is the base64 key with an optional trailing newline.
fn read_key_file(file: PathBuf) -> Result<PrivateKey, KeyFileProblem> {
    let mut f = match fs::File::open(&file) {
        Ok(f) => f,
        Err(e) => return Err(KeyFileProblem::Read(file, e)),
    };
    let meta = match f.metadata() {
        Ok(m) => m,
        Err(e) => return Err(KeyFileProblem::Read(file, e)),
    };
    if !meta.is_file() {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
        return Err(KeyFileProblem::Read(file, e));
    }
    let mode = mode(&meta);
    if mode & 0o077 != 0 {
        return Err(KeyFileProblem::Mode(file, mode));
    }
    // A key is 44 characters; read a little more to notice longer files,
    // into a buffer that never grows (growing would leave copies behind).
    const LIMIT: usize = 128;
    let mut text = Zeroizing::new(String::with_capacity(LIMIT + 1));
    if let Err(e) = f.by_ref().take(LIMIT as u64).read_to_string(&mut text) {
        return Err(KeyFileProblem::Read(file, e));
    }
    let key = text.strip_suffix('\n').unwrap_or(&text);
    let key = key.strip_suffix('\r').unwrap_or(key);
    key.parse().map_err(|_| KeyFileProblem::Content(file))
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    ///
    /// A relative `private_key_file` is resolved against the directory of
    /// `path`. A key file readable or writable by group or others is
    /// refused. An inline `private_key` in a configuration file readable by
    /// group or others is a warning.
    pub fn load(path: &Path) -> Result<Loaded, ConfErrors> {
        let read_error = |source| ConfError::Read {
            file: path.to_owned(),
            source,
        };
        let text = Zeroizing::new(fs::read_to_string(path).map_err(read_error)?);
        let config_mode = fs::metadata(path).map(|m| mode(&m)).map_err(read_error)?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let origin = path.display().to_string();
        let config = validate::parse(&text, &origin, &mut |file: &Path| {
            read_key_file(dir.join(file))
        })?;
        let mut warnings = Vec::new();
        if config.interface.key_source == KeySource::Inline && config_mode & 0o044 != 0 {
            warnings.push(format!(
                "{origin}: holds the private key inline and is readable by group/others \
                 (mode {config_mode:04o}): run `chmod 600 {origin}` or use private_key_file"
            ));
        }
        Ok(Loaded { config, warnings })
    }
}
