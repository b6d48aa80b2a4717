//! Profiles (`.keysteadrc`) and stored credentials, and where each server
//! URL came from.

use super::*;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Rc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) default_profile: Option<String>,
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(super) struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) partner_id: Option<String>,
}

/// Secret keys by profile; never mixed into `.keysteadrc`.
#[derive(Default, Serialize, Deserialize)]
pub(super) struct Credentials {
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, StoredKey>,
}

/// A secret key and the server it was checked against by `keystead login`:
/// it is sent to that server only. Files written before the server was
/// recorded have none; such a key is refused (log in again), never guessed.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredKey {
    pub(super) secret_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) server: Option<String>,
}

impl Drop for StoredKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret_key);
    }
}

pub(super) fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
}

pub(super) fn home_rc_path() -> Option<PathBuf> {
    home().map(|h| h.join(".keysteadrc"))
}

/// `.keysteadrc` in the current directory, when there is one and it is not
/// the home one (running in the home directory).
pub(super) fn local_rc_path() -> Option<PathBuf> {
    let local = PathBuf::from(".keysteadrc");
    if !local.exists() {
        return None;
    }
    let same = |a: &PathBuf, b: &PathBuf| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    match home_rc_path() {
        Some(h) if same(&local, &h) => None,
        _ => Some(local),
    }
}

/// `.keysteadrc` in the current directory if there is one, else in home.
pub(super) fn rc_path() -> PathBuf {
    let local = PathBuf::from(".keysteadrc");
    if local.exists() {
        return local;
    }
    home_rc_path().unwrap_or(local)
}

/// The OS-appropriate credentials file (`KEYSTEAD_CREDENTIALS_FILE` overrides).
pub(super) fn credentials_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYSTEAD_CREDENTIALS_FILE") {
        return PathBuf::from(p);
    }
    if cfg!(windows) {
        if let Some(appdata) = std::env::var_os("APPDATA") {
            return PathBuf::from(appdata)
                .join("keystead")
                .join("credentials.toml");
        }
    }
    if cfg!(target_os = "macos") {
        if let Some(h) = home() {
            return h.join("Library/Application Support/keystead/credentials.toml");
        }
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("keystead").join("credentials.toml")
}

pub(super) fn read_rc(p: &Path) -> CliResult<Rc> {
    match std::fs::read_to_string(p) {
        Ok(text) => toml::from_str(&text).map_err(|e| usage(format!("{}: {e}", p.display()))),
        Err(_) => Ok(Rc::default()),
    }
}

pub(super) fn load_rc() -> CliResult<Rc> {
    read_rc(&rc_path())
}

pub(super) fn load_credentials() -> CliResult<Credentials> {
    let p = credentials_path();
    match std::fs::read_to_string(&p) {
        Ok(text) => {
            let text = zeroize::Zeroizing::new(text);
            // Never echo the file's content in the error.
            toml::from_str(&text).map_err(|_| usage(format!("{} is not valid TOML", p.display())))
        }
        Err(_) => Ok(Credentials::default()),
    }
}

/// A server URL in the one form used to compare servers: scheme and host
/// lower-case, no default port, no trailing slash. No user info, query or
/// fragment (they have no place in a server URL).
pub(super) fn normalize_server(raw: &str) -> Result<String, String> {
    let u = url::Url::parse(raw.trim()).map_err(|e| {
        format!("{raw:?} is not a server URL ({e}); use e.g. https://keystead.example.com")
    })?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("server URL {raw:?}: use http or https"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("server URL {raw:?}: remove the user name/password"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(format!("server URL {raw:?}: remove the query/fragment"));
    }
    let Some(host) = u.host_str() else {
        return Err(format!("server URL {raw:?} has no host"));
    };
    // `url` already lower-cases the scheme and host and drops a default port.
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!(
        "{}://{host}{port}{}",
        u.scheme(),
        u.path().trim_end_matches('/')
    ))
}

/// Where the server URL of a command came from. Only a `.keysteadrc` in the
/// current directory is untrusted: a cloned repository may carry one.
#[derive(Debug)]
pub(super) enum ServerSource {
    /// `--server` or `KEYSTEAD_SERVER`: the user's own choice.
    Flag,
    /// The profile in `~/.keysteadrc`.
    HomeRc,
    /// The profile in `./.keysteadrc`, a file the user may not have written.
    LocalRc(PathBuf),
    /// The server the profile's stored secret key belongs to.
    Credential,
    Default,
}
