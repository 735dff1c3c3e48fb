//! The embedded broker of `kwire conform` without `--bootstrap`:
//! librdkafka's mock cluster, in this process, on loopback ports of its
//! own choosing.
//!
//! librdkafka is not a build dependency: its shared library
//! (`librdkafka.so.1`, Debian package `librdkafka1`) is opened at run time
//! with `libloading`, and only the handful of C functions below are looked
//! up. The mock cluster lives inside a producer handle that never connects
//! anywhere (`rd_kafka_mock_cluster_new`, as in
//! corpus/scenarios/mockcluster.c); librdkafka runs it on its own threads
//! until [`EmbeddedBroker`] is dropped. `KWIRE_LIBRDKAFKA` names another
//! library file to load (a build of its own, or another platform's name).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt;

use libloading::Library;

/// The shared library's name, as the dynamic loader looks it up.
pub const LIBRARY: &str = "librdkafka.so.1";
/// The Debian package that ships it.
pub const PACKAGE: &str = "librdkafka1";
/// The environment variable that names another library file.
pub const LIBRARY_ENV: &str = "KWIRE_LIBRDKAFKA";

/// Brokers in the embedded cluster: several, so that leaders and group
/// coordinators are spread and routing is exercised.
pub const DEFAULT_BROKERS: u16 = 3;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "cannot load {library} ({reason}): the embedded broker is librdkafka's mock cluster; \
         install it (Debian/Ubuntu: `apt-get install {PACKAGE}`) or pass --bootstrap HOST:PORT"
    )]
    Missing { library: String, reason: String },
    #[error(
        "{LIBRARY} has no {symbol} ({reason}): the mock cluster needs librdkafka 1.4 or newer"
    )]
    Symbol {
        symbol: &'static str,
        reason: String,
    },
    #[error("librdkafka could not start the mock cluster: {0}")]
    Start(String),
}

// The C signatures, from rdkafka.h and rdkafka_mock.h. Handles are opaque.
type ConfNew = unsafe extern "C" fn() -> *mut c_void;
type ConfSet =
    unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *mut c_char, usize) -> c_int;
type ConfDestroy = unsafe extern "C" fn(*mut c_void);
type New = unsafe extern "C" fn(c_int, *mut c_void, *mut c_char, usize) -> *mut c_void;
type Destroy = unsafe extern "C" fn(*mut c_void);
type MockNew = unsafe extern "C" fn(*mut c_void, c_int) -> *mut c_void;
type MockBootstraps = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type MockDestroy = unsafe extern "C" fn(*mut c_void);
type VersionStr = unsafe extern "C" fn() -> *const c_char;
type LogCallback = extern "C" fn(*const c_void, c_int, *const c_char, *const c_char);
type ConfSetLogCb = unsafe extern "C" fn(*mut c_void, LogCallback);

/// librdkafka's log lines go nowhere: the mock cluster logs every
/// malformed request it is sent (the malformed suite sends many), and the
/// report, not its stderr, is what the run prints. Called on librdkafka's
/// threads; it touches nothing.
extern "C" fn discard_log(_: *const c_void, _: c_int, _: *const c_char, _: *const c_char) {}

/// `RD_KAFKA_PRODUCER` in `rd_kafka_type_t`.
const PRODUCER: c_int = 0;
/// `RD_KAFKA_CONF_OK` in `rd_kafka_conf_res_t`.
const CONF_OK: c_int = 0;
const ERRSTR: usize = 512;

/// A running mock cluster; destroyed (ports closed, threads joined) on drop.
pub struct EmbeddedBroker {
    /// Comma-separated `127.0.0.1:PORT` of every broker.
    bootstraps: String,
    version: String,
    brokers: u16,
    // Owned handles, destroyed in this order in `drop`.
    cluster: *mut c_void,
    handle: *mut c_void,
    mock_destroy: MockDestroy,
    destroy: Destroy,
    // Last: the functions above point into it.
    _library: Library,
}

impl fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstraps", &self.bootstraps)
            .field("version", &self.version)
            .field("brokers", &self.brokers)
            .finish()
    }
}

/// Looks a function up and copies the pointer out, so that no borrow of
/// the library outlives this call; the caller keeps the library loaded for
/// as long as it uses the pointer.
///
/// # Safety
/// `T` must be the function's real C signature.
unsafe fn symbol<T: Copy>(library: &Library, name: &'static str) -> Result<T, EmbeddedError> {
    let with_nul = format!("{name}\0");
    // SAFETY: the caller vouches for the signature.
    let found = unsafe { library.get::<T>(with_nul.as_bytes()) };
    found
        .map(|symbol| *symbol)
        .map_err(|error| EmbeddedError::Symbol {
            symbol: name,
            reason: error.to_string(),
        })
}

