//! What the control domain provides to run xl's commands: the [`Toolstack`] trait and the
//! plain data it answers with.
//!
//! The data types hold what xl reads from libxl (`libxl_dominfo`, `libxl_vcpuinfo`,
//! `libxl_physinfo`, `libxl_version_info`, `libxl_domain_sched_params`; Xen 4.17's
//! `tools/libs/light/libxl_types.idl`), reduced to the fields xl prints. The control domain fills
//! them from its domctl and sysctl answers; [`DomainInfo::from_getdomaininfo`] and
//! [`PhysInfo::from_physinfo`] do the decoding libxl does.
//!
//! # Errors
//! A failing toolstack call returns a [`ToolError`]: one of libxl's error codes
//! ([`LibxlError`], the numbers xl prints as `rc=`) and, optionally, the sentence libxl would
//! have logged; [`crate::run`] prints that sentence as `libxl: error: SENTENCE` before xl's own
//! message (libxl's file, line and function are left out).

use alloc::string::String;
use alloc::vec::Vec;

use xenolith_abi::xen::domctl::{
    xen_domctl_getdomaininfo, XEN_DOMINF_blocked, XEN_DOMINF_dying, XEN_DOMINF_paused,
    XEN_DOMINF_running, XEN_DOMINF_shutdown, XEN_DOMINF_shutdownmask, XEN_DOMINF_shutdownshift,
    XEN_DOMINF_xs_domain, XEN_SCHEDULER_ARINC653, XEN_SCHEDULER_CREDIT, XEN_SCHEDULER_CREDIT2,
    XEN_SCHEDULER_NULL, XEN_SCHEDULER_RTDS,
};
use xenolith_abi::xen::sysctl::xen_sysctl_physinfo;
use xenolith_xlcfg::devices::Vif;
use xenolith_xlcfg::DomainConfig;

use crate::cpumap::CpuMap;

/// libxl's error codes (`libxl_error` in `tools/libs/light/libxl_types.idl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LibxlError {
    /// `ERROR_NONSPECIFIC`.
    Nonspecific = -1,
    /// `ERROR_VERSION`.
    Version = -2,
    /// `ERROR_FAIL`: what libxl returns when a hypercall fails.
    Fail = -3,
    /// `ERROR_NI`: not implemented.
    Ni = -4,
    /// `ERROR_NOMEM`.
    NoMem = -5,
    /// `ERROR_INVAL`.
    Inval = -6,
    /// `ERROR_BADFAIL`.
    BadFail = -7,
    /// `ERROR_GUEST_TIMEDOUT`.
    GuestTimedOut = -8,
    /// `ERROR_TIMEDOUT`.
    TimedOut = -9,
    /// `ERROR_NOPARAVIRT`: the guest has no PV control interface.
    NoParavirt = -10,
    /// `ERROR_NOT_READY`.
    NotReady = -11,
    /// `ERROR_DEVICE_EXISTS`.
    DeviceExists = -17,
    /// `ERROR_DOMAIN_NOTFOUND`.
    DomainNotFound = -21,
    /// `ERROR_ABORTED`.
    Aborted = -22,
    /// `ERROR_NOTFOUND`: for example, no such device.
    NotFound = -23,
    /// `ERROR_DOMAIN_DESTROYED`: the domain went away during the operation.
    DomainDestroyed = -24,
    /// `ERROR_FEATURE_REMOVED`.
    FeatureRemoved = -25,
}

impl LibxlError {
    /// The number xl prints as `rc=`.
    pub fn rc(self) -> i32 {
        self as i32
    }
}

/// A failed toolstack call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    /// libxl's code for the failure.
    pub code: LibxlError,
    /// What libxl would have logged, if anything (printed as `libxl: error: REASON`).
    pub reason: Option<String>,
}

impl ToolError {
    /// A failure with no logged reason.
    pub fn new(code: LibxlError) -> Self {
        Self { code, reason: None }
    }

    /// A failure with the sentence libxl would log.
    pub fn because(code: LibxlError, reason: impl Into<String>) -> Self {
        Self { code, reason: Some(reason.into()) }
    }
}

