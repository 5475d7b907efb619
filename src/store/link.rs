//! How this process reaches PostgreSQL: the URL read the way libpq reads it (`sslmode`,
//! `sslrootcert`, or the `PGSSLMODE` / `PGSSLROOTCERT` environment; the URL wins), and the one
//! TLS connector (rustls on `ring`, as the server's own TLS) that every connection the process
//! makes uses: the pool, the hub's and the log writer's own connections, the `pg-listen`
//! listener, the admin CLI.
//!
//! The driver (`postgres::Config`) knows `sslmode` only as disable, prefer or require, and no
//! `sslrootcert` at all, so both are taken out of the URL here: the driver is told whether to
//! ask for TLS, and what is checked of the certificate is this module's verifier. What each
//! mode checks is in `docs/database.md` ("TLS to PostgreSQL").

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use r2d2_postgres::postgres::{self, config::SslMode as Driver};
use r2d2_postgres::PostgresConnectionManager;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// The TLS connector type every PostgreSQL connection is made with.
pub type Tls = tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`s, less `allow` (plain first, TLS if refused), which the driver cannot do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, the certificate taken as it comes; plain otherwise.
    Prefer,
    /// TLS or no connection; the certificate checked against a CA only if one is given.
    Require,
    /// TLS, the certificate signed by the CA in `sslrootcert`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate is for the host name connected to.
    VerifyFull,
}

impl std::str::FromStr for SslMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(Error::DbUrl(format!(
                    "sslmode {s:?} is not one of disable, prefer, require, verify-ca, verify-full"
                )))
            }
        })
    }
}

/// A database's connection settings and the TLS connector, for every connection to it.
#[derive(Clone)]
pub struct Link {
    config: postgres::Config,
    tls: Tls,
}

impl Link {
    /// Reads a `postgres://` URL, with the environment's `PGSSLMODE` and `PGSSLROOTCERT`
    /// where the URL says nothing, and reads the CA's certificate if one is named.
    pub fn parse(url: &str) -> Result<Link> {
        Link::parse_with(url, &|k| std::env::var(k).ok())
    }

    fn parse_with(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Link> {
        let (rest, ours) = take_params(url, &["sslmode", "sslrootcert", "sslcert", "sslkey"]);
        if ours.contains_key("sslcert") || ours.contains_key("sslkey") {
            return Err(Error::DbUrl(
                "client certificates (sslcert, sslkey) are not supported yet: log in with a \
                 password, over TLS checked with sslmode=verify-full"
                    .into(),
            ));
        }
        // A value from the environment is named as the environment names it, so the operator
        // sees where it came from (the URL shown beside the error does not have it).
        let from_env = |name: &'static str, env_name: &'static str| {
            move |e: Error| match e {
                Error::DbUrl(m) => Error::DbUrl(m.replacen(name, env_name, 1)),
                other => other,
            }
        };
        let mode = match ours.get("sslmode") {
            Some(m) => m.parse()?,
            None => match env("PGSSLMODE") {
                Some(m) => m.parse().map_err(from_env("sslmode", "PGSSLMODE"))?,
                // libpq's default: TLS where the server offers it, so a server with `ssl = on`
                // gets an encrypted link with no setting, and one without still works.
                None => SslMode::Prefer,
            },
        };
        let root_in_url = ours.contains_key("sslrootcert");
        let root = ours
            .get("sslrootcert")
            .cloned()
            .or_else(|| env("PGSSLROOTCERT"));
        let mut config: postgres::Config = rest.parse()?;
        super::dedicated::dead_peer_defaults(&mut config);
        config.ssl_mode(match mode {
            SslMode::Disable => Driver::Disable,
            SslMode::Prefer => Driver::Prefer,
            _ => Driver::Require,
        });
        let home = env("HOME").map(PathBuf::from);
        let tls = connector(mode, root.as_deref(), home.as_deref()).map_err(|e| {
            if root_in_url || root.is_none() {
                e
            } else {
                from_env("sslrootcert", "PGSSLROOTCERT")(e)
            }
        })?;
        Ok(Link { config, tls })
    }

    /// The driver's settings, to add to (the pool's manager takes them whole).
    pub fn config_mut(&mut self) -> &mut postgres::Config {
        &mut self.config
    }

    /// A new connection; a certificate that does not verify is [`Error::DbTls`], which
    /// names the host and why.
    pub fn connect(&self) -> Result<postgres::Client> {
        self.config.connect(self.tls.clone()).map_err(refusal)
    }

    /// The pool's connection maker, with the same settings and connector.
    pub fn manager(&self) -> PostgresConnectionManager<Tls> {
        PostgresConnectionManager::new(self.config.clone(), self.tls.clone())
    }
}

