//! The ABI boundary: FFI-safe mirrors of [`crate::model`], the root module and
//! the instance object, and the one place where plain and FFI types convert.
//!
//! Every struct here is checked by abi_stable at load time: a plugin whose
//! layout differs from the host's is refused with a report rather than misread.
//! The root module is a prefix type, so fields appended after
//! `#[sabi(last_prefix_field)]` in a later minor version keep older plugins loading.

// The `sabi_trait` expansion of abi_stable 0.11 trips this newer lint; the impls it generates are sound.
#![allow(non_local_definitions)]

use crate::error::PluginError;
use crate::model::*;
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
    StableAbi,
};

/// Conversion between a plain model type and its FFI mirror.
pub trait Boundary: Sized {
    type Ffi;
    fn into_ffi(self) -> Self::Ffi;
    fn from_ffi(ffi: Self::Ffi) -> Self;
}

macro_rules! identity_boundary {
    ($($t:ty),*) => {$(
        impl Boundary for $t {
            type Ffi = $t;
            fn into_ffi(self) -> $t { self }
            fn from_ffi(ffi: $t) -> $t { ffi }
        }
    )*};
}
identity_boundary!(u64, f64, bool, i64);

impl Boundary for String {
    type Ffi = RString;
    fn into_ffi(self) -> RString {
        RString::from(self)
    }
    fn from_ffi(ffi: RString) -> String {
        ffi.into_string()
    }
}

impl<T: Boundary> Boundary for Vec<T> {
    type Ffi = RVec<T::Ffi>;
    fn into_ffi(self) -> RVec<T::Ffi> {
        self.into_iter().map(T::into_ffi).collect()
    }
    fn from_ffi(ffi: RVec<T::Ffi>) -> Vec<T> {
        ffi.into_iter().map(T::from_ffi).collect()
    }
}

impl<T: Boundary> Boundary for Option<T> {
    type Ffi = ROption<T::Ffi>;
    fn into_ffi(self) -> ROption<T::Ffi> {
        self.map(T::into_ffi).into()
    }
    fn from_ffi(ffi: ROption<T::Ffi>) -> Option<T> {
        Option::from(ffi).map(T::from_ffi)
    }
}

/// Declares an FFI mirror struct of a plain struct, field for field, with its conversion.
macro_rules! mirror_struct {
    ($(#[$doc:meta])* $plain:ident => $ffi:ident { $($field:ident : $fty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(StableAbi, Debug, Clone)]
        pub struct $ffi { $(pub $field: $fty),* }

        impl Boundary for $plain {
            type Ffi = $ffi;
            fn into_ffi(self) -> $ffi { $ffi { $($field: Boundary::into_ffi(self.$field)),* } }
            fn from_ffi(ffi: $ffi) -> $plain { $plain { $($field: Boundary::from_ffi(ffi.$field)),* } }
        }
    };
}

/// Declares an FFI mirror of a field-less enum, variant for variant.
macro_rules! mirror_enum {
    ($plain:ident => $ffi:ident { $($variant:ident),* $(,)? }) => {
        #[repr(u8)]
        #[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $ffi { $($variant),* }

        impl Boundary for $plain {
            type Ffi = $ffi;
            fn into_ffi(self) -> $ffi { match self { $($plain::$variant => $ffi::$variant),* } }
            fn from_ffi(ffi: $ffi) -> $plain { match ffi { $($ffi::$variant => $plain::$variant),* } }
        }
    };
}

mirror_enum!(NodeStatus => FfiNodeStatus { Up, Degraded, Down, Unknown });
mirror_enum!(InvariantStatus => FfiInvariantStatus { Ok, Violated, Unknown });
mirror_enum!(Level => FfiLevel { Debug, Info, Warn, Error });
mirror_enum!(Recovery => FfiRecovery { SelfRecovering, ExplicitRecover });
mirror_enum!(ParamKind => FfiParamKind { Integer, Float, DurationMs, Bool, Text });
mirror_enum!(AnomalyClass => FfiAnomalyClass {
    NodeDown, DependencyDown, StateDivergence, BoundExceeded, LatencySpike,
    Imbalance, CapacityExhausted, Accounting, Lag, QuorumLoss, ErrorBurst, Saturation, Other,
});
mirror_enum!(ComponentKind => FfiComponentKind { Member, Dependency, Client, Resource, Other });
mirror_enum!(MetricKind => FfiMetricKind { Gauge, Counter });
mirror_enum!(Worse => FfiWorse { Unknown, Higher, Lower });
mirror_enum!(BoundIs => FfiBoundIs { Ceiling, Floor });
mirror_enum!(RemedyTarget => FfiRemedyTarget { Component, Cluster });
mirror_enum!(Risk => FfiRisk { Low, Medium, High });

#[repr(u8)]
#[derive(StableAbi, Debug, Clone)]
pub enum FfiParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(RString),
}