/// A domain, as `libxl_dominfo` describes it (the fields xl prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    /// The domain id.
    pub domid: u16,
    /// The domain's name (libxl reads it from xenstore's `/local/domain/ID/name`).
    pub name: String,
    /// A vCPU is running (`r`).
    pub running: bool,
    /// Every vCPU waits for an event (`b`).
    pub blocked: bool,
    /// Paused by the toolstack (`p`).
    pub paused: bool,
    /// The domain shut down (`s`); the reason is in `shutdown_reason`.
    pub shutdown: bool,
    /// Being destroyed (`d`).
    pub dying: bool,
    /// The `SHUTDOWN_*` code (`xen/include/public/sched.h`), meaningful when `shutdown`.
    pub shutdown_reason: u32,
    /// A service domain `shutdown -a` leaves alone (libxl's `never_stop`, from
    /// `XEN_DOMINF_xs_domain`); the control domain sets it for its service domains.
    pub never_stop: bool,
    /// Memory allocated, KiB.
    pub current_memkb: u64,
    /// Memory claimed but not yet allocated, KiB.
    pub outstanding_memkb: u64,
    /// The memory limit, KiB.
    pub max_memkb: u64,
    /// CPU time used, nanoseconds.
    pub cpu_time: u64,
    /// vCPUs up.
    pub vcpu_online: u32,
    /// The highest vCPU id (`XEN_INVALID_MAX_VCPU_ID` if none).
    pub vcpu_max_id: u32,
    /// The CPU pool.
    pub cpupool: u32,
}

impl DomainInfo {
    /// Decodes `XEN_DOMCTL_getdomaininfo`'s answer as `libxl__xcinfo2xlinfo`
    /// (`tools/libs/light/libxl_domain.c`) does: flags to states, pages to KiB (4 KiB pages).
    pub fn from_getdomaininfo(info: &xen_domctl_getdomaininfo, name: String) -> Self {
        let flag = |bit: u32| info.flags & bit != 0;
        let kib = |pages: u64| pages.wrapping_mul(4);
        Self {
            domid: info.domain,
            name,
            running: flag(XEN_DOMINF_running),
            blocked: flag(XEN_DOMINF_blocked),
            paused: flag(XEN_DOMINF_paused),
            shutdown: flag(XEN_DOMINF_shutdown),
            dying: flag(XEN_DOMINF_dying),
            shutdown_reason: (info.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask,
            never_stop: flag(XEN_DOMINF_xs_domain),
            current_memkb: kib(info.tot_pages),
            outstanding_memkb: kib(info.outstanding_pages),
            max_memkb: kib(info.max_pages),
            cpu_time: info.cpu_time,
            vcpu_online: info.nr_online_vcpus,
            vcpu_max_id: info.max_vcpu_id,
            cpupool: info.cpupool,
        }
    }
}

/// One vCPU, as `libxl_vcpuinfo` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuInfo {
    /// The vCPU's id.
    pub vcpuid: u32,
    /// The pCPU it runs or last ran on.
    pub cpu: u32,
    /// Up.
    pub online: bool,
    /// Waiting for an event.
    pub blocked: bool,
    /// Running now.
    pub running: bool,
    /// CPU time used, nanoseconds.
    pub vcpu_time: u64,
    /// Hard affinity.
    pub cpumap: CpuMap,
    /// Soft affinity.
    pub cpumap_soft: CpuMap,
}

/// The host, as `libxl_physinfo` describes it (the fields `xl info` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysInfo {
    /// Hardware threads per core.
    pub threads_per_core: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// pCPUs online.
    pub nr_cpus: u32,
    /// The highest pCPU id.
    pub max_cpu_id: u32,
    /// NUMA nodes.
    pub nr_nodes: u32,
    /// CPU frequency, kHz.
    pub cpu_khz: u32,
    /// Hardware capability words.
    pub hw_cap: [u32; 8],
    /// `XEN_SYSCTL_PHYSCAP_*` (`xen/include/public/sysctl.h`).
    pub capabilities: u32,
    /// RAM pages.
    pub total_pages: u64,
    /// Free pages.
    pub free_pages: u64,
    /// Claimed pages.
    pub outstanding_pages: u64,
    /// Pages freed by memory sharing.
    pub sharing_freed_pages: u64,
    /// Frames used by memory sharing.
    pub sharing_used_frames: u64,
    /// pCPUs in no CPU pool (`libxl_get_freecpus`), if known.
    pub free_cpus: Option<u32>,
}

impl PhysInfo {
    /// From `XEN_SYSCTL_physinfo`'s answer. Memory sharing does not exist in Xenolith (both
    /// sharing counts are 0) and every pCPU is in its only pool (no free pCPUs).
    pub fn from_physinfo(p: &xen_sysctl_physinfo) -> Self {
        Self {
            threads_per_core: p.threads_per_core,
            cores_per_socket: p.cores_per_socket,
            nr_cpus: p.nr_cpus,
            max_cpu_id: p.max_cpu_id,
            nr_nodes: p.nr_nodes,
            cpu_khz: p.cpu_khz,
            hw_cap: p.hw_cap,
            capabilities: p.capabilities,
            total_pages: p.total_pages,
            free_pages: p.free_pages,
            outstanding_pages: p.outstanding_pages,
            sharing_freed_pages: 0,
            sharing_used_frames: 0,
            free_cpus: Some(0),
        }
    }
}

