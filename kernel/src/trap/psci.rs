//! PSCI for domains (Arm DEN 0022, as Xen's `vpsci.c` offers it): a domain's vCPUs are started and
//! stopped, and the domain powered off or reset, through `hvc #0` (or a trapped `smc`).
//!
//! # Invariants
//! - Arguments are checked before anything changes; a bad MPIDR or a vCPU in the wrong state gets
//!   PSCI's own error code, never a crash.

use xenolith_abi::xen::sched::{SHUTDOWN_poweroff, SHUTDOWN_reboot};
use xenolith_kernel::policy::DomainId;

use crate::arch::entry::TrapFrame;
use crate::arch::guest::{VcpuContext, SPSR_EL1H_MASKED};
use crate::domain::{Table, VcpuState};

/// SMCCC_VERSION (Arm DEN 0028).
const SMCCC_VERSION: u32 = 0x8000_0000;
/// PSCI 0.1 function ids, as Xen's `psci` node advertises them (`cpu_off = 1`, `cpu_on = 2`).
const PSCI_0_1_CPU_OFF: u32 = 1;
const PSCI_0_1_CPU_ON: u32 = 2;
const VERSION: u32 = 0x8400_0000;
const CPU_SUSPEND_32: u32 = 0x8400_0001;
const CPU_SUSPEND_64: u32 = 0xC400_0001;
const CPU_OFF: u32 = 0x8400_0002;
const CPU_ON_32: u32 = 0x8400_0003;
const CPU_ON_64: u32 = 0xC400_0003;
const AFFINITY_INFO_32: u32 = 0x8400_0004;
const AFFINITY_INFO_64: u32 = 0xC400_0004;
const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
const SYSTEM_OFF: u32 = 0x8400_0008;
const SYSTEM_RESET: u32 = 0x8400_0009;
const FEATURES: u32 = 0x8400_000A;

const SUCCESS: i64 = 0;
const NOT_SUPPORTED: i64 = -1;
const INVALID_PARAMETERS: i64 = -2;
const ALREADY_ON: i64 = -4;

/// PSCI 1.1, as Xen 4.17 reports it.
const PSCI_1_1: i64 = 0x1_0001;

/// The slot of `domain`'s vCPU an MPIDR affinity value names (the inverse of the VMPIDR the core
/// gives each vCPU: Aff0 holds the low 4 bits of its index, Aff1 the rest), if it has no stray
/// bits and the vCPU exists.
fn target(table: &Table, domain: DomainId, mpidr: u64) -> Option<usize> {
    let affinity = mpidr & 0xff_00ff_ffff;
    let aff0 = affinity & 0xff;
    let aff1 = (affinity >> 8) & 0xff;
    if aff0 > 0xf || affinity >> 16 != 0 {
        return None;
    }
    table.domain(domain)?.vcpus.get((aff1 << 4 | aff0) as usize).copied()
}

/// Handles the PSCI call in `frame` (function id in x0) for vCPU `slot` of `domain`. Returns true
/// when the calling vCPU stops running (CPU_OFF, SYSTEM_OFF, SYSTEM_RESET).
pub fn handle(frame: &mut TrapFrame, table: &mut Table, domain: DomainId, slot: usize) -> bool {
    let function = frame.x[0] as u32;
    let (result, switch) = match function {
        VERSION => (PSCI_1_1, false),
        SMCCC_VERSION => (0x1_0001, false), // SMCCC 1.1
        // A standby request: the vCPU gives up its pCPU (no interrupts to wait for yet).
        CPU_SUSPEND_32 | CPU_SUSPEND_64 => {
            crate::sched::yield_now(slot);
            (SUCCESS, true)
        }
        MIGRATE_INFO_TYPE => (2, false), // no migration needed (Trusted OS absent)
        FEATURES => {
            let supported = [
                SMCCC_VERSION,
                CPU_SUSPEND_32,
                CPU_SUSPEND_64,
                VERSION,
                CPU_OFF,
                CPU_ON_32,
                CPU_ON_64,
                AFFINITY_INFO_32,
                AFFINITY_INFO_64,
                MIGRATE_INFO_TYPE,
                SYSTEM_OFF,
                SYSTEM_RESET,
                FEATURES,
            ];
            (if supported.contains(&(frame.x[1] as u32)) { SUCCESS } else { NOT_SUPPORTED }, false)
        }
        CPU_ON_32 | CPU_ON_64 | PSCI_0_1_CPU_ON => {
            (cpu_on(table, domain, frame.x[1], frame.x[2], frame.x[3]), false)
        }
        AFFINITY_INFO_32 | AFFINITY_INFO_64 => {
            match target(table, domain, frame.x[1]).and_then(|slot| table.vcpu(slot)) {
                Some(vcpu) if vcpu.state == VcpuState::Down => (1, false),
                Some(_) => (0, false),
                None => (INVALID_PARAMETERS, false),
            }
        }
        CPU_OFF | PSCI_0_1_CPU_OFF => {
            if let Some(vcpu) = table.vcpu_mut(slot) {
                vcpu.state = VcpuState::Down;
            }
            crate::sched::sleep(slot);
            (SUCCESS, true)
        }
        SYSTEM_OFF | SYSTEM_RESET => {
            let reason = if function == SYSTEM_OFF { SHUTDOWN_poweroff } else { SHUTDOWN_reboot };
            crate::lifecycle::shutdown_domain(table, domain, reason);
            (SUCCESS, true)
        }
        _ => (NOT_SUPPORTED, false),
    };
    frame.x[0] = result as u64;
    switch
}

fn cpu_on(table: &mut Table, domain: DomainId, mpidr: u64, entry: u64, context: u64) -> i64 {
    let Some(slot) = target(table, domain, mpidr) else { return INVALID_PARAMETERS };
    let Some(vcpu) = table.vcpu_mut(slot) else { return INVALID_PARAMETERS };
    if vcpu.state != VcpuState::Down {
        return ALREADY_ON;
    }
    if !entry.is_multiple_of(4) {
        return INVALID_PARAMETERS;
    }
    vcpu.context = VcpuContext::new(entry, context, vcpu.index);
    vcpu.context.frame.spsr = SPSR_EL1H_MASKED;
    vcpu.state = VcpuState::Runnable;
    vcpu.initialised = true;
    crate::sched::wake(slot);
    SUCCESS
}