impl Boundary for ParamValue {
    type Ffi = FfiParamValue;
    fn into_ffi(self) -> FfiParamValue {
        match self {
            ParamValue::Bool(b) => FfiParamValue::Bool(b),
            ParamValue::Int(i) => FfiParamValue::Int(i),
            ParamValue::Float(f) => FfiParamValue::Float(f),
            ParamValue::Text(s) => FfiParamValue::Text(s.into()),
        }
    }
    fn from_ffi(ffi: FfiParamValue) -> ParamValue {
        match ffi {
            FfiParamValue::Bool(b) => ParamValue::Bool(b),
            FfiParamValue::Int(i) => ParamValue::Int(i),
            FfiParamValue::Float(f) => ParamValue::Float(f),
            FfiParamValue::Text(s) => ParamValue::Text(s.into_string()),
        }
    }
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiParam {
    pub name: RString,
    pub value: FfiParamValue,
}

impl Boundary for (String, ParamValue) {
    type Ffi = FfiParam;
    fn into_ffi(self) -> FfiParam {
        FfiParam {
            name: self.0.into(),
            value: self.1.into_ffi(),
        }
    }
    fn from_ffi(ffi: FfiParam) -> Self {
        (ffi.name.into_string(), ParamValue::from_ffi(ffi.value))
    }
}

#[repr(u8)]
#[derive(StableAbi, Debug, Clone)]
pub enum FfiChaosKind {
    ContainerKill,
    ProcessKill,
    RedisPause,
    BurstTraffic,
    Custom(RString),
}

impl Boundary for ChaosKind {
    type Ffi = FfiChaosKind;
    fn into_ffi(self) -> FfiChaosKind {
        match self {
            ChaosKind::ContainerKill => FfiChaosKind::ContainerKill,
            ChaosKind::ProcessKill => FfiChaosKind::ProcessKill,
            ChaosKind::RedisPause => FfiChaosKind::RedisPause,
            ChaosKind::BurstTraffic => FfiChaosKind::BurstTraffic,
            ChaosKind::Custom(s) => FfiChaosKind::Custom(s.into()),
        }
    }
    fn from_ffi(ffi: FfiChaosKind) -> ChaosKind {
        match ffi {
            FfiChaosKind::ContainerKill => ChaosKind::ContainerKill,
            FfiChaosKind::ProcessKill => ChaosKind::ProcessKill,
            FfiChaosKind::RedisPause => ChaosKind::RedisPause,
            FfiChaosKind::BurstTraffic => ChaosKind::BurstTraffic,
            FfiChaosKind::Custom(s) => ChaosKind::Custom(s.into_string()),
        }
    }
}

#[repr(u8)]
#[derive(StableAbi, Debug, Clone)]
pub enum FfiComponent {
    Any,
    Named(RString),
    OneOf(RVec<RString>),
    ChaosTarget,
}

impl Boundary for Component {
    type Ffi = FfiComponent;
    fn into_ffi(self) -> FfiComponent {
        match self {
            Component::Any => FfiComponent::Any,
            Component::Named(s) => FfiComponent::Named(s.into()),
            Component::OneOf(v) => FfiComponent::OneOf(v.into_ffi()),
            Component::ChaosTarget => FfiComponent::ChaosTarget,
        }
    }
    fn from_ffi(ffi: FfiComponent) -> Component {
        match ffi {
            FfiComponent::Any => Component::Any,
            FfiComponent::Named(s) => Component::Named(s.into_string()),
            FfiComponent::OneOf(v) => Component::OneOf(Boundary::from_ffi(v)),
            FfiComponent::ChaosTarget => Component::ChaosTarget,
        }
    }
}

#[repr(u8)]
#[derive(StableAbi, Debug, Clone)]
pub enum FfiOnEnter {
    Chaos {
        action: RString,
        params: RVec<FfiParam>,
    },
    Recover,
    Step {
        id: RString,
    },
    Diagnose,
}

impl Boundary for OnEnter {
    type Ffi = FfiOnEnter;
    fn into_ffi(self) -> FfiOnEnter {
        match self {
            OnEnter::Chaos { action, params } => FfiOnEnter::Chaos {
                action: action.into(),
                params: params.into_ffi(),
            },
            OnEnter::Recover => FfiOnEnter::Recover,
            OnEnter::Step { id } => FfiOnEnter::Step { id: id.into() },
            OnEnter::Diagnose => FfiOnEnter::Diagnose,
        }
    }
    fn from_ffi(ffi: FfiOnEnter) -> OnEnter {
        match ffi {
            FfiOnEnter::Chaos { action, params } => OnEnter::Chaos {
                action: action.into_string(),
                params: Boundary::from_ffi(params),
            },
            FfiOnEnter::Recover => OnEnter::Recover,
            FfiOnEnter::Step { id } => OnEnter::Step {
                id: id.into_string(),
            },
            FfiOnEnter::Diagnose => OnEnter::Diagnose,
        }
    }
}

#[repr(u8)]
#[derive(StableAbi, Debug, Clone)]
pub enum FfiError {
    InvalidInput(RString),
    Missing(RString),
    Unsupported(RString),
    Panicked(RString),
    Failed(RString),
}

impl Boundary for PluginError {
    type Ffi = FfiError;
    fn into_ffi(self) -> FfiError {
        match self {
            PluginError::InvalidInput(s) => FfiError::InvalidInput(s.into()),
            PluginError::Missing(s) => FfiError::Missing(s.into()),
            PluginError::Unsupported(s) => FfiError::Unsupported(s.into()),
            PluginError::Panicked(s) => FfiError::Panicked(s.into()),
            PluginError::Failed(s) => FfiError::Failed(s.into()),
        }
    }
    fn from_ffi(ffi: FfiError) -> PluginError {
        match ffi {
            FfiError::InvalidInput(s) => PluginError::InvalidInput(s.into_string()),
            FfiError::Missing(s) => PluginError::Missing(s.into_string()),
            FfiError::Unsupported(s) => PluginError::Unsupported(s.into_string()),
            FfiError::Panicked(s) => PluginError::Panicked(s.into_string()),
            FfiError::Failed(s) => PluginError::Failed(s.into_string()),
        }
    }
}

mirror_struct!(Prerequisite => FfiPrerequisite {
    binary: RString, why: RString, environments: RVec<RString>, optional: bool,
});
mirror_struct!(SubjectInfo => FfiSubjectInfo {
    id: RString, name: RString, version: RString, description: RString,
    api_version: RString, environments: RVec<RString>, prerequisites: RVec<FfiPrerequisite>,
});
mirror_struct!(ExpectedDiagnosis => FfiExpectedDiagnosis { anomaly: RString, component: FfiComponent });
mirror_struct!(Chapter => FfiChapter {
    title: RString, narration: RString, key_hint: RString,
    auto_advance_ms: ROption<u64>, blocks_advance: bool, on_enter: ROption<FfiOnEnter>,
    expect_violation: ROption<RString>, expect_diagnosis: ROption<FfiExpectedDiagnosis>,
});
mirror_struct!(ParamSpec => FfiParamSpec {
    name: RString, description: RString, kind: FfiParamKind, default: FfiParamValue,
    min: ROption<f64>, max: ROption<f64>, unit: RString,
});
mirror_struct!(ChaosAction => FfiChaosAction {
    id: RString, name: RString, kind: FfiChaosKind, description: RString,
    params: RVec<FfiParamSpec>, recovery: FfiRecovery,
});
mirror_struct!(ComponentInfo => FfiComponentInfo {
    name: RString, kind: FfiComponentKind, description: RString, depends_on: RVec<RString>,
});
mirror_struct!(GlossaryEntry => FfiGlossaryEntry { term: RString, meaning: RString, class: ROption<FfiAnomalyClass> });
mirror_struct!(DiagnosisContext => FfiDiagnosisContext {
    system: RString, components: RVec<FfiComponentInfo>, glossary: RVec<FfiGlossaryEntry>,
});
/// The description without its remedies, which cross through the root
/// module's optional `remedies` field (see [`SubjectMod`]).
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiDescription {
    pub info: FfiSubjectInfo,
    pub chapters: RVec<FfiChapter>,
    pub chaos_actions: RVec<FfiChaosAction>,
    pub diagnosis: FfiDiagnosisContext,
}

impl Boundary for SubjectDescription {
    type Ffi = FfiDescription;
    fn into_ffi(self) -> FfiDescription {
        FfiDescription {
            info: self.info.into_ffi(),
            chapters: self.chapters.into_ffi(),
            chaos_actions: self.chaos_actions.into_ffi(),
            diagnosis: self.diagnosis.into_ffi(),
        }
    }
    fn from_ffi(ffi: FfiDescription) -> SubjectDescription {
        SubjectDescription {
            info: Boundary::from_ffi(ffi.info),
            chapters: Boundary::from_ffi(ffi.chapters),
            chaos_actions: Boundary::from_ffi(ffi.chaos_actions),
            diagnosis: Boundary::from_ffi(ffi.diagnosis),
            remedies: Vec::new(),
        }
    }
}
mirror_struct!(Remedy => FfiRemedy {
    id: RString, name: RString, description: RString, addresses: RVec<RString>,
    params: RVec<FfiParamSpec>, target: FfiRemedyTarget, risk: FfiRisk, undo: RString,
    verify_within_ms: u64, probe_step: ROption<RString>,
});
mirror_struct!(RemedyOutcome => FfiRemedyOutcome { summary: RString, undo: RString });
mirror_struct!(Metric => FfiMetric {
    name: RString, value: f64, unit: RString, kind: FfiMetricKind, worse: FfiWorse,
});
mirror_struct!(NodeHealth => FfiNodeHealth {
    id: RString, role: RString, address: RString, status: FfiNodeStatus, metrics: RVec<FfiMetric>,
    kind: FfiComponentKind, depends_on: RVec<RString>, stale: bool,
});
mirror_struct!(Invariant => FfiInvariant {
    name: RString, status: FfiInvariantStatus, detail: RString, since_ms: u64,
    class: FfiAnomalyClass, components: RVec<RString>, observed: ROption<f64>, bound: ROption<f64>,
    bound_is: FfiBoundIs,
});
mirror_struct!(Event => FfiEvent {
    at_ms: u64, level: FfiLevel, message: RString, component: ROption<RString>,
});
mirror_struct!(HealthSnapshot => FfiHealthSnapshot {
    at_ms: u64, nodes: RVec<FfiNodeHealth>, metrics: RVec<FfiMetric>,
    invariants: RVec<FfiInvariant>, events: RVec<FfiEvent>,
});
mirror_struct!(ActiveFault => FfiActiveFault {
    fault_id: RString, action_id: RString, targets: RVec<RString>, summary: RString,
    started_ms: u64, expires_ms: ROption<u64>, undo: RString,
});

/// The host's log sink, handed to every instance: plugins never write to stdout or stderr.
#[sabi_trait]
pub trait FfiLog: Send + Sync {
    #[sabi(last_prefix_field)]
    fn log(&self, level: FfiLevel, message: RStr<'_>);
}

pub type FfiLogBox = FfiLog_TO<'static, RBox<()>>;

/// What `create` receives.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiInstanceContext {
    pub config: RString,
    /// The directory the plugin library was loaded from (not the hashed copy),
    /// so a plugin can find binaries built beside it.
    pub library_dir: RString,
    pub log: FfiLogBox,
}

/// A running plugin instance. Every method is a blocking call that the host
/// makes off its render loop, with a timeout; the plugin runs its async work
/// on a runtime it owns.
#[sabi_trait]
pub trait FfiSubject: Send + Sync {
    fn setup(&self) -> RResult<(), FfiError>;
    fn teardown(&self) -> RResult<(), FfiError>;
    fn health(&self) -> RResult<FfiHealthSnapshot, FfiError>;
    fn inject(&self, action: RStr<'_>, params: RVec<FfiParam>)
        -> RResult<FfiActiveFault, FfiError>;
    fn recover(&self, fault_id: RStr<'_>) -> RResult<(), FfiError>;
    fn run_step(&self, step: RStr<'_>) -> RResult<RString, FfiError>;
    #[sabi(last_prefix_field)]
    fn recover_leftover(&self, undo: RStr<'_>) -> RResult<(), FfiError>;
}

pub type FfiSubjectBox = FfiSubject_TO<'static, RBox<()>>;

/// The root module every plugin exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = SubjectModRef)))]
#[sabi(missing_field(panic))]
pub struct SubjectMod {
    /// The plugin-api version the plugin was built against, for messages.
    pub api_version: extern "C" fn() -> RStr<'static>,
    pub describe: extern "C" fn() -> RResult<FfiDescription, FfiError>,
    #[sabi(last_prefix_field)]
    pub create: extern "C" fn(ctx: FfiInstanceContext) -> RResult<FfiSubjectBox, FfiError>,
}

/// Remediation, an optional capability exported beside the root module.
///
/// abi_stable refuses a library whose root module or vtable has fewer fields
/// than the host expects, so a capability that older plugins lack cannot be
/// a field there. It is a symbol of its own ([`REMEDIATION_SYMBOL`]): a
/// plugin without it loads and offers no remedies, and one with it has the
/// module's layout checked against the host's before it is used.
#[repr(C)]
#[derive(StableAbi)]
pub struct RemediationMod {
    /// The remedies of the description.
    pub remedies: extern "C" fn() -> RResult<RVec<FfiRemedy>, FfiError>,
    /// Runs a declared remedy on an instance this plugin created.
    pub remediate: extern "C" fn(
        instance: &FfiSubjectBox,
        remedy: RStr<'_>,
        params: RVec<FfiParam>,
        target: RStr<'_>,
    ) -> RResult<FfiRemedyOutcome, FfiError>,
}

/// What the remediation symbol returns: the module and its layout, which the
/// host checks with abi_stable before calling anything in it.
#[repr(C)]
pub struct RemediationExport {
    pub layout: &'static abi_stable::type_layout::TypeLayout,
    pub module: &'static RemediationMod,
}

/// The symbol of the remediation capability: `extern "C" fn() -> RemediationExport`.
pub const REMEDIATION_SYMBOL: &[u8] = b"demo_host_remediation_v1\0";

impl RootModule for SubjectModRef {
    declare_root_module_statics! {SubjectModRef}
    const BASE_NAME: &'static str = "subject";
    const NAME: &'static str = "demo-host subject";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Converts an FFI result into a plain one.
pub fn from_ffi_result<F, T: Boundary<Ffi = F>>(r: RResult<F, FfiError>) -> Result<T, PluginError> {
    match r {
        RResult::ROk(v) => Ok(T::from_ffi(v)),
        RResult::RErr(e) => Err(PluginError::from_ffi(e)),
    }
}

/// Converts a plain result into an FFI one.
pub fn into_ffi_result<T: Boundary>(r: Result<T, PluginError>) -> RResult<T::Ffi, FfiError> {
    match r {
        Ok(v) => RResult::ROk(v.into_ffi()),
        Err(e) => RResult::RErr(e.into_ffi()),
    }
}

impl Boundary for () {
    type Ffi = ();
    fn into_ffi(self) {}
    fn from_ffi(_: ()) {}
}
