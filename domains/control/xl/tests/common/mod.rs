//! Sample data and a fake toolstack shared by the tests.
#![allow(dead_code)]

use xenolith_abi::xen::sysctl::{
    XEN_SYSCTL_PHYSCAP_directio, XEN_SYSCTL_PHYSCAP_gnttab_v1, XEN_SYSCTL_PHYSCAP_hap,
    XEN_SYSCTL_PHYSCAP_hvm,
};
use xenolith_xl::DomainConfig;
use xenolith_xl::Vif;
use xenolith_xl::{
    parse, run, ConsoleType, CpuMap, DomainInfo, LibxlError, NicRef, NodeInfo, PhysInfo,
    SchedParams, Scheduler, ShutdownKind, ToolError, Toolstack, VcpuInfo, VersionInfo, XlError,
};

/// Lines joined with newlines, each ending in one.
pub fn lines(ls: &[&str]) -> String {
    ls.iter().map(|l| format!("{l}\n")).collect()
}

pub fn domain(domid: u16, name: &str) -> DomainInfo {
    DomainInfo {
        domid,
        name: name.to_string(),
        running: false,
        blocked: false,
        paused: false,
        shutdown: false,
        dying: false,
        shutdown_reason: 0,
        never_stop: false,
        current_memkb: 0,
        outstanding_memkb: 0,
        max_memkb: 0,
        cpu_time: 0,
        vcpu_online: 1,
        vcpu_max_id: 0,
        cpupool: 0,
    }
}

/// The three domains most tests run against: the control domain (0), a xenstore service
/// domain (1, never_stop) and a guest (3, two vCPUs).
pub fn domains() -> Vec<DomainInfo> {
    let mut control = domain(0, "control");
    control.running = true;
    control.current_memkb = 131072;
    control.cpu_time = 12_345_678_901;
    let mut xenstore = domain(1, "xenstore");
    xenstore.never_stop = true;
    xenstore.blocked = true;
    xenstore.current_memkb = 32768;
    let mut guest = domain(3, "guest");
    guest.blocked = true;
    guest.paused = true;
    guest.current_memkb = 262144;
    guest.outstanding_memkb = 1024;
    guest.vcpu_online = 2;
    guest.vcpu_max_id = 1;
    guest.cpu_time = 250_000_000;
    vec![control, xenstore, guest]
}

pub fn vcpu(vcpuid: u32, cpu: u32, hard: &[u32], soft: &[u32]) -> VcpuInfo {
    VcpuInfo {
        vcpuid,
        cpu,
        online: true,
        blocked: false,
        running: false,
        vcpu_time: 0,
        cpumap: CpuMap::from_cpus(4, hard),
        cpumap_soft: CpuMap::from_cpus(4, soft),
    }
}

pub fn phys() -> PhysInfo {
    PhysInfo {
        threads_per_core: 1,
        cores_per_socket: 2,
        nr_cpus: 2,
        max_cpu_id: 3,
        nr_nodes: 1,
        cpu_khz: 62500,
        hw_cap: [0xdead_beef, 0, 0, 0, 0, 0, 0, 1],
        capabilities: XEN_SYSCTL_PHYSCAP_hvm
            | XEN_SYSCTL_PHYSCAP_directio
            | XEN_SYSCTL_PHYSCAP_hap
            | XEN_SYSCTL_PHYSCAP_gnttab_v1,
        total_pages: 262_144,
        free_pages: 200_000,
        outstanding_pages: 1000,
        sharing_freed_pages: 0,
        sharing_used_frames: 0,
        free_cpus: Some(0),
    }
}

pub fn version() -> VersionInfo {
    VersionInfo {
        xen_version_major: 4,
        xen_version_minor: 17,
        xen_version_extra: ".0".into(),
        compiler: "rustc 1.95.0".into(),
        compile_by: "xenolith".into(),
        compile_domain: String::new(),
        compile_date: "2026-01-01".into(),
        capabilities: "xen-3.0-aarch64 xen-3.0-armv7l ".into(),
        changeset: String::new(),
        virt_start: 0x20_0000,
        pagesize: 4096,
        commandline: "console=dtuart".into(),
        build_id: String::new(),
    }
}

pub fn node() -> NodeInfo {
    NodeInfo {
        host: "xenolith".into(),
        release: "0.1.0".into(),
        version: "#1 Xenolith".into(),
        machine: "aarch64".into(),
    }
}

/// What the fake does after `shutdown`: the domain shuts down after `shut_after` waits and is
/// gone after `gone_after` waits (`None`: never).
#[derive(Clone, Copy)]
pub struct Dying {
    pub shut_after: u32,
    pub gone_after: Option<u32>,
}