/// Xen's version strings, as `libxl_version_info` holds them (from `XENVER_*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionInfo {
    /// `XENVER_version` >> 16.
    pub xen_version_major: i32,
    /// `XENVER_version` & 0xffff.
    pub xen_version_minor: i32,
    /// `XENVER_extraversion` (".0", "-unstable").
    pub xen_version_extra: String,
    /// `XENVER_compile_info`: compiler.
    pub compiler: String,
    /// `XENVER_compile_info`: compile_by.
    pub compile_by: String,
    /// `XENVER_compile_info`: compile_domain.
    pub compile_domain: String,
    /// `XENVER_compile_info`: compile_date.
    pub compile_date: String,
    /// `XENVER_capabilities`.
    pub capabilities: String,
    /// `XENVER_changeset`.
    pub changeset: String,
    /// `XENVER_platform_parameters`: virt_start.
    pub virt_start: u64,
    /// `XENVER_pagesize`.
    pub pagesize: u32,
    /// `XENVER_commandline`.
    pub commandline: String,
    /// `XENVER_build_id`, as hex digits.
    pub build_id: String,
}

/// What `uname` tells about the domain xl runs in (the first four lines of `xl info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    /// `nodename`.
    pub host: String,
    /// `release`.
    pub release: String,
    /// `version`.
    pub version: String,
    /// `machine`.
    pub machine: String,
}

/// A scheduler, with libxl's names (`libxl_scheduler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// `unknown`.
    Unknown,
    /// `credit`.
    Credit,
    /// `credit2`.
    Credit2,
    /// `arinc653`.
    Arinc653,
    /// `rtds`.
    Rtds,
    /// `null`.
    Null,
}

impl Scheduler {
    /// From a `XEN_SCHEDULER_*` id (`xen/include/public/domctl.h`).
    pub fn from_xen_id(id: u32) -> Self {
        match id {
            XEN_SCHEDULER_CREDIT => Self::Credit,
            XEN_SCHEDULER_CREDIT2 => Self::Credit2,
            XEN_SCHEDULER_ARINC653 => Self::Arinc653,
            XEN_SCHEDULER_RTDS => Self::Rtds,
            XEN_SCHEDULER_NULL => Self::Null,
            _ => Self::Unknown,
        }
    }

    /// libxl's name (`libxl_scheduler_to_string`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Credit => "credit",
            Self::Credit2 => "credit2",
            Self::Arinc653 => "arinc653",
            Self::Rtds => "rtds",
            Self::Null => "null",
        }
    }
}

/// A domain's scheduling parameters (`libxl_domain_sched_params`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedParams {
    /// The scheduler that answered.
    pub sched: Scheduler,
    /// Weight.
    pub weight: i32,
    /// Cap, percent of one pCPU; 0 is none.
    pub cap: i32,
}

/// What `shutdown` and `reboot` ask of a guest (the value libxl writes to the guest's
/// `control/shutdown` xenstore key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownKind {
    /// `poweroff`.
    Poweroff,
    /// `reboot`.
    Reboot,
}

/// `console -t`'s console types (`libxl_console_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleType {
    /// `pv`.
    Pv,
    /// `serial`.
    Serial,
    /// `vuart`.
    Vuart,
}

/// The device `network-detach` names: a device id (`atoi`) or, when it holds a `:`, a MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicRef {
    /// A device id.
    DevId(i32),
    /// A MAC address, as typed.
    Mac(String),
}

/// What the control domain provides. Each method is one libxl call xl makes (named in its
/// documentation); [`crate::run`] adds xl's checks and messages around them.
pub trait Toolstack {
    /// How many times `shutdown -w`/`reboot -w` look at the domain list, with a
    /// [`Toolstack::wait`] between looks, before giving up.
    const WAIT_POLLS: u32 = 600;