/// Copies a C string that may be null.
///
/// # Safety
/// `text` is null or points to a NUL-terminated string.
unsafe fn owned(text: *const c_char) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: not null, and NUL-terminated as the caller vouches.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// A C error buffer as text, up to its first NUL.
fn error_text(buffer: &[c_char]) -> String {
    let bytes: Vec<u8> = buffer
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c.to_ne_bytes()[0])
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl EmbeddedBroker {
    /// Loads librdkafka and starts a mock cluster of `brokers` brokers.
    pub fn start(brokers: u16) -> Result<EmbeddedBroker, EmbeddedError> {
        // SAFETY: loading librdkafka runs its initialisers, which only set
        // up library state; it has no load-time side effects on ours.
        let name = std::env::var_os(LIBRARY_ENV).unwrap_or_else(|| LIBRARY.into());
        let library = unsafe { Library::new(&name) }.map_err(|error| EmbeddedError::Missing {
            library: name.to_string_lossy().into_owned(),
            reason: error.to_string(),
        })?;
        // SAFETY: each type is the C prototype of the function named, from
        // librdkafka's public headers.
        let (
            conf_new,
            conf_set,
            conf_set_log_cb,
            conf_destroy,
            new,
            destroy,
            mock_new,
            bootstraps,
            mock_destroy,
            version,
        ) = unsafe {
            (
                symbol::<ConfNew>(&library, "rd_kafka_conf_new")?,
                symbol::<ConfSet>(&library, "rd_kafka_conf_set")?,
                symbol::<ConfSetLogCb>(&library, "rd_kafka_conf_set_log_cb")?,
                symbol::<ConfDestroy>(&library, "rd_kafka_conf_destroy")?,
                symbol::<New>(&library, "rd_kafka_new")?,
                symbol::<Destroy>(&library, "rd_kafka_destroy")?,
                symbol::<MockNew>(&library, "rd_kafka_mock_cluster_new")?,
                symbol::<MockBootstraps>(&library, "rd_kafka_mock_cluster_bootstraps")?,
                symbol::<MockDestroy>(&library, "rd_kafka_mock_cluster_destroy")?,
                symbol::<VersionStr>(&library, "rd_kafka_version_str")?,
            )
        };
        let mut errstr: [c_char; ERRSTR] = [0; ERRSTR];
        // SAFETY: rd_kafka_conf_new returns a fresh configuration that we
        // own until rd_kafka_new takes it (or we destroy it).
        let conf = unsafe { conf_new() };
        if conf.is_null() {
            return Err(EmbeddedError::Start("rd_kafka_conf_new failed".to_owned()));
        }
        // SAFETY: conf is live; the callback has the C signature of
        // rd_kafka_conf_set_log_cb's argument and lives for the program.
        unsafe { conf_set_log_cb(conf, discard_log) };
        // Errors only, should a log line get through anyway: the producer
        // handle has no bootstrap servers on purpose.
        let (name, value) = (c"log_level", c"3");
        // SAFETY: conf is live; the strings are NUL-terminated and the
        // error buffer's size is passed along.
        let result = unsafe {
            conf_set(
                conf,
                name.as_ptr(),
                value.as_ptr(),
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if result != CONF_OK {
            // SAFETY: rd_kafka_new has not taken conf: it is still ours.
            unsafe { conf_destroy(conf) };
            return Err(EmbeddedError::Start(format!(
                "rd_kafka_conf_set log_level: {}",
                error_text(&errstr)
            )));
        }
        // SAFETY: on success rd_kafka_new owns conf; on failure it does not.
        let handle = unsafe { new(PRODUCER, conf, errstr.as_mut_ptr(), errstr.len()) };
        if handle.is_null() {
            // SAFETY: rd_kafka_new failed, so conf is still ours.
            unsafe { conf_destroy(conf) };
            return Err(EmbeddedError::Start(format!(
                "rd_kafka_new: {}",
                error_text(&errstr)
            )));
        }
        // SAFETY: handle is a live producer; the cluster it returns is
        // destroyed before the handle, in Drop or below.
        let cluster = unsafe { mock_new(handle, c_int::from(brokers.max(1))) };
        if cluster.is_null() {
            // SAFETY: handle is live and nothing else refers to it.
            unsafe { destroy(handle) };
            return Err(EmbeddedError::Start(
                "rd_kafka_mock_cluster_new returned nothing".to_owned(),
            ));
        }
        // SAFETY: both return NUL-terminated strings that librdkafka owns
        // and keeps while the cluster lives; they are copied at once.
        let (bootstraps, version) = unsafe { (owned(bootstraps(cluster)), owned(version())) };
        let broker = EmbeddedBroker {
            bootstraps,
            version,
            brokers: brokers.max(1),
            cluster,
            handle,
            mock_destroy,
            destroy,
            _library: library,
        };
        if broker.bootstrap().is_empty() {
            return Err(EmbeddedError::Start(
                "the mock cluster reported no address".to_owned(),
            ));
        }
        Ok(broker)
    }

    /// The first broker's `HOST:PORT`.
    pub fn bootstrap(&self) -> &str {
        self.bootstraps.split(',').next().unwrap_or_default()
    }

    /// Every broker's `HOST:PORT`, comma-separated.
    pub fn bootstraps(&self) -> &str {
        &self.bootstraps
    }

    /// librdkafka's version, like `2.0.2`.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn brokers(&self) -> u16 {
        self.brokers
    }

    /// How reports name it: `librdkafka 2.0.2 mock cluster (3 brokers)`.
    pub fn description(&self) -> String {
        format!(
            "librdkafka {} mock cluster ({} broker{})",
            self.version,
            self.brokers,
            if self.brokers == 1 { "" } else { "s" }
        )
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        // SAFETY: both handles came from start() and are destroyed once,
        // the cluster before the producer handle that hosts it, while the
        // library is still loaded (it is dropped after this).
        unsafe {
            (self.mock_destroy)(self.cluster);
            (self.destroy)(self.handle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_stops_at_the_first_nul() {
        let mut buffer: [c_char; 8] = [0; 8];
        for (slot, byte) in buffer.iter_mut().zip(b"bad\0xy") {
            *slot = c_char::from_ne_bytes([*byte]);
        }
        assert_eq!(error_text(&buffer), "bad");
    }

    #[test]
    fn a_missing_library_names_the_package_to_install() {
        let error = EmbeddedError::Missing {
            library: LIBRARY.to_owned(),
            reason: "not found".to_owned(),
        };
        let text = error.to_string();
        assert!(text.contains("apt-get install librdkafka1"), "{text}");
        assert!(text.contains("--bootstrap"), "{text}");
    }
}
