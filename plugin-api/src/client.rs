//! The host side of the boundary: plain-typed calls into a loaded plugin.

use crate::error::PluginError;
use crate::ffi::*;
use crate::model::{
    ActiveFault, HealthSnapshot, Level, ParamValue, RemedyOutcome, SubjectDescription,
};
use abi_stable::library::{lib_header_from_raw_library, LibraryError, RawLibrary};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RStr, RString};
use std::path::Path;

/// A loaded root module, and the plugin's remediation capability if it has one.
#[derive(Clone, Copy)]
pub struct Module(SubjectModRef, Option<&'static RemediationMod>);

/// Why a plugin's remediation capability was not taken.
#[derive(Debug, thiserror::Error)]
#[error("the plugin's remediation module does not match this host's: {0}")]
pub struct RemediationMismatch(String);

impl Module {
    /// A module without remediation (a root module obtained elsewhere).
    pub fn new(root: SubjectModRef) -> Self {
        Module(root, None)
    }

    /// Opens a plugin library and checks its ABI: abi_stable compares the
    /// plugin-api version and every type's layout with this side's before
    /// any plugin code is called. Returns the plugin's version string too,
    /// for messages. The host and `testing` both load through here.
    pub fn open(path: &Path) -> Result<Opened, (Option<String>, LibraryError)> {
        // The library stays loaded for the life of the process, as abi_stable's own loader leaves it.
        let raw: &'static RawLibrary =
            Box::leak(Box::new(RawLibrary::load_at(path).map_err(|e| (None, e))?));
        // SAFETY: the library stays mapped for the rest of the process (leaked above).
        let header = unsafe { lib_header_from_raw_library(raw) }.map_err(|e| (None, e))?;
        let version = header.version_strings().version.to_string();
        let root = header
            .init_root_module::<SubjectModRef>()
            .map_err(|e| (Some(version.clone()), e))?;
        let (remediation, remediation_error) = match remediation_of(raw) {
            Ok(r) => (r, None),
            Err(e) => (None, Some(e)),
        };
        Ok(Opened {
            module: Module(root, remediation),
            version,
            remediation_error,
        })
    }

    /// The plugin-api version the plugin was built against.
    pub fn api_version(&self) -> String {
        (self.0.api_version())().to_string()
    }

    /// The description, with the remedies of a plugin that has them.
    pub fn describe(&self) -> Result<SubjectDescription, PluginError> {
        let mut d: SubjectDescription = from_ffi_result((self.0.describe())())?;
        if let Some(r) = self.1 {
            d.remedies = from_ffi_result((r.remedies)())?;
        }
        Ok(d)
    }

    /// Whether the plugin was built with remediation.
    pub fn has_remediation(&self) -> bool {
        self.1.is_some()
    }

    /// Creates an instance; log lines from the plugin reach `log`.
    pub fn create(
        &self,
        config: &str,
        library_dir: &Path,
        log: impl Fn(Level, &str) + Send + Sync + 'static,
    ) -> Result<Instance, PluginError> {
        let ctx = FfiInstanceContext {
            config: config.into(),
            library_dir: library_dir.to_string_lossy().into_owned().into(),
            log: FfiLog_TO::from_value(HostLog(log), TD_Opaque),
        };
        let remediate = self.1.map(|r| r.remediate);
        match (self.0.create())(ctx) {
            abi_stable::std_types::RResult::ROk(inner) => Ok(Instance { inner, remediate }),
            abi_stable::std_types::RResult::RErr(e) => Err(PluginError::from_ffi(e)),
        }
    }
}

/// What [`Module::open`] found.
pub struct Opened {
    pub module: Module,
    /// The plugin-api version the plugin was built against, for messages.
    pub version: String,
    /// A remediation module whose layout differs from the host's: the plugin
    /// loads and offers no remedies, and this says why.
    pub remediation_error: Option<RemediationMismatch>,
}

/// The plugin's remediation module: none when it does not export the symbol,
/// an error when its layout differs from this side's.
fn remediation_of(
    raw: &'static RawLibrary,
) -> Result<Option<&'static RemediationMod>, RemediationMismatch> {
    // SAFETY: the symbol, when present, is the `extern "C" fn() -> RemediationExport`
    // that `export_subject!` defines; its module is used only after abi_stable
    // found its layout compatible with this side's.
    let export =
        match unsafe { raw.get::<extern "C" fn() -> RemediationExport>(REMEDIATION_SYMBOL) } {
            Ok(f) => (*f)(),
            Err(_) => return Ok(None),
        };
    let ours = <RemediationMod as abi_stable::StableAbi>::LAYOUT;
    abi_stable::abi_stability::abi_checking::check_layout_compatibility(ours, export.layout)
        .map_err(|e| RemediationMismatch(e.to_string()))?;
    Ok(Some(export.module))
}

struct HostLog<F>(F);

impl<F: Fn(Level, &str) + Send + Sync> FfiLog for HostLog<F> {
    fn log(&self, level: FfiLevel, message: RStr<'_>) {
        (self.0)(Level::from_ffi(level), message.as_str())
    }
}

/// A running instance. Calls block; the host makes them off its render loop.
pub struct Instance {
    inner: FfiSubjectBox,
    /// The root module's `remediate`, when the plugin was built with it.
    remediate: Option<RemediateFn>,
}

pub type RemediateFn = extern "C" fn(
    &FfiSubjectBox,
    RStr<'_>,
    abi_stable::std_types::RVec<FfiParam>,
    RStr<'_>,
) -> abi_stable::std_types::RResult<FfiRemedyOutcome, FfiError>;

impl Instance {
    pub fn setup(&self) -> Result<(), PluginError> {
        from_ffi_result(self.inner.setup())
    }

    pub fn teardown(&self) -> Result<(), PluginError> {
        from_ffi_result(self.inner.teardown())
    }

    pub fn health(&self) -> Result<HealthSnapshot, PluginError> {
        from_ffi_result(self.inner.health())
    }

    pub fn inject(
        &self,
        action: &str,
        params: &[(String, ParamValue)],
    ) -> Result<ActiveFault, PluginError> {
        from_ffi_result(
            self.inner
                .inject(RStr::from_str(action), params.to_vec().into_ffi()),
        )
    }

    pub fn recover(&self, fault_id: &str) -> Result<(), PluginError> {
        from_ffi_result(self.inner.recover(RStr::from_str(fault_id)))
    }

    pub fn run_step(&self, step: &str) -> Result<String, PluginError> {
        from_ffi_result::<RString, String>(self.inner.run_step(RStr::from_str(step)))
    }

    pub fn recover_leftover(&self, undo: &str) -> Result<(), PluginError> {
        from_ffi_result(self.inner.recover_leftover(RStr::from_str(undo)))
    }

    /// Runs a remedy; a plugin built without remediation answers `Unsupported`.
    pub fn remediate(
        &self,
        remedy: &str,
        params: &[(String, ParamValue)],
        target: &str,
    ) -> Result<RemedyOutcome, PluginError> {
        let Some(remediate) = self.remediate else {
            return Err(PluginError::Unsupported(format!(
                "remedy `{remedy}`: the plugin was built without remediation"
            )));
        };
        from_ffi_result(remediate(
            &self.inner,
            RStr::from_str(remedy),
            params.to_vec().into_ffi(),
            RStr::from_str(target),
        ))
    }
}
