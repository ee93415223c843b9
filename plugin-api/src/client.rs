//! The host side of the boundary: plain-typed calls into a loaded plugin.

use crate::error::PluginError;
use crate::ffi::*;
use crate::model::{
    ActiveFault, HealthSnapshot, Level, ParamValue, RemedyOutcome, SubjectDescription,
};
use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RStr, RString};
use std::path::Path;

/// A loaded root module.
#[derive(Clone, Copy)]
pub struct Module(SubjectModRef);

impl Module {
    pub fn new(root: SubjectModRef) -> Self {
        Module(root)
    }

    /// Opens a plugin library and checks its ABI: abi_stable compares the
    /// plugin-api version and every type's layout with this side's before
    /// any plugin code is called. Returns the plugin's version string too,
    /// for messages. The host and `testing` both load through here.
    pub fn open(path: &Path) -> Result<(Module, String), (Option<String>, LibraryError)> {
        let header = lib_header_from_path(path).map_err(|e| (None, e))?;
        let version = header.version_strings().version.to_string();
        let root = header
            .init_root_module::<SubjectModRef>()
            .map_err(|e| (Some(version.clone()), e))?;
        Ok((Module(root), version))
    }

    /// The plugin-api version the plugin was built against.
    pub fn api_version(&self) -> String {
        (self.0.api_version())().to_string()
    }

    /// The description, with the remedies of a plugin that has them.
    pub fn describe(&self) -> Result<SubjectDescription, PluginError> {
        let mut d: SubjectDescription = from_ffi_result((self.0.describe())())?;
        if let Some(remedies) = self.0.remedies() {
            d.remedies = from_ffi_result(remedies())?;
        }
        Ok(d)
    }

    /// Whether the plugin was built with remediation (its instances have `remediate`).
    pub fn has_remediation(&self) -> bool {
        self.0.remedies().is_some()
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
        let remediation = self.has_remediation();
        match (self.0.create())(ctx) {
            abi_stable::std_types::RResult::ROk(inner) => Ok(Instance { inner, remediation }),
            abi_stable::std_types::RResult::RErr(e) => Err(PluginError::from_ffi(e)),
        }
    }
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
    /// Its vtable has `remediate` (calling a method a vtable lacks would panic).
    remediation: bool,
}

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
        if !self.remediation {
            return Err(PluginError::Unsupported(format!(
                "remedy `{remedy}`: the plugin was built without remediation"
            )));
        }
        from_ffi_result(self.inner.remediate(
            RStr::from_str(remedy),
            params.to_vec().into_ffi(),
            RStr::from_str(target),
        ))
    }
}