/// The URL without the parameters named in `ours`, and those parameters (percent-decoded).
fn take_params(url: &str, ours: &[&str]) -> (String, BTreeMap<String, String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), BTreeMap::new());
    };
    let mut taken = BTreeMap::new();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if ours.contains(&k) {
            taken.insert(k.to_string(), decode(v));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, taken)
}

/// `%XX` escapes undone, as the driver does for the rest of the URL.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The connector for `mode`: which CA (if any) the certificate must chain to, and whether its
/// name is checked. libpq's rules: the CA is `sslrootcert`, else `~/.postgresql/root.crt` if
/// it exists; `require` with a CA checks as `verify-ca`; the `verify-*` modes need one.
fn connector(mode: SslMode, root: Option<&str>, home: Option<&Path>) -> Result<Tls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let file = match root {
        Some("system") => {
            return Err(Error::DbUrl(
                "sslrootcert=system is not supported: name the file of the CA's certificate".into(),
            ))
        }
        Some(path) => Some(PathBuf::from(path)),
        None => home
            .map(|h| h.join(".postgresql/root.crt"))
            .filter(|p| p.exists()),
    };
    let chain = match (mode, file) {
        // Nothing to check against, or a mode that checks nothing.
        (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => None,
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(Error::DbUrl(
                "sslmode=verify-ca and verify-full need the CA's certificate: sslrootcert=FILE \
                 in the URL, PGSSLROOTCERT, or ~/.postgresql/root.crt"
                    .into(),
            ))
        }
        (_, Some(file)) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(&file)?), provider.clone())
                .build()
                .map_err(|e| Error::DbUrl(format!("sslrootcert {}: {e}", file.display())))?,
        ),
    };
    let verifier = Verifier {
        chain,
        names: mode == SslMode::VerifyFull,
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::DbUrl(format!("TLS settings: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Tls::new(config))
}

/// The CA certificates in a PEM file.
fn roots(file: &Path) -> Result<RootCertStore> {
    let bad = |why: String| Error::DbUrl(format!("sslrootcert {}: {why}", file.display()));
    let pem = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate ({e})")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a CA certificate ({e})")))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    Ok(roots)
}

/// What `sslmode` checks of the server's certificate.
#[derive(Debug)]
struct Verifier {
    /// The CA to check the chain against; `None`: any certificate (prefer, require alone).
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// The name too (verify-full).
    names: bool,
    /// For the handshake's signatures, checked in every mode.
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            // The chain is checked before the name: a wrong name means a good chain.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.names => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(CertificateError::Other(OtherError(Arc::new(Refused {
                host: server_name.to_str().into_owned(),
                reason: reason(&e),
            })))
            .into()),
            ok => ok,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a certificate was refused, in words (rustls says some only as a variant's name).
fn reason(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "certificate not signed by the CA in sslrootcert".into()
            }
            CertificateError::NotValidForName => "certificate not valid for this host name".into(),
            CertificateError::Expired => "certificate expired".into(),
            CertificateError::NotValidYet => "certificate not valid yet".into(),
            CertificateError::BadEncoding => "certificate unreadable".into(),
            CertificateError::Revoked => "certificate revoked".into(),
            // These say it in words, with what they found.
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => {
                // rustls names them as `DnsName("x")`: the names alone.
                let names: Vec<String> = presented
                    .iter()
                    .map(|p| {
                        p.split_once('(')
                            .and_then(|(_, r)| r.strip_suffix(')'))
                            .map_or(p.clone(), |r| r.trim_matches('"').to_string())
                    })
                    .collect();
                format!(
                    "certificate not valid for name {:?}; it is for {}",
                    expected.to_str(),
                    names.join(", ")
                )
            }
            CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYetContext { .. }
            | CertificateError::InvalidPurposeContext { .. } => c.to_string(),
            other => format!("certificate refused: {other}"),
        },
        other => other.to_string(),
    }
}

