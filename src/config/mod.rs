//! The gateway configuration: one TOML file modelled on strongSwan's
//! swanctl.conf, read into a checked [`GatewayConfig`].
//!
//! Loading goes in three steps:
//!
//! 1. serde reads the text into the `raw` structs: every key is spelled
//!    out, so an unknown key, a missing key or a value of the wrong type or
//!    format (a duration, an address, an identity, a traffic selector) is a
//!    [`ConfigError::Syntax`] naming the file, line, column and key path.
//! 2. `secrets_file`, if given, is read the same way, after checking that
//!    group and others have no access to it.
//! 3. `build` fills in the defaults, parses proposals, reads certificate and
//!    key files and checks the values against each other (secrets for PSK
//!    connections, defined pools, unique names, address families, ...),
//!    collecting every problem into one [`ConfigError::Invalid`].
//!
//! docs/config.md is the reference of every key. Nothing here logs; the
//! warnings found travel in [`GatewayConfig::warnings`].
//!
//! The types live in [`model`] (the configuration), [`addr`] (addresses,
//! ranges, traffic selectors), [`ident`] (identities) and [`error`]; the
//! binary has no library target yet, so they are `pub(crate)`.

pub(crate) mod addr;
mod build;
mod check;
pub(crate) mod error;
mod files;
pub(crate) mod ident;
pub(crate) mod model;
mod raw;
mod source;
#[cfg(test)]
mod tests;
mod value;

pub(crate) use check::check;
pub(crate) use error::ConfigError;
pub(crate) use model::GatewayConfig;

use files::{FileError, MAX_CONFIG_LEN};
use raw::{RawConfig, RawSecretsFile};
use serde::de::DeserializeOwned;
use source::Source;
use std::path::Path;

/// Reads and checks the configuration file at `path`.
///
/// Paths in the file (`secrets_file`, certificates, keys, the control
/// socket) are taken relative to the file's directory. A file that holds
/// pre-shared keys and is readable by group or others is accepted with a
/// warning; a `secrets_file` like that is refused.
pub(crate) fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
    let contents = files::read(path, MAX_CONFIG_LEN, false)
        .map_err(|e| ConfigError::Read { path: path.to_path_buf(), source: e.into_io() })?;
    let mut config = parse_str(utf8(path, &contents.bytes)?, path)?;
    if contents.mode & 0o077 != 0 {
        let src = Source { path, text: "" };
        if config.cluster.as_ref().is_some_and(|c| c.secret_origin == path) {
            config.warnings.insert(
                0,
                src.file_diag(
                    "cluster",
                    format!(
                        "this file holds the cluster secret and has mode {:04o}: move it to [secrets.cluster] in a secrets_file, or chmod 600 this file",
                        contents.mode
                    ),
                ),
            );
        }
        if config.ike_secrets.iter().any(|s| s.origin == path) {
            config.warnings.insert(
                0,
                src.file_diag(
                    "secrets.ike",
                    format!(
                        "this file holds pre-shared keys and has mode {:04o}: move them to a secrets_file, or chmod 600 this file",
                        contents.mode
                    ),
                ),
            );
        }
    }
    Ok(config)
}

/// Parses and checks a configuration text; `origin` names it in errors and
/// is where relative paths start from.
///
/// Files the text names are read (`secrets_file`, certificates, keys).
/// This is the entry point for fuzzing: no input may make it panic.
pub(crate) fn parse_str(text: &str, origin: &Path) -> Result<GatewayConfig, ConfigError> {
    let main = Source { path: origin, text };
    let raw: RawConfig = deserialize(&main)?;
    let Some(name) = &raw.secrets_file else {
        return build::build(raw, &main, None);
    };
    let path = main.resolve(name.get_ref());
    let contents = files::read(&path, MAX_CONFIG_LEN, true).map_err(|e| match e {
        FileError::Insecure(mode) => ConfigError::InsecurePermissions { path: path.clone(), mode },
        e => ConfigError::Read { path: path.clone(), source: e.into_io() },
    })?;
    let secrets_src = Source { path: &path, text: utf8(&path, &contents.bytes)? };
    let secrets: RawSecretsFile = deserialize(&secrets_src)?;
    build::build(raw, &main, Some((secrets.secrets, &secrets_src)))
}

/// Deserializes a whole file, locating a failure.
fn deserialize<T: DeserializeOwned>(src: &Source<'_>) -> Result<T, ConfigError> {
    toml::from_str(src.text).map_err(|e| ConfigError::Syntax(src.toml_error(&e)))
}

/// The bytes of `path` as text; invalid UTF-8 is located.
fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, ConfigError> {
    core::str::from_utf8(bytes).map_err(|e| {
        let valid = core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
        let src = Source { path, text: valid };
        ConfigError::Syntax(src.diag(valid.len()..valid.len(), "", "the file is not valid UTF-8 text"))
    })
}
