//! Restarting a domain from its boot-manifest entry, and building the boot domains.

use xenolith_abi::bundle::RestartPolicy;
use xenolith_kernel::mm::frame::FRAME_SIZE;
use xenolith_kernel::policy::{Capabilities, DomainId};

use super::{BuildSpec, MAX_RESTARTS};
use crate::domain::{boot_bundle, DomainState, Extent, Table, TABLE};
use crate::mm::memory;

/// The capabilities a manifest entry grants, with domain names resolved to the ids the boot
/// domains get (their manifest order). Names of domains not built at boot are dropped with a
/// warning: their ids are not known yet.
fn resolve_capabilities(
    manifest: &xenolith_abi::bundle::BootManifest<'_>,
    spec: &xenolith_abi::bundle::DomainSpec<'_>,
) -> Capabilities {
    use xenolith_abi::bundle::Capability;
    let boot_id = |name: &str| {
        manifest
            .domains
            .iter()
            .filter(|domain| domain.boot)
            .position(|domain| domain.name == name)
            .and_then(|index| DomainId::try_from(index).ok())
    };
    let mut capabilities = Capabilities::default();
    let add = |list: &mut [Option<DomainId>; xenolith_kernel::policy::MAX_TARGETS],
               target: &str| {
        match (boot_id(target), list.iter_mut().find(|slot| slot.is_none())) {
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

/// The id the manifest's xenstore domain gets at boot (its place among the boot domains).
fn boot_xenstore(manifest: &xenolith_abi::bundle::BootManifest<'_>) -> Option<DomainId> {
    manifest
        .domains
        .iter()
        .filter(|domain| domain.boot)
        .position(|domain| {
            domain.capabilities.contains(&xenolith_abi::bundle::Capability::Xenstore)
        })
        .and_then(|index| DomainId::try_from(index).ok())
}

/// Rebuilds domain `id` after it stopped, if its restart policy asks for it (`reason` is its
/// Xen `SHUTDOWN_*` reason): from its pristine image in the boot bundle, with the same id, a new
/// generation and its preserved region as it was. The old incarnation is destroyed here; the
/// caller has made sure no pCPU runs it. Returns whether it was rebuilt.
pub fn destroy_or_restart(table: &mut Table, id: DomainId) -> bool {
    use xenolith_abi::xen::sched::SHUTDOWN_crash;
    let Some(domain) = table.domain_mut(id) else { return false };
    let reason = match domain.state {
        DomainState::Shutdown { reason } => reason,
        _ => SHUTDOWN_crash,
    };
    let wanted = !domain.destroy_requested
        && match domain.restart {
            RestartPolicy::Never => false,
            RestartPolicy::OnCrash => reason == SHUTDOWN_crash,
            RestartPolicy::Always => true,
        };
    let bundle = boot_bundle();
    let spec = domain
        .manifest_index
        .and_then(|index| Some((bundle?, bundle?.manifest.domains.get(index)?)));
    let (Some((bundle, spec)), true) = (spec, wanted) else {
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
    let preserved = domain.preserved.take();
    let capabilities = domain.capabilities;
    let manifest_index = domain.manifest_index;
    table.destroy(id);
    let Some(first) = BuildSpec::from_manifest(bundle, spec, capabilities, manifest_index) else {
        log::error!("domain {id}: its prepared image is gone from the boot bundle; not restarted");
        drop_region(preserved);
        return false;
    };
    let build = BuildSpec { id: Some(id), preserved, restarts, ..first };
    if let Err(error) = table.build(&build) {
        log::error!("domain {id} ({}): not restarted: {error}", spec.name);
        drop_region(preserved);
        return false;
    }
    table.connect_store(id, None);
    if let Err(error) = start_from_manifest(table, id, spec) {
        log::error!("domain {id} ({}): not restarted: {error}", spec.name);
        if let Some(domain) = table.domain_mut(id) {
            domain.restart = RestartPolicy::Never;
        }
        table.destroy(id);
        return false;
    }
    let generation = table.domain(id).map_or(0, |domain| domain.generation);
    log::info!(
        "domain {id} ({}) restarted: generation {generation}, restart {restarts}{}",
        spec.name,
        if preserved.is_some() { ", preserved region kept" } else { "" }
    );
    true
}

/// Hands domain `id`, built from manifest entry `spec`, to the scheduler with the entry's weight,
/// cap and affinities.
fn start_from_manifest(
    table: &mut Table,
    id: DomainId,
    spec: &xenolith_abi::bundle::DomainSpec<'_>,
) -> Result<(), &'static str> {
    let params =
        crate::sched::params_for(spec.weight, spec.cap, spec.hard_affinity, spec.soft_affinity, id);
    crate::sched::start_domain(table, id, params)
}

/// Frees a preserved region no incarnation will use.
fn drop_region(region: Option<Extent>) {
    if let Some(extent) = region {
        memory::release(extent.phys, (extent.size / FRAME_SIZE) as usize);
    }
}

/// Builds and starts every domain the manifest marks `boot = true`, in manifest order. A domain
/// that cannot be built is reported and skipped; the others still start. Runs with interrupts masked (the caller's duty: the timer interrupt takes the same locks).
pub fn build_boot_domains(bundle: &xenolith_abi::bundle::Bundle<'_>) {
    let manifest = &bundle.manifest;
    for spec in manifest.domains.iter().filter(|spec| spec.boot) {
        let index = manifest.domains.iter().position(|other| other.name == spec.name);
        let capabilities = resolve_capabilities(manifest, spec);
        let Some(build) = BuildSpec::from_manifest(bundle, spec, capabilities, index) else {
            log::error!("domain {}: its prepared image is not in the bundle; not built", spec.name);
            continue;
        };
        let mut table = TABLE.lock();
        let free_before = memory::frame_counts().1;
        let id = match table.build(&build) {
            Ok(id) => id,
            Err(error) => {
                log::error!("domain {}: not built: {error}", spec.name);
                continue;
            }
        };
        table.connect_store(id, boot_xenstore(manifest));
        if let Err(error) = start_from_manifest(&mut table, id, spec) {
            log::error!("domain {id} ({}): not started: {error}", spec.name);
            table.destroy(id);
            continue;
        }
        let entry = table
            .vcpu(table.domain(id).map_or(0, |domain| domain.vcpus[0]))
            .map_or(0, |vcpu| vcpu.context.frame.elr);
        let generation = table.domain(id).map_or(0, |domain| domain.generation);
        log::info!(
            "domain {id} ({}) built: generation {generation}, {} MiB, {} vCPU(s), entry {entry:#x}, weight {}, cap {}; {free_before} frames were free before",
            spec.name,
            spec.memory_mib,
            spec.vcpus,
            spec.weight,
            spec.cap
        );
    }
}