/// A toolstack over a list of domains that records every call.
pub struct Fake {
    pub domains: Vec<DomainInfo>,
    pub configs: Vec<(u16, DomainConfig)>,
    pub vcpus: Vec<(u16, Vec<VcpuInfo>)>,
    pub sched: Vec<(u16, SchedParams)>,
    pub ratelimit: Result<u32, ToolError>,
    pub scheduler: Scheduler,
    pub files: Vec<(String, String)>,
    pub ring: String,
    pub uptimes: Vec<(u16, u64)>,
    pub time_of_day: u32,
    /// Methods (by name) that fail with `ERROR_FAIL`.
    pub failing: Vec<&'static str>,
    /// A specific error for `shutdown`.
    pub shutdown_error: Option<ToolError>,
    pub dying: Dying,
    pub pending: Vec<(u16, u32)>,
    pub next_id: u16,
    /// Every call, as text.
    pub calls: Vec<String>,
}

impl Default for Fake {
    fn default() -> Self {
        Self {
            domains: domains(),
            configs: Vec::new(),
            vcpus: vec![
                (0, vec![vcpu(0, 0, &[0, 1, 2, 3], &[0, 1, 2, 3])]),
                (3, vec![vcpu(0, 1, &[0, 1], &[0, 1, 2, 3]), vcpu(1, 2, &[2, 3], &[3])]),
            ],
            sched: vec![
                (0, SchedParams { sched: Scheduler::Credit2, weight: 256, cap: 0 }),
                (1, SchedParams { sched: Scheduler::Credit2, weight: 256, cap: 0 }),
                (3, SchedParams { sched: Scheduler::Credit2, weight: 512, cap: 50 }),
            ],
            ratelimit: Ok(1000),
            scheduler: Scheduler::Credit2,
            files: vec![("/etc/xen/new.cfg".into(), NEW_CFG.into())],
            ring: "(XEN) Xenolith starting\n(XEN) done\n".into(),
            uptimes: vec![(0, 90061), (1, 90000), (3, 3661)],
            time_of_day: 13 * 3600 + 5 * 60 + 9,
            failing: Vec::new(),
            shutdown_error: None,
            dying: Dying { shut_after: 1, gone_after: Some(2) },
            pending: Vec::new(),
            next_id: 7,
            calls: Vec::new(),
        }
    }
}

pub const NEW_CFG: &str = "name = \"new\"\nmemory = 128\nvcpus = 2\nkernel = \"/boot/Image\"\n";

impl Fake {
    fn check(&mut self, call: String, method: &'static str) -> Result<(), ToolError> {
        self.calls.push(call);
        if self.failing.contains(&method) {
            return Err(ToolError::because(
                LibxlError::Fail,
                format!("{method} failed in the fake"),
            ));
        }
        Ok(())
    }

    fn exists(&self, domid: u16) -> Result<(), ToolError> {
        if self.domains.iter().any(|d| d.domid == domid) {
            Ok(())
        } else {
            Err(ToolError::new(LibxlError::DomainNotFound))
        }
    }
}

