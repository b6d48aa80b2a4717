//! The `local` key provider: key-encryption keys in a JSON file under the
//! data directory, created 0600 on first start. The file holds every
//! version ever made so that rows wrapped before a rotation still open; new
//! data keys are always wrapped with the newest version.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::provider::{BoxFuture, DataKey, KeyContext, KeyProvider, ProviderError, WrappedKey};
use crate::random_bytes;

const WRAP_AAD: &[u8] = b"keystead:local:dek:v1";

#[derive(Serialize, Deserialize)]
struct KeyFile {
    versions: Vec<KeyVersion>,
}

#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
struct KeyVersion {
    version: u32,
    key: String,
}

struct Kek {
    version: u32,
    key: Zeroizing<[u8; 32]>,
}

pub struct LocalKeyProvider {
    path: PathBuf,
    keys: RwLock<Vec<Kek>>,
    /// The key file's modification time when it was read: a version added
    /// by `keystead kms rotate` while this process runs is picked up.
    loaded: std::sync::Mutex<Option<std::time::SystemTime>>,
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl std::fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyProvider")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LocalKeyProvider {
    /// Opens the key file, creating it (mode 0600) with version 1 if absent.
    pub fn open_or_create(path: &Path) -> Result<Self, ProviderError> {
        if !path.exists() {
            let file = KeyFile {
                versions: vec![KeyVersion {
                    version: 1,
                    key: B64.encode(random_bytes::<32>()),
                }],
            };
            write_private(path, &file, false)?;
        }
        let loaded = modified(path);
        let keys = read_keys(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            keys: RwLock::new(keys),
            loaded: std::sync::Mutex::new(loaded),
        })
    }

    /// Adds a new key version; returns its number. New data keys use it.
    pub fn rotate(&self) -> Result<u32, ProviderError> {
        let mut keys = self
            .keys
            .write()
            .map_err(|_| ProviderError::KeyFile("lock poisoned".into()))?;
        let next = keys.iter().map(|k| k.version).max().unwrap_or(0) + 1;
        let new_key = random_bytes::<32>();
        let mut file = KeyFile {
            versions: keys
                .iter()
                .map(|k| KeyVersion {
                    version: k.version,
                    key: B64.encode(*k.key),
                })
                .collect(),
        };
        file.versions.push(KeyVersion {
            version: next,
            key: B64.encode(new_key),
        });
        write_private(&self.path, &file, true)?;
        keys.push(Kek {
            version: next,
            key: Zeroizing::new(new_key),
        });
        Ok(next)
    }

    /// A version made by `keystead kms rotate` while this process ran:
    /// read the file again (it only ever gains versions).
    fn reload_if_unknown(&self, version: u32) -> Result<(), ProviderError> {
        let known = self
            .keys
            .read()
            .map_err(|_| ProviderError::KeyFile("lock poisoned".into()))?
            .iter()
            .any(|k| k.version == version);
        if !known {
            self.refresh()?;
        }
        Ok(())
    }

    pub fn newest_key_id(&self) -> Result<String, ProviderError> {
        self.refresh()?;
        let keys = self
            .keys
            .read()
            .map_err(|_| ProviderError::KeyFile("lock poisoned".into()))?;
        let v = keys.iter().map(|k| k.version).max().unwrap_or(0);
        Ok(format!("local:{v}"))
    }

    /// Reads the key file again when it changed since it was read.
    fn refresh(&self) -> Result<(), ProviderError> {
        let now = modified(&self.path);
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| ProviderError::KeyFile("lock poisoned".into()))?;
        if *loaded != now {
            let fresh = read_keys(&self.path)?;
            *self
                .keys
                .write()
                .map_err(|_| ProviderError::KeyFile("lock poisoned".into()))? = fresh;
            *loaded = now;
        }
        Ok(())
    }

    fn wrap(&self, dek: &[u8; 32]) -> Result<WrappedKey, ProviderError> {
        self.refresh()?;
        let keys = self
            .keys
            .read()
            .map_err(|_| ProviderError::KeyFile("lock poisoned".into()))?;
        let kek = keys
            .iter()
            .max_by_key(|k| k.version)
            .ok_or_else(|| ProviderError::KeyFile("no key versions".into()))?;
        let cipher = Aes256Gcm::new_from_slice(&kek.key[..])
            .map_err(|_| ProviderError::KeyFile("bad key length".into()))?;
        let nonce = random_bytes::<12>();
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: dek,
                    aad: WRAP_AAD,
                },
            )
            .map_err(|_| ProviderError::Unwrap)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ct);
        Ok(WrappedKey {
            key_id: format!("local:{}", kek.version),
            bytes,
        })
    }

    fn unwrap_sync(&self, wrapped: &WrappedKey) -> Result<Zeroizing<[u8; 32]>, ProviderError> {
        let version: u32 = wrapped
            .key_id
            .strip_prefix("local:")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ProviderError::UnknownKey(wrapped.key_id.clone()))?;
        self.reload_if_unknown(version)?;
        let keys = self
            .keys
            .read()
            .map_err(|_| ProviderError::KeyFile("lock poisoned".into()))?;
        let kek = keys
            .iter()
            .find(|k| k.version == version)
            .ok_or_else(|| ProviderError::UnknownKey(wrapped.key_id.clone()))?;
        if wrapped.bytes.len() < 12 {
            return Err(ProviderError::Unwrap);
        }
        let (nonce, ct) = wrapped.bytes.split_at(12);
        let cipher = Aes256Gcm::new_from_slice(&kek.key[..])
            .map_err(|_| ProviderError::KeyFile("bad key length".into()))?;
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: WRAP_AAD,
                    },
                )
                .map_err(|_| ProviderError::Unwrap)?,
        );
        let mut out = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(ProviderError::Unwrap);
        }
        out.copy_from_slice(&plain);
        Ok(out)
    }
}