/// A certificate refused: carried through rustls and the driver to [`refusal`].
#[derive(Debug)]
struct Refused {
    host: String,
    reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS to {}: {}", self.host, self.reason)
    }
}

impl StdError for Refused {}

/// The driver's error, or [`Error::DbTls`] if it comes of a refused certificate (found in its
/// chain of causes: the driver's, then std's I/O error, then rustls's).
fn refusal(e: postgres::Error) -> Error {
    let mut cause: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(err) = cause {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Error::DbTls(r.to_string());
        }
        cause = if let Some(io) = err.downcast_ref::<std::io::Error>() {
            // An I/O error's `source` skips the error it wraps.
            io.get_ref().map(|e| e as &(dyn StdError + 'static))
        } else if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(o))) =
            err.downcast_ref::<rustls::Error>()
        {
            Some(&*o.0 as &(dyn StdError + 'static))
        } else {
            err.source()
        };
    }
    Error::Pg(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn ssl_parameters_are_taken_out_of_the_url() {
        let (rest, ours) = take_params(
            "postgres://u@h/db?sslmode=verify-ca&application_name=x&sslrootcert=%2Ftmp%2Fa%20b.pem",
            &["sslmode", "sslrootcert"],
        );
        assert_eq!(rest, "postgres://u@h/db?application_name=x");
        assert_eq!(ours["sslmode"], "verify-ca");
        assert_eq!(ours["sslrootcert"], "/tmp/a b.pem");
        let (rest, ours) = take_params("postgres://u@h/db?sslmode=disable", &["sslmode"]);
        assert_eq!((rest.as_str(), ours.len()), ("postgres://u@h/db", 1));
    }

    #[test]
    fn the_url_wins_over_the_environment_and_prefer_is_the_default() {
        let mode = |url: &str, vars| {
            Link::parse_with(url, &env(vars))
                .map(|l| l.config.get_ssl_mode())
                .map_err(|e| e.to_string())
        };
        assert_eq!(mode("postgres://u@h/db", &[]), Ok(Driver::Prefer));
        assert_eq!(
            mode("postgres://u@h/db", &[("PGSSLMODE", "disable")]),
            Ok(Driver::Disable)
        );
        assert_eq!(
            mode(
                "postgres://u@h/db?sslmode=require",
                &[("PGSSLMODE", "disable")]
            ),
            Ok(Driver::Require)
        );
        let err = mode("postgres://u@h/db?sslmode=verify", &[]).unwrap_err();
        assert!(err.contains("sslmode \"verify\" is not one of"), "{err}");
    }

    #[test]
    fn verifying_needs_a_ca_that_can_be_read() {
        let parse = |url: &str, vars| {
            Link::parse_with(url, &env(vars))
                .err()
                .map(|e| e.to_string())
        };
        let err = parse(
            "postgres://u@h/db?sslmode=verify-full",
            &[("HOME", "/nonexistent")],
        );
        assert!(err.unwrap().contains("need the CA's certificate"));
        let err = parse(
            "postgres://u@h/db?sslmode=verify-ca",
            &[("PGSSLROOTCERT", "/nonexistent/ca.pem")],
        );
        // Named as the environment names it: the URL shown beside it does not have it.
        assert!(err
            .unwrap()
            .contains("PGSSLROOTCERT /nonexistent/ca.pem: No such file"));
        let err = parse(
            "postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
            &[],
        );
        assert!(err
            .unwrap()
            .contains("sslrootcert /nonexistent/ca.pem: No such file"));
        let err = parse("postgres://u@h/db", &[("PGSSLMODE", "verifyfull")]);
        assert!(err
            .unwrap()
            .contains("PGSSLMODE \"verifyfull\" is not one of"));
        let err = parse(
            "postgres://u@h/db?sslmode=require&sslcert=/x&sslkey=/y",
            &[],
        );
        assert!(err
            .unwrap()
            .contains("client certificates (sslcert, sslkey) are not supported"));
        let err = parse(
            "postgres://u@h/db?sslmode=require&sslrootcert=/dev/null",
            &[],
        );
        assert!(err.unwrap().contains("holds no certificate"));
        let err = parse(
            "postgres://u@h/db?sslrootcert=system&sslmode=verify-full",
            &[],
        );
        assert!(err.unwrap().contains("not supported"));
        // Not asked to check: the file is not read.
        assert_eq!(parse("postgres://u@h/db?sslmode=disable", &[]), None);
    }
}
