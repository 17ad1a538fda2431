//! Restarting a domain from its boot-manifest entry, and building the boot domains.

use xenolith_abi::bundle::{BootManifest, Bundle, Capability, DomainSpec, ShutdownAction};
use xenolith_abi::xen::sched::SHUTDOWN_crash;
use xenolith_kernel::policy::{Capabilities, DomainId, MAX_TARGETS};

use super::{BuildSpec, Servers, MAX_RESTARTS};
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
            Capability::Hardware { device } => {
                log::warn!(
                    "domain {}: hardware:{device} passthrough is not implemented; ignored",
                    spec.name
                );
            }
        }
    }
    capabilities
}

/// Rebuilds domain `id` after it stopped, if its shutdown action for why it stopped says so
/// (its Xen `SHUTDOWN_*` reason; a crash if it never shut down): from its prepared image in the
/// boot bundle, with the same id, a new generation and its preserved region as it was. The old incarnation is destroyed here; the
/// caller has made sure no pCPU runs it. Returns whether it was rebuilt.
pub fn destroy_or_restart(table: &mut Table, id: DomainId) -> bool {
    let Some(domain) = table.domain_mut(id) else { return false };
    let reason = match domain.state {
        DomainState::Shutdown { reason } => reason,
        _ => SHUTDOWN_crash,
    };
    let wanted = !domain.destroy_requested
        && domain.on_shutdown.for_reason(reason) == ShutdownAction::Restart;
    let bundle = boot_bundle();
    let found = domain
        .manifest_index
        .and_then(|index| Some((bundle?, index, bundle?.manifest.domains.get(index)?)));
    let (Some((bundle, manifest_index, entry)), true) = (found, wanted) else {
        table.destroy(id);
        return false;
    };
    let restarts = domain.restarts + 1;
    if restarts > MAX_RESTARTS {
        log::error!("domain {id}: restarted {MAX_RESTARTS} times already; not restarted again");
        table.destroy(id);
        return false;
    }
    // The preserved region leaves with the record, so destroy does not free it.
    let spec = BuildSpec {
        entry,
        manifest_index,
        capabilities: domain.capabilities,
        id: Some(id),
        preserved: domain.preserved.take(),
        restarts,
    };
    table.destroy(id);
    let free_before = memory::frame_counts().1;
    if let Err(error) = table.build(bundle, &spec, Servers::default()) {
        log::error!("domain {id} ({}): not restarted: {error}", entry.name);
        return false;
    }
    let generation = table.domain(id).map_or(0, |domain| domain.generation);
    log::info!(
        "domain {id} ({}) restarted: generation {generation}, restart {restarts}{}; {free_before} \
         frames were free before",
        entry.name,
        if spec.preserved.is_some() { ", preserved region kept" } else { "" }
    );
    true
}

/// Builds and starts every domain the manifest marks `boot = true`, in manifest order. A domain
/// that cannot be built is reported and skipped; the others still start. Runs with interrupts
/// masked (the caller's duty: the timer interrupt takes the same locks).
pub fn build_boot_domains(bundle: &Bundle<'_>) {
    let manifest = &bundle.manifest;
    let servers = Servers {
        xenstore: boot_id(manifest, |domain| domain.capabilities.contains(&Capability::Xenstore)),
        console: boot_id(manifest, |domain| domain.capabilities.contains(&Capability::Console)),
    };
    for (manifest_index, entry) in manifest.domains.iter().enumerate() {
        if !entry.boot {
            continue;
        }
        let capabilities = resolve_capabilities(manifest, entry);
        let spec = BuildSpec {
            entry,
            manifest_index,
            capabilities,
            id: None,
            preserved: None,
            restarts: 0,
        };
        let mut table = TABLE.lock();
        let free_before = memory::frame_counts().1;
        let id = match table.build(bundle, &spec, servers) {
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
    }
}
