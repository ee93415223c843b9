//! Stand-in "TiKV store" containers labelled like the compose project's services,
//! and a PD fixture whose store states follow them.

use docker_chaos::standin::StandinProject;
use docker_chaos::{ContainerInfo, Engine};
use std::time::Duration;
use subject_tikv::fixture::{FixtureOptions, PdFixture};

pub struct Cluster {
    pub rt: tokio::runtime::Runtime,
    pub engine: Engine,
    pub stores: Vec<ContainerInfo>,
    pub pd: PdFixture,
    // Dropped last: removes the containers and the image.
    pub project: StandinProject,
}

impl Cluster {
    /// Three stand-in stores `tikv0..2` in a fresh project and a fixture following them;
    /// `None` after one loud line when this machine has no Docker engine or no static busybox.
    pub fn start(test: &str) -> Option<Cluster> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (engine, project) = rt.block_on(docker_chaos::standin::for_test(test, "tikvtest"))?;
        let name = project.name().to_string();
        let net = rt.block_on(project.network("default")).expect("network");
        let stores = ["tikv0", "tikv1", "tikv2"]
            .iter()
            .map(|svc| {
                rt.block_on(project.service(svc, Some(&net)))
                    .expect("stand-in store starts")
            })
            .collect();
        let mut opts = FixtureOptions::three_stores();
        opts.docker_project = Some(name.clone());
        opts.down_after = Duration::from_secs(3);
        let pd = PdFixture::start(opts).expect("fixture starts");
        Some(Cluster {
            rt,
            engine,
            stores,
            pd,
            project,
        })
    }

    pub fn config(&self) -> String {
        format!(
            "pd={} project={} docker=on",
            self.pd.url(),
            self.project.name()
        )
    }

    pub fn inspect(&self, i: usize) -> ContainerInfo {
        self.rt
            .block_on(self.engine.inspect(&self.stores[i].id))
            .unwrap()
    }
}
