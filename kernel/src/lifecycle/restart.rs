//! Restarting a domain from its boot-manifest entry, and building the boot domains.

use alloc::vec::Vec;

use xenolith_abi::bundle::{BootManifest, Bundle, Capability, DomainSpec, ShutdownAction};
use xenolith_abi::xen::sched::SHUTDOWN_crash;
use xenolith_kernel::mm::frame::FRAME_SIZE;
use xenolith_kernel::policy::{Capabilities, DomainId, MAX_TARGETS};

use super::{BuildError, BuildSpec, Servers, MAX_RESTARTS};
use crate::domain::{boot_bundle, DomainState, Table, TABLE};
use crate::mm::memory;

/// The id the first boot domain of `manifest` that `matches` gets at boot: its place among the
/// boot domains, which are built in manifest order.
fn boot_id(
    manifest: &BootManifest<'_>,
    matches: impl Fn(&DomainSpec<'_>) -> bool,
) -> Option<DomainId> {
    let index = manifest.domains.iter().filter(|domain| domain.boot).position(matches)?;
    DomainId::try_from(index).ok()
}

/// The capabilities a manifest entry grants, with domain names resolved to the ids the boot
/// domains get (their manifest order). Names of domains not built at boot are dropped with a
/// warning: their ids are not known yet.
fn resolve_capabilities(manifest: &BootManifest<'_>, spec: &DomainSpec<'_>) -> Capabilities {
    let mut capabilities = Capabilities::default();
    let add = |list: &mut [Option<DomainId>; MAX_TARGETS], target: &str| {
        let id = boot_id(manifest, |domain| domain.name == target);
        match (id, list.iter_mut().find(|slot| slot.is_none())) {
            (Some(id), Some(slot)) => *slot = Some(id),
            _ => log::warn!(
                "domain {}: capability target {target:?} not resolved at boot; ignored",
                spec.name
            ),
        }
    };
    for capability in &spec.capabilities {
        match capability {
            Capability::Control => capabilities.control = true,
            Capability::Xenstore => capabilities.xenstore = true,
            Capability::Console => capabilities.console = true,
            Capability::DeviceModel { target } => add(&mut capabilities.device_model_of, target),
            Capability::Introspect { target } => add(&mut capabilities.introspect, target),
            // What it is given is the manifest's `passthrough`, mapped when it is built.
            Capability::Hardware { .. } => {}
        }
    }
    capabilities
}

/// Whether domain `id`, shut down and run by no pCPU, is to be rebuilt: its shutdown action for
/// why it stopped (its Xen `SHUTDOWN_*` reason; a crash if it never shut down) says so, it was
/// not destroyed on request, it has an entry in the boot manifest and fewer than
/// [`MAX_RESTARTS`] restarts. If so, marks it `restarting` and returns that entry's index.
pub fn mark_for_restart(table: &mut Table, id: DomainId) -> Option<usize> {
    let domain = table.domain_mut(id)?;
    let reason = match domain.state {
        DomainState::Shutdown { reason } => reason,
        _ => SHUTDOWN_crash,
    };
    let wanted = !domain.destroy_requested
        && domain.on_shutdown.for_reason(reason) == ShutdownAction::Restart;
    let entries = boot_bundle().map_or(0, |bundle| bundle.manifest.domains.len());
    let index = domain.manifest_index.filter(|&index| wanted && index < entries)?;
    if domain.restarts >= MAX_RESTARTS {
        log::error!("domain {id}: restarted {MAX_RESTARTS} times already; not restarted again");
        return None;
    }
    domain.restarting = true;
    Some(index)
}

/// Rebuilds domain `id`, which [`reap`](super::reap) marked `restarting`, from entry
/// `manifest_index` of the boot manifest, with the same id, a new generation and its preserved
/// region as it was. Its new RAM is loaded first, with the domain table unlocked; then, locked,
/// the old incarnation is destroyed and the new one built on that RAM (unless it was destroyed
/// on request meanwhile).
pub fn restart(id: DomainId, manifest_index: usize) {
    let Some(bundle) = boot_bundle() else { return };
    let Some(entry) = bundle.manifest.domains.get(manifest_index) else { return };
    let ram = super::load_ram(bundle, entry);
    let mut table = TABLE.lock();
    // Only this function removes a `restarting` domain (`reap` passes it by).
    let Some(domain) = table.domain_mut(id) else { return };
    let requested = domain.destroy_requested;
    // The preserved region leaves with the record (so destroy does not free it) if rebuilt.
    let spec = BuildSpec {
        entry,
        manifest_index,
        capabilities: domain.capabilities,
        id: Some(id),
        preserved: domain.preserved.take_if(|_| ram.is_ok() && !requested),
        restarts: domain.restarts + 1,
    };
    table.destroy(id);
    // As if with no incarnation: the old one's frames back, the new one's RAM not yet taken.
    let free = memory::frame_counts().1 + ram.as_ref().map_or(0, |ram| ram.size / FRAME_SIZE);
    let built = match ram {
        Ok(ram) if requested => {
            memory::release(ram.phys, (ram.size / FRAME_SIZE) as usize);
            Err(BuildError::Invalid("it was destroyed on request"))
        }
        ram => ram.and_then(|ram| table.build(&spec, ram, Servers::default())),
    }
    .and_then(|id| table.start(id, entry));
    crate::event::domain_exception(&mut table);
    if let Err(error) = built {
        log::error!("domain {id} ({}): not restarted: {error}", entry.name);
        return;
    }
    let generation = table.domain(id).map_or(0, |domain| domain.generation);
    log::info!(
        "domain {id} ({}) restarted: generation {generation}, restart {}{}; {free} frames \
         were free before",
        entry.name,
        spec.restarts,
        if spec.preserved.is_some() { ", preserved region kept" } else { "" }
    );
}

/// Builds every domain the manifest marks `boot = true`, in manifest order, then starts them
/// all: none runs before every other exists, as Xen's `start_xen` unpauses its boot domains
/// only once all are built (`xen/arch/arm/setup.c`, 4.17). A domain that cannot be built is
/// reported and skipped; the others still start. Runs with interrupts masked (the caller's
/// duty: the timer interrupt takes the same locks).
pub fn build_boot_domains(bundle: &Bundle<'_>) {
    let manifest = &bundle.manifest;
    let servers = Servers {
        xenstore: boot_id(manifest, |domain| domain.capabilities.contains(&Capability::Xenstore)),
        console: boot_id(manifest, |domain| domain.capabilities.contains(&Capability::Console)),
    };
    let mut built = Vec::new();
    for (manifest_index, entry) in manifest.domains.iter().enumerate() {
        if !entry.boot {
            continue;
        }
        let spec = BuildSpec {
            entry,
            manifest_index,
            capabilities: resolve_capabilities(manifest, entry),
            id: None,
            preserved: None,
            restarts: 0,
        };
        let free_before = memory::frame_counts().1;
        let ram = super::load_ram(bundle, entry);
        let mut table = TABLE.lock();
        let id = match ram.and_then(|ram| table.build(&spec, ram, servers)) {
            Ok(id) => id,
            Err(error) => {
                log::error!("domain {}: not built: {error}", entry.name);
                continue;
            }
        };
        let generation = table.domain(id).map_or(0, |domain| domain.generation);
        log::info!(
            "domain {id} ({}) built: generation {generation}, {} MiB, {} vCPU(s), entry {:#x}, weight {}, cap {}; {free_before} frames were free before",
            entry.name,
            entry.memory_mib,
            entry.vcpus,
            entry.prepared.as_ref().map_or(0, |image| image.entry),
            entry.weight,
            entry.cap
        );
        built.push((id, entry));
    }
    let mut table = TABLE.lock();
    for (id, entry) in built {
        if let Err(error) = table.start(id, entry) {
            log::error!("domain {id} ({}): not started: {error}", entry.name);
        }
    }
}
