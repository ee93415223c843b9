//! The plugin side of the boundary: turns a [`Subject`] into the root module.
//!
//! Every entry point runs inside `catch_unwind`: a panic unwinding out of an
//! `extern "C"` function aborts the whole process, and abi_stable's own guards
//! call `exit(1)`, which would skip the host's cleanup and leave chaos in place.
//! Here a panic becomes `PluginError::Panicked` with the panic's message.

use crate::config::Config;
use crate::error::PluginError;
use crate::ffi::*;
use crate::model::{Level, SubjectDescription};
use crate::params;
use crate::subject::{InstanceContext, Logger, Subject};
use abi_stable::prefix_type::WithMetadata;
use abi_stable::sabi_trait::TD_CanDowncast;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Once;

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The plugin links its own copy of std, so this hook is the plugin's own:
/// it records the message for the error value instead of printing on the host's screen.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "panic with a non-text payload".to_string()
            };
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
        }));
    });
}

/// Runs `f`, turning a panic into an error value.
pub fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    install_panic_hook();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            let msg = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PluginError::Panicked(msg))
        }
    }
}

/// Wraps a subject for the FFI object; drop is guarded too.
struct Guarded<S: Subject> {
    inner: std::mem::ManuallyDrop<S>,
    description: SubjectDescription,
}

impl<S: Subject> Drop for Guarded<S> {
    fn drop(&mut self) {
        let inner = &mut self.inner;
        let _ = guard(|| {
            // SAFETY: dropped exactly once, here; the field is never used afterwards.
            unsafe { std::mem::ManuallyDrop::drop(inner) };
            Ok(())
        });
    }
}

impl<S: Subject> FfiSubject for Guarded<S> {
    fn setup(&self) -> RResult<(), FfiError> {
        into_ffi_result(guard(|| self.inner.setup()))
    }

    fn teardown(&self) -> RResult<(), FfiError> {
        into_ffi_result(guard(|| self.inner.teardown()))
    }

    fn health(&self) -> RResult<FfiHealthSnapshot, FfiError> {
        into_ffi_result(guard(|| self.inner.health()))
    }

    fn inject(&self, action: RStr<'_>, given: RVec<FfiParam>) -> RResult<FfiActiveFault, FfiError> {
        into_ffi_result(guard(|| {
            let given: Vec<(String, crate::model::ParamValue)> = Boundary::from_ffi(given);
            let spec = self
                .description
                .chaos_actions
                .iter()
                .find(|a| a.id == action.as_str())
                .ok_or_else(|| {
                    let known: Vec<&str> = self
                        .description
                        .chaos_actions
                        .iter()
                        .map(|a| a.id.as_str())
                        .collect();
                    PluginError::invalid(format!(
                        "unknown chaos action `{action}`; this subject offers: {}",
                        known.join(", ")
                    ))
                })?;
            let params = params::validate(&spec.params, &given)?;
            self.inner.inject(action.as_str(), &params)
        }))
    }

    fn recover(&self, fault_id: RStr<'_>) -> RResult<(), FfiError> {
        into_ffi_result(guard(|| self.inner.recover(fault_id.as_str())))
    }

    fn run_step(&self, step: RStr<'_>) -> RResult<RString, FfiError> {
        into_ffi_result(guard(|| self.inner.run_step(step.as_str())))
    }

    fn recover_leftover(&self, undo: RStr<'_>) -> RResult<(), FfiError> {
        into_ffi_result(guard(|| self.inner.recover_leftover(undo.as_str())))
    }
}

/// The description with the api version filled in by this crate, not the author.
pub fn description<S: Subject>() -> Result<SubjectDescription, PluginError> {
    guard(|| {
        let mut d = S::describe();
        d.info.api_version = crate::API_VERSION.to_string();
        Ok(d)
    })
}

extern "C" fn api_version() -> RStr<'static> {
    RStr::from_str(crate::API_VERSION)
}

extern "C" fn describe<S: Subject>() -> RResult<FfiDescription, FfiError> {
    into_ffi_result(description::<S>())
}

extern "C" fn remedies<S: Subject>() -> RResult<RVec<FfiRemedy>, FfiError> {
    into_ffi_result(description::<S>().map(|d| d.remedies))
}