impl KeyProvider for LocalKeyProvider {
    // The envelope's AAD already binds the record; the key file has no
    // context of its own.
    fn generate_data_key<'a>(
        &'a self,
        _ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<DataKey, ProviderError>> {
        Box::pin(async move {
            let dek = Zeroizing::new(random_bytes::<32>());
            let wrapped = self.wrap(&dek)?;
            Ok((dek, wrapped))
        })
    }

    fn unwrap_key<'a>(
        &'a self,
        wrapped: &'a WrappedKey,
        _ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<Zeroizing<[u8; 32]>, ProviderError>> {
        Box::pin(async move { self.unwrap_sync(wrapped) })
    }

    fn wrap_key<'a>(
        &'a self,
        dek: &'a [u8; 32],
        _ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<WrappedKey, ProviderError>> {
        Box::pin(async move { self.wrap(dek) })
    }

    fn current_key_id(&self) -> BoxFuture<'_, Result<String, ProviderError>> {
        Box::pin(async move { self.newest_key_id() })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            let dek = random_bytes::<32>();
            let wrapped = self.wrap(&dek)?;
            let back = self.unwrap_sync(&wrapped)?;
            if *back == dek {
                Ok(())
            } else {
                Err(ProviderError::Unwrap)
            }
        })
    }
}

fn read_keys(path: &Path) -> Result<Vec<Kek>, ProviderError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| ProviderError::KeyFile(format!("{}: {e}", path.display())))?,
    );
    let file: KeyFile = serde_json::from_str(&text)
        .map_err(|e| ProviderError::KeyFile(format!("{}: {e}", path.display())))?;
    let mut out = Vec::new();
    for v in &file.versions {
        let raw =
            Zeroizing::new(B64.decode(&v.key).map_err(|_| {
                ProviderError::KeyFile(format!("version {} is not base64", v.version))
            })?);
        if raw.len() != 32 {
            return Err(ProviderError::KeyFile(format!(
                "version {} is not 32 bytes",
                v.version
            )));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&raw);
        out.push(Kek {
            version: v.version,
            key,
        });
    }
    if out.is_empty() {
        return Err(ProviderError::KeyFile("no key versions".into()));
    }
    Ok(out)
}

/// Writes atomically (temp file + rename) with mode 0600, so a crash never
/// leaves a half-written key file and no other user can ever read it.
/// `replace`: rotation overwrites; first creation never does — if another
/// process created the file meanwhile, its key wins and ours is discarded
/// (the caller then reads the file). The directory is synced so the new
/// name survives a power loss.
fn write_private(path: &Path, file: &KeyFile, replace: bool) -> Result<(), ProviderError> {
    let err = |p: &Path, e: std::io::Error| ProviderError::KeyFile(format!("{}: {e}", p.display()));
    let json = Zeroizing::new(
        serde_json::to_vec_pretty(file).map_err(|e| ProviderError::KeyFile(e.to_string()))?,
    );
    let tmp = path.with_extension(format!("tmp-{}", hex::encode(random_bytes::<6>())));
    write_file_0600(&tmp, &json).map_err(|e| err(&tmp, e))?;
    let placed = if replace {
        std::fs::rename(&tmp, path)
    } else {
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    };
    placed.map_err(|e| err(path, e))?;
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| err(dir, e))?;
    }
    Ok(())
}

/// Creates or truncates `path` with mode 0600 (on Unix) and writes `bytes`.
pub fn write_file_0600(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_private_and_versions_survive_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let p = LocalKeyProvider::open_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let dek = random_bytes::<32>();
        let old = p.wrap(&dek).unwrap();
        assert_eq!(old.key_id, "local:1");
        assert_eq!(p.rotate().unwrap(), 2);
        let new = p.wrap(&dek).unwrap();
        assert_eq!(new.key_id, "local:2");
        // A fresh process reads both versions back from the file.
        let reopened = LocalKeyProvider::open_or_create(&path).unwrap();
        assert_eq!(*reopened.unwrap_sync(&old).unwrap(), dek);
        assert_eq!(*reopened.unwrap_sync(&new).unwrap(), dek);
    }

    #[test]
    fn tampered_wrapped_key_fails() {
        let dir = tempfile::tempdir().unwrap();
        let p = LocalKeyProvider::open_or_create(&dir.path().join("k")).unwrap();
        let mut w = p.wrap(&random_bytes::<32>()).unwrap();
        let last = w.bytes.len() - 1;
        w.bytes[last] ^= 1;
        assert!(matches!(p.unwrap_sync(&w), Err(ProviderError::Unwrap)));
        w.key_id = "local:9".into();
        assert!(matches!(
            p.unwrap_sync(&w),
            Err(ProviderError::UnknownKey(_))
        ));
    }
}
