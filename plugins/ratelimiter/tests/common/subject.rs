//! Driving the plugin through the `Subject` trait (the rlib), as the host would.

use plugin_api::*;
use std::time::{Duration, Instant};
use subject_ratelimiter::plugin::RateLimiterSubject;

pub fn create(config: &str) -> PluginResult<RateLimiterSubject> {
    RateLimiterSubject::create(InstanceContext {
        config: Config::parse(config)?,
        raw_config: config.into(),
        library_dir: super::node_bin_dir(),
        log: Logger::discard(),
    })
}

/// A set-up subject that is torn down when dropped, also when the test fails.
pub struct Running(pub RateLimiterSubject);

impl Running {
    pub fn start(config: &str) -> Running {
        let s = create(config).unwrap();
        let r = Running(s);
        r.0.setup().unwrap();
        r
    }

    pub fn inject(&self, action: &str, params: &[(&str, ParamValue)]) -> PluginResult<ActiveFault> {
        let specs = RateLimiterSubject::describe()
            .chaos_actions
            .into_iter()
            .find(|a| a.id == action)
            .map(|a| a.params)
            .unwrap_or_default();
        let given: Vec<(String, ParamValue)> = params
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        let p = plugin_api::params::validate(&specs, &given)?;
        self.0.inject(action, &p)
    }

    /// Polls health until the invariant has the status, returning it.
    pub fn wait(&self, name: &str, status: InvariantStatus, deadline: Duration) -> Invariant {
        let end = Instant::now() + deadline;
        let mut last = None;
        while Instant::now() < end {
            let snap = self.0.health().expect("health never fails");
            if let Some(i) = snap.invariant(name) {
                if i.status == status {
                    return i.clone();
                }
                last = Some(i.clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("`{name}` did not become {status:?}; last seen: {last:?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.teardown();
    }
}

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.split(") ")
                .nth(1)
                .is_some_and(|rest| rest.starts_with('Z'))
        })
        .unwrap_or(false)
}