    /// Every domain, in domain-id order (`libxl_list_domain`).
    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, ToolError>;
    /// The configuration a domain was created from (`libxl_retrieve_domain_configuration`);
    /// `None` for domains not created by `xl create` (xl skips them in `list -l`).
    fn domain_config(&mut self, domid: u16) -> Option<DomainConfig>;
    /// A domain's vCPUs, `0..=vcpu_max_id` (`libxl_list_vcpu`).
    fn vcpus(&mut self, domid: u16) -> Result<Vec<VcpuInfo>, ToolError>;
    /// Sets a vCPU's hard and/or soft affinity (`libxl_set_vcpuaffinity`); `None` leaves one
    /// alone. The maps are trimmed to the host's pCPUs.
    fn set_vcpu_affinity(
        &mut self,
        domid: u16,
        vcpu: u32,
        hard: Option<&CpuMap>,
        soft: Option<&CpuMap>,
    ) -> Result<(), ToolError>;
    /// Reads a configuration file named on the command line (`libxl_read_file_contents`).
    fn read_file(&mut self, path: &str) -> Result<String, ToolError>;
    /// Builds a domain from a checked configuration and leaves it paused
    /// (`libxl_domain_create_new`); returns its id.
    fn create(&mut self, config: &DomainConfig) -> Result<u16, ToolError>;
    /// Destroys a domain and returns once it is gone (`libxl_domain_destroy`).
    fn destroy(&mut self, domid: u16) -> Result<(), ToolError>;
    /// `libxl_domain_pause`.
    fn pause(&mut self, domid: u16) -> Result<(), ToolError>;
    /// `libxl_domain_unpause`.
    fn unpause(&mut self, domid: u16) -> Result<(), ToolError>;
    /// Asks the guest to power off or reboot (`libxl_domain_shutdown`/`_reboot`); a guest
    /// without the PV control interface is [`LibxlError::NoParavirt`].
    fn shutdown(&mut self, domid: u16, kind: ShutdownKind) -> Result<(), ToolError>;
    /// Paces `shutdown -w`: returns after one polling interval.
    fn wait(&mut self);
    /// Connects the console the command came from to a domain's console
    /// (`libxl_console_exec` and the console client it runs), and returns: `None` is the
    /// primary console. [`LibxlError::NotFound`] if the domain has no such console (xl then
    /// prints xenconsole's failure).
    fn console(
        &mut self,
        domid: u16,
        console: Option<ConsoleType>,
        number: i32,
    ) -> Result<(), ToolError>;
    /// A domain's scheduling parameters (`libxl_domain_sched_params_get`).
    fn sched_params(&mut self, domid: u16) -> Result<SchedParams, ToolError>;
    /// Sets a domain's credit2 weight and/or cap (`libxl_domain_sched_params_set`), already
    /// checked against libxl's ranges.
    fn set_sched_params(
        &mut self,
        domid: u16,
        weight: Option<u16>,
        cap: Option<u16>,
    ) -> Result<(), ToolError>;
    /// Pool-0's credit2 rate limit, µs (`libxl_sched_credit2_params_get`).
    fn credit2_ratelimit(&mut self) -> Result<u32, ToolError>;
    /// Sets Pool-0's credit2 rate limit, µs, already checked (`libxl_sched_credit2_params_set`).
    fn set_credit2_ratelimit(&mut self, ratelimit_us: u32) -> Result<(), ToolError>;
    /// The host (`libxl_get_physinfo`).
    fn physinfo(&mut self) -> Result<PhysInfo, ToolError>;
    /// Xen's version strings (`libxl_get_version_info`).
    fn version_info(&mut self) -> Result<VersionInfo, ToolError>;
    /// The control domain's `uname`.
    fn node_info(&mut self) -> NodeInfo;
    /// Pool-0's scheduler, which Xenolith runs on every pCPU (`libxl_get_scheduler`).
    fn scheduler(&mut self) -> Result<Scheduler, ToolError>;
    /// Xen's console ring, cleared afterwards if `clear` (`libxl_xen_console_read_*`).
    fn console_ring(&mut self, clear: bool) -> Result<String, ToolError>;
    /// Sets a domain's memory target, KiB, and its limit with it (`libxl_set_memory_target`
    /// with `enforce`).
    fn set_memory_target(&mut self, domid: u16, target_kb: u64) -> Result<(), ToolError>;
    /// How long a domain has existed, seconds; `None` if unknown (xl then leaves it out).
    fn uptime(&mut self, domid: u16) -> Option<u64>;
    /// The time of day, seconds since midnight (for `uptime -s`).
    fn time_of_day(&mut self) -> u32;
    /// Adds a network device (`libxl_device_nic_add`).
    fn network_attach(&mut self, domid: u16, vif: &Vif) -> Result<(), ToolError>;
    /// Removes a network device; [`LibxlError::NotFound`] if there is no such device
    /// (`libxl_devid_to_device_nic`/`libxl_mac_to_device_nic`, `libxl_device_nic_remove`).
    fn network_detach(&mut self, domid: u16, device: &NicRef) -> Result<(), ToolError>;
}
