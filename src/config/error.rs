//! What can go wrong while loading a configuration, located by file, line,
//! column and key.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A place in a file: line and column, both counted from 1; columns count
/// characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Position {
    /// Line number, from 1.
    pub(crate) line: usize,
    /// Column number in characters, from 1.
    pub(crate) column: usize,
}

/// One problem (or warning) in a configuration file.
///
/// Displays as `FILE:LINE:COLUMN: KEY: MESSAGE`, the position and the key
/// left out where there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Diagnostic {
    /// The file the problem is in, as it was named to Tandem.
    pub(crate) file: PathBuf,
    /// Where in the file, if the problem has a place.
    pub(crate) position: Option<Position>,
    /// The key, as a path from the top of the file (`connections[0].children[1].esp_proposals`);
    /// empty when the problem is not about one key.
    pub(crate) key: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every failure of [`load`](super::load) and [`parse_str`](super::parse_str).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConfigError {
    /// The configuration file or the secrets file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// The secrets file grants its group or others some access.
    #[error(
        "{}: secrets file has mode {mode:04o}, which lets group or others access it; run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions {
        /// The secrets file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The text is not TOML, or does not fit the schema: an unknown key, a
    /// missing key, or a value of the wrong type or format.
    #[error("{0}")]
    Syntax(Diagnostic),
    /// Well-formed values that are wrong or do not fit together (unknown
    /// proposal keywords, missing secrets, undefined pools, ...); all that
    /// were found, in file order.
    #[error("{}", DisplayList(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// The located problems this error carries (none for `Read` and
    /// `InsecurePermissions`, whose message names the file).
    pub(crate) fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::Syntax(d) => core::slice::from_ref(d),
            Self::Invalid(list) => list,
            Self::Read { .. } | Self::InsecurePermissions { .. } => &[],
        }
    }
}

/// Displays diagnostics one per line.
struct DisplayList<'a>(&'a [Diagnostic]);

impl fmt::Display for DisplayList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