impl Toolstack for Fake {
    const WAIT_POLLS: u32 = 5;

    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, ToolError> {
        if self.failing.contains(&"list_domains") {
            return Err(ToolError::new(LibxlError::Fail));
        }
        Ok(self.domains.clone())
    }
    fn domain_config(&mut self, domid: u16) -> Option<DomainConfig> {
        self.configs.iter().find(|(id, _)| *id == domid).map(|(_, c)| c.clone())
    }
    fn vcpus(&mut self, domid: u16) -> Result<Vec<VcpuInfo>, ToolError> {
        self.check(format!("vcpus {domid}"), "vcpus")?;
        self.vcpus
            .iter()
            .find(|(id, _)| *id == domid)
            .map(|(_, v)| v.clone())
            .ok_or(ToolError::because(LibxlError::Fail, format!("Domain {domid}:getting infolist")))
    }
    fn set_vcpu_affinity(
        &mut self,
        domid: u16,
        vcpu: u32,
        hard: Option<&CpuMap>,
        soft: Option<&CpuMap>,
    ) -> Result<(), ToolError> {
        let show = |m: Option<&CpuMap>| m.map_or("-".to_string(), |m| format!("{:?}", m.cpus()));
        let call = format!("affinity {domid} {vcpu} {} {}", show(hard), show(soft));
        self.check(call, "set_vcpu_affinity")
    }
    fn read_file(&mut self, path: &str) -> Result<String, ToolError> {
        self.calls.push(format!("read {path}"));
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.clone())
            .ok_or(ToolError::because(LibxlError::Fail, "No such file or directory"))
    }
    fn create(&mut self, config: &DomainConfig) -> Result<u16, ToolError> {
        self.check(format!("create {} {} MiB", config.name, config.memory_mib), "create")?;
        let id = self.next_id;
        self.next_id += 1;
        let mut d = domain(id, &config.name);
        d.paused = true;
        self.domains.push(d);
        self.configs.push((id, config.clone()));
        Ok(id)
    }
    fn destroy(&mut self, domid: u16) -> Result<(), ToolError> {
        self.check(format!("destroy {domid}"), "destroy")?;
        self.domains.retain(|d| d.domid != domid);
        Ok(())
    }
    fn pause(&mut self, domid: u16) -> Result<(), ToolError> {
        self.check(format!("pause {domid}"), "pause")?;
        self.exists(domid)
    }
    fn unpause(&mut self, domid: u16) -> Result<(), ToolError> {
        self.check(format!("unpause {domid}"), "unpause")?;
        self.exists(domid)
    }
    fn shutdown(&mut self, domid: u16, kind: ShutdownKind) -> Result<(), ToolError> {
        self.check(format!("shutdown {domid} {kind:?}"), "shutdown")?;
        if let Some(e) = self.shutdown_error.clone() {
            return Err(e);
        }
        self.exists(domid)?;
        self.pending.push((domid, 0));
        Ok(())
    }
    fn wait(&mut self) {
        self.calls.push("wait".into());
        let dying = self.dying;
        for (id, waits) in &mut self.pending {
            *waits += 1;
            if let Some(d) = self.domains.iter_mut().find(|d| d.domid == *id) {
                if *waits >= dying.shut_after {
                    d.shutdown = true;
                }
            }
            if dying.gone_after.is_some_and(|g| *waits >= g) {
                self.domains.retain(|d| d.domid != *id);
            }
        }
    }
    fn console(
        &mut self,
        domid: u16,
        console: Option<ConsoleType>,
        number: i32,
    ) -> Result<(), ToolError> {
        self.check(format!("console {domid} {console:?} {number}"), "console")?;
        // The xenstore domain (1) has no console here, nor has a domain that does not exist.
        match domid {
            1 => Err(ToolError::new(LibxlError::NotFound)),
            _ => self.exists(domid).map_err(|_| ToolError::new(LibxlError::NotFound)),
        }
    }
    fn sched_params(&mut self, domid: u16) -> Result<SchedParams, ToolError> {
        self.check(format!("sched_params {domid}"), "sched_params")?;
        self.sched.iter().find(|(id, _)| *id == domid).map(|(_, p)| *p).ok_or(ToolError::because(
            LibxlError::Fail,
            format!("Domain {domid}:Getting domain sched credit2"),
        ))
    }
    fn set_sched_params(
        &mut self,
        domid: u16,
        weight: Option<u16>,
        cap: Option<u16>,
    ) -> Result<(), ToolError> {
        self.check(format!("set_sched {domid} {weight:?} {cap:?}"), "set_sched_params")
    }
    fn credit2_ratelimit(&mut self) -> Result<u32, ToolError> {
        self.ratelimit.clone()
    }
    fn set_credit2_ratelimit(&mut self, ratelimit_us: u32) -> Result<(), ToolError> {
        self.check(format!("set_ratelimit {ratelimit_us}"), "set_credit2_ratelimit")
    }
    fn physinfo(&mut self) -> Result<PhysInfo, ToolError> {
        self.check("physinfo".into(), "physinfo")?;
        Ok(phys())
    }
    fn version_info(&mut self) -> Result<VersionInfo, ToolError> {
        self.check("version_info".into(), "version_info")?;
        Ok(version())
    }
    fn node_info(&mut self) -> NodeInfo {
        node()
    }
    fn scheduler(&mut self) -> Result<Scheduler, ToolError> {
        self.check("scheduler".into(), "scheduler")?;
        Ok(self.scheduler)
    }
    fn console_ring(&mut self, clear: bool) -> Result<String, ToolError> {
        self.check(format!("console_ring {clear}"), "console_ring")?;
        Ok(self.ring.clone())
    }
    fn set_memory_target(&mut self, domid: u16, target_kb: u64) -> Result<(), ToolError> {
        self.check(format!("mem {domid} {target_kb}"), "set_memory_target")
    }
    fn uptime(&mut self, domid: u16) -> Option<u64> {
        self.uptimes.iter().find(|(id, _)| *id == domid).map(|(_, s)| *s)
    }
    fn time_of_day(&mut self) -> u32 {
        self.time_of_day
    }
    fn network_attach(&mut self, domid: u16, vif: &Vif) -> Result<(), ToolError> {
        self.calls.push(format!("network_attach {domid} {:?}", vif.options));
        Err(ToolError::because(LibxlError::Ni, "netback does not exist yet"))
    }
    fn network_detach(&mut self, domid: u16, device: &NicRef) -> Result<(), ToolError> {
        self.calls.push(format!("network_detach {domid} {device:?}"));
        match device {
            NicRef::DevId(0) => Err(ToolError::new(LibxlError::NotFound)),
            _ => Err(ToolError::because(LibxlError::Ni, "netback does not exist yet")),
        }
    }
}

/// Parses and runs `line` against `fake`: the output, and the error if any.
pub fn exec(fake: &mut Fake, line: &str) -> (String, Result<(), XlError>) {
    let mut out = String::new();
    let result = parse(line).and_then(|c| run(&c, fake, &mut out));
    (out, result)
}

/// Runs `line`, which must succeed; its output.
pub fn ok(fake: &mut Fake, line: &str) -> String {
    let (out, result) = exec(fake, line);
    if let Err(e) = result {
        panic!("{line:?} failed: {e}\noutput so far: {out}");
    }
    out
}

/// Runs `line`, which must fail; the output before the failure and xl's message.
pub fn fails(fake: &mut Fake, line: &str) -> (String, String) {
    let (out, result) = exec(fake, line);
    let e = result.expect_err(line);
    (out, e.text)
}
