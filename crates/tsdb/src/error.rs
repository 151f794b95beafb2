//! The crate's error type.

use model::StorageError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsdbError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {0} is locked by another process (remove its `lock` file if that process is gone)")]
    Locked(String),
    #[error("corrupt data in {location}: {reason}")]
    Corrupt { location: String, reason: String },
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    #[error("database closed")]
    Closed,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl TsdbError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        TsdbError::Io { path: path.as_ref().display().to_string(), source }
    }
}

impl From<TsdbError> for StorageError {
    fn from(e: TsdbError) -> Self {
        match e {
            TsdbError::Storage(s) => s,
            TsdbError::Io { source, .. } => StorageError::Io(source),
            TsdbError::Corrupt { location, reason } => StorageError::Corrupt { location, reason },
            TsdbError::Closed => StorageError::Closed,
            e => StorageError::Other(e.to_string()),
        }
    }
}

/// Shorthand for `io::Error` → `TsdbError` with the path.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: impl AsRef<std::path::Path>) -> Result<T, TsdbError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, path: impl AsRef<std::path::Path>) -> Result<T, TsdbError> {
        self.map_err(|e| TsdbError::io(path, e))
    }
}
