//! The engine's error type. Every variant that concerns a file names it, and every message says
//! what the user can do about it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something is wrong with a file on disk: unreadable, malformed, or missing a field.
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// A model reference (`org/name[@rev]`, path, `synthetic:…`) that cannot be used.
    #[error("model reference `{reference}`: {msg}")]
    Ref { reference: String, msg: String },
    /// The Hugging Face hub, or its cache, could not provide what was asked.
    #[error("hub: {0}")]
    Hub(String),
    /// An OpenAI-compatible endpoint could not be reached or answered with an error.
    #[error("endpoint {url}: {msg}")]
    Endpoint { url: String, msg: String },
    /// The model would not fit in memory, or the device cannot be used.
    #[error("{0}")]
    Resource(String),
    /// An error from a tensor operation.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn file(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }
    pub fn reference(reference: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Ref {
            reference: reference.into(),
            msg: msg.into(),
        }
    }
}

/// Attach a file path to any displayable error.
pub trait FileContext<T> {
    fn with_file(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T, E: std::fmt::Display> FileContext<T> for std::result::Result<T, E> {
    fn with_file(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::file(path, e.to_string()))
    }
}