extern "C" fn remediate<S: Subject>(
    instance: &FfiSubjectBox,
    remedy: RStr<'_>,
    given: RVec<FfiParam>,
    target: RStr<'_>,
) -> RResult<FfiRemedyOutcome, FfiError> {
    into_ffi_result(guard(|| {
        // The instance was made by `create::<S>` of this library, so it unerases to its type.
        let guarded = instance.obj.downcast_as::<Guarded<S>>().map_err(|_| {
            PluginError::invalid("remediate was given an instance of another plugin")
        })?;
        let given: Vec<(String, crate::model::ParamValue)> = Boundary::from_ffi(given);
        let spec = guarded
            .description
            .remedies
            .iter()
            .find(|r| r.id == remedy.as_str())
            .ok_or_else(|| {
                let known: Vec<&str> = guarded
                    .description
                    .remedies
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect();
                PluginError::invalid(format!(
                    "unknown remedy `{remedy}`; this subject offers: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
        let params = params::validate(&spec.params, &given)?;
        guarded
            .inner
            .remediate(remedy.as_str(), &params, target.as_str())
    }))
}

extern "C" fn create<S: Subject>(ctx: FfiInstanceContext) -> RResult<FfiSubjectBox, FfiError> {
    let r = guard(|| {
        let description = description::<S>()?;
        let host_log = ctx.log;
        let log = Logger::new(move |level: Level, msg: &str| {
            host_log.log(level.into_ffi(), RStr::from_str(msg))
        });
        let raw = ctx.config.into_string();
        let instance = S::create(InstanceContext {
            config: Config::parse(&raw)?,
            raw_config: raw,
            library_dir: PathBuf::from(ctx.library_dir.as_str()),
            log,
        })?;
        let guarded = Guarded {
            inner: std::mem::ManuallyDrop::new(instance),
            description,
        };
        // Downcastable, so `remediate` (a root module field) can reach it.
        Ok(FfiSubject_TO::from_value(guarded, TD_CanDowncast))
    });
    match r {
        Ok(b) => RResult::ROk(b),
        Err(e) => RResult::RErr(e.into_ffi()),
    }
}

/// Builds the root module for `S`; called by [`crate::export_subject!`].
pub fn module<S: Subject>() -> SubjectModRef {
    // One static per monomorphisation is not possible in generic code, so the
    // module is leaked once; the export macro calls this a single time per load.
    let with_meta: &'static WithMetadata<SubjectMod> =
        Box::leak(Box::new(WithMetadata::new(SubjectMod {
            api_version,
            describe: describe::<S>,
            create: create::<S>,
        })));
    SubjectModRef(with_meta.static_as_prefix())
}

/// The remediation capability for `S`; called by [`crate::export_subject!`].
pub fn remediation<S: Subject>() -> RemediationExport {
    let module: &'static RemediationMod = Box::leak(Box::new(RemediationMod {
        remedies: remedies::<S>,
        remediate: remediate::<S>,
    }));
    RemediationExport {
        layout: <RemediationMod as abi_stable::StableAbi>::LAYOUT,
        module,
    }
}

/// Exports a [`Subject`] as this library's plugin root module.
///
/// ```ignore
/// plugin_api::export_subject!(MySubject);
/// ```
/// The crate must be a `cdylib` and depend on `abi_stable` (its export attribute names it).
#[macro_export]
macro_rules! export_subject {
    ($subject:ty) => {
        #[::abi_stable::export_root_module]
        pub fn __demo_host_root_module() -> $crate::ffi::SubjectModRef {
            $crate::export::module::<$subject>()
        }

        /// The remediation capability (see `plugin_api::ffi::RemediationMod`).
        #[no_mangle]
        pub extern "C" fn demo_host_remediation_v1() -> $crate::ffi::RemediationExport {
            static EXPORT: ::std::sync::OnceLock<&'static $crate::ffi::RemediationMod> =
                ::std::sync::OnceLock::new();
            let module = *EXPORT.get_or_init(|| $crate::export::remediation::<$subject>().module);
            $crate::ffi::RemediationExport {
                layout: <$crate::ffi::RemediationMod as ::abi_stable::StableAbi>::LAYOUT,
                module,
            }
        }
    };
}
