//! PKCS#11 modules: loaded and initialised once per process, shared by every
//! token opened through them.
//!
//! A module keeps an *epoch*, bumped on every `C_Initialize` this process makes.
//! Session and object handles are only meaningful within the epoch they were
//! obtained in: after a re-initialisation the module may hand out the same
//! numbers for new sessions, so a handle from an older epoch is never used or
//! closed again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

use crate::error::{Error, Result};

/// One loaded PKCS#11 module.
pub(crate) struct Module {
    pub(crate) pkcs11: Pkcs11,
    pub(crate) path: PathBuf,
    /// Bumped by every `C_Initialize` this process makes.
    epoch: AtomicU64,
    /// Sessions lent out right now, across all tokens of this module.
    in_flight: AtomicUsize,
    /// Labels of the tokens open on this module (one open per token and process).
    open_labels: Mutex<Vec<String>>,
}

impl Module {
    /// The module at `path`, loaded and initialised on first use.
    pub(crate) fn load(path: &Path) -> Result<Arc<Module>> {
        static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
        let load_error = |reason: String| Error::ModuleLoad {
            path: path.to_path_buf(),
            reason,
        };
        let canonical = std::fs::canonicalize(path).map_err(|e| load_error(e.to_string()))?;
        let mut modules = MODULES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(module) = modules.get(&canonical) {
            return Ok(Arc::clone(module));
        }
        let pkcs11 = Pkcs11::new(&canonical).map_err(|e| load_error(e.to_string()))?;
        let module = Arc::new(Module {
            pkcs11,
            path: canonical.clone(),
            epoch: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            open_labels: Mutex::new(Vec::new()),
        });
        module
            .initialize()
            .map_err(|e| load_error(format!("C_Initialize: {e}")))?;
        modules.insert(canonical, Arc::clone(&module));
        Ok(module)
    }

    /// The current initialisation epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// `C_Initialize`, tolerating a module that is already initialised.
    pub(crate) fn initialize(&self) -> std::result::Result<(), CkError> {
        match self
            .pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Ok(()) => {
                self.epoch.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `C_Finalize` then `C_Initialize`, but only when it cannot pull the rug
    /// from under anyone: no session is lent out and `label` is the only open
    /// token of this module. Returns whether the module was reset.
    pub(crate) fn reset_if_idle(&self, label: &str) -> std::result::Result<bool, CkError> {
        let alone = {
            let labels = self.open_labels.lock().unwrap_or_else(|p| p.into_inner());
            labels.len() == 1 && labels[0] == label
        };
        if !alone || self.in_flight.load(Ordering::Acquire) != 0 {
            return Ok(false);
        }
        // Every handle of the old epoch dies here.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let _ = self.pkcs11.clone().finalize();
        self.initialize()?;
        Ok(true)
    }

    /// Records that `label` is open, refusing a second open in this process:
    /// PKCS#11 logins are per process, so a second login could not check its PIN.
    pub(crate) fn register(&self, label: &str) -> Result<()> {
        let mut labels = self.open_labels.lock().unwrap_or_else(|p| p.into_inner());
        if labels.iter().any(|l| l == label) {
            return Err(Error::AlreadyOpen {
                token: label.to_string(),
            });
        }
        labels.push(label.to_string());
        Ok(())
    }

    /// Undoes [`Module::register`].
    pub(crate) fn unregister(&self, label: &str) {
        let mut labels = self.open_labels.lock().unwrap_or_else(|p| p.into_inner());
        labels.retain(|l| l != label);
    }

    /// Counts a session lent out.
    pub(crate) fn lend(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a session given back.
    pub(crate) fn give_back(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
