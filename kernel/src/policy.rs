//! The one place that decides every privileged operation, from the caller's capabilities.
//!
//! Default deny. A domain's capabilities come from its manifest entry; a domain created at run
//! time (`XEN_DOMCTL_createdomain`) holds none. The model is Xen's XSM/FLASK hooks, reduced to a
//! table one can audit in an afternoon:
//!
//! | operation | allowed when the caller holds |
//! |---|---|
//! | domctl on a domain that is not a control domain | `control` |
//! | read-only domctl (getdomaininfo) on any domain | `control` |
//! | domctl that changes a control domain | nothing: denied |
//! | sysctl | `control` |
//! | console read (`CONSOLEIO_read`) | `console` |
//! | dm_op on T | `dm:T` |
//! | foreign mapping of T's memory | `control` (T not a control domain), `dm:T`, or `introspect:T` |
//! | xenstore administration (introduce, release) | `xenstore` or `control` |
//! | domain information (getdomaininfo, itself included; Xenolith's domain info on another domain) | `control`, `xenstore`, or being its device model (Xen's `XSM_XS_PRIV`) |
//! | remote shutdown of T (`SCHEDOP_remote_shutdown`) | `control` (T not a control domain), or `dm:T` (Xen's `XSM_DM_PRIV`) |
//!
//! # Invariants
//! - [`check`] has no side effects and no default other than [`Denied`].
//! - Rights name domain ids, not incarnations: a restarted domain keeps its id, its capabilities
//!   and the rights others hold over it. What must not outlive an incarnation (grant mappings)
//!   carries its generation where it is kept.

use core::fmt;

/// A domain's id as Xen numbers them (`domid_t`).
pub type DomainId = u16;

/// Most targets one capability kind can name.
pub const MAX_TARGETS: usize = 4;

/// What a domain may do beyond its own business.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// domctl and sysctl over non-control domains (dom0's role).
    pub control: bool,
    /// The xenstore domain.
    pub xenstore: bool,
    /// Reads the hypervisor console.
    pub console: bool,
    /// Device model for these domains (dm_op and their memory only).
    pub device_model_of: [Option<DomainId>; MAX_TARGETS],
    /// Introspection of these domains.
    pub introspect: [Option<DomainId>; MAX_TARGETS],
}

impl Capabilities {
    fn names(list: &[Option<DomainId>; MAX_TARGETS], target: DomainId) -> bool {
        list.iter().flatten().any(|&id| id == target)
    }
}

/// A privileged operation, with what the policy needs to know about its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A domctl. `read_only`: it only reports (getdomaininfo and friends).
    Domctl { target: DomainId, target_is_control: bool, read_only: bool },
    /// Any sysctl.
    Sysctl,
    /// `CONSOLEIO_read`.
    ConsoleRead,
    /// A dm_op on `target`.
    DeviceModel { target: DomainId },
    /// Mapping `target`'s memory into the caller.
    ForeignMap { target: DomainId, target_is_control: bool },
    /// Introducing or releasing domains to xenstore.
    XenstoreAdmin,
    /// Reading another domain's record (`XEN_DOMCTL_getdomaininfo`,
    /// `XENOLITH_DOMCTL_DOMAIN_INFO`); a domain may always read its own.
    DomainInfo { target: DomainId },
    /// Shutting `target` down from outside (`SCHEDOP_remote_shutdown`).
    RemoteShutdown { target: DomainId, target_is_control: bool },
    /// An event-channel or grant-table operation on `target`'s behalf (Xen's `XSM_TARGET`
    /// default: the control domain, or a device model of the target).
    Target { target: DomainId },
}

/// The operation is not allowed: Xen's `-EPERM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denied {
    /// What was asked.
    pub operation: Operation,
    /// Who asked.
    pub caller: DomainId,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domain {} may not {:?}", self.caller, self.operation)
    }
}

/// Decides `operation` for `caller` holding `capabilities`.
pub fn check(
    caller: DomainId,
    capabilities: &Capabilities,
    operation: Operation,
) -> Result<(), Denied> {
    let allowed = match operation {
        Operation::Domctl { target_is_control, read_only, .. } => {
            capabilities.control && (read_only || !target_is_control)
        }
        Operation::Sysctl => capabilities.control,
        Operation::ConsoleRead => capabilities.console,
        Operation::DeviceModel { target } => {
            Capabilities::names(&capabilities.device_model_of, target)
        }
        Operation::ForeignMap { target, target_is_control } => {
            (capabilities.control && !target_is_control)
                || Capabilities::names(&capabilities.device_model_of, target)
                || Capabilities::names(&capabilities.introspect, target)
        }
        Operation::XenstoreAdmin => capabilities.xenstore || capabilities.control,
        // Xen's `XSM_XS_PRIV`: the xenstore domain, the target's device model or control; not
        // a domain asking about itself. The console domain too (xenconsoled runs in dom0).
        Operation::DomainInfo { target } => {
            capabilities.xenstore
                || capabilities.control
                || capabilities.console
                || Capabilities::names(&capabilities.device_model_of, target)
        }
        Operation::RemoteShutdown { target, target_is_control } => {
            (capabilities.control && !target_is_control)
                || Capabilities::names(&capabilities.device_model_of, target)
        }
        Operation::Target { target } => {
            capabilities.control || Capabilities::names(&capabilities.device_model_of, target)
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(Denied { operation, caller })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Capabilities = Capabilities {
        control: false,
        xenstore: false,
        console: false,
        device_model_of: [None; MAX_TARGETS],
        introspect: [None; MAX_TARGETS],
    };

    fn all_operations() -> Vec<Operation> {
        let mut ops = vec![Operation::Sysctl, Operation::ConsoleRead, Operation::XenstoreAdmin];
        for target in [0, 1, 7] {
            for target_is_control in [false, true] {
                for read_only in [false, true] {
                    ops.push(Operation::Domctl { target, target_is_control, read_only });
                }
                ops.push(Operation::ForeignMap { target, target_is_control });
                ops.push(Operation::RemoteShutdown { target, target_is_control });
            }
            ops.push(Operation::DomainInfo { target });
            ops.push(Operation::DeviceModel { target });
        }
        ops
    }

    #[test]
    fn no_capabilities_deny_everything() {
        for operation in all_operations() {
            assert_eq!(check(3, &NONE, operation), Err(Denied { operation, caller: 3 }));
        }
    }

    #[test]
    fn control_rules() {
        let control = Capabilities { control: true, ..NONE };
        let on = |target_is_control, read_only| Operation::Domctl {
            target: 1,
            target_is_control,
            read_only,
        };
        assert!(check(0, &control, on(false, false)).is_ok());
        assert!(check(0, &control, on(true, true)).is_ok());
        assert!(
            check(0, &control, on(true, false)).is_err(),
            "control may not change a control domain"
        );
        assert!(check(0, &control, Operation::Sysctl).is_ok());
        assert!(check(0, &control, Operation::ConsoleRead).is_err());
        assert!(check(0, &control, Operation::ForeignMap { target: 1, target_is_control: false })
            .is_ok());
        assert!(check(0, &control, Operation::ForeignMap { target: 1, target_is_control: true })
            .is_err());
        assert!(check(0, &control, Operation::DeviceModel { target: 1 }).is_err());
    }

    #[test]
    fn device_model_is_confined_to_its_target() {
        let dm = Capabilities { device_model_of: [Some(5), None, None, None], ..NONE };
        assert!(check(2, &dm, Operation::DeviceModel { target: 5 }).is_ok());
        assert!(check(2, &dm, Operation::DeviceModel { target: 6 }).is_err());
        assert!(
            check(2, &dm, Operation::ForeignMap { target: 5, target_is_control: false }).is_ok()
        );
        assert!(
            check(2, &dm, Operation::ForeignMap { target: 6, target_is_control: false }).is_err()
        );
        assert!(check(
            2,
            &dm,
            Operation::Domctl { target: 5, target_is_control: false, read_only: true }
        )
        .is_err());
        assert!(check(2, &dm, Operation::Sysctl).is_err());
    }

    #[test]
    fn domain_info_and_remote_shutdown() {
        let xenstore = Capabilities { xenstore: true, ..NONE };
        let control = Capabilities { control: true, ..NONE };
        let dm = Capabilities { device_model_of: [Some(5), None, None, None], ..NONE };
        assert!(check(4, &NONE, Operation::DomainInfo { target: 4 }).is_err(), "itself");
        assert!(check(4, &xenstore, Operation::DomainInfo { target: 1 }).is_ok());
        assert!(check(4, &control, Operation::DomainInfo { target: 1 }).is_ok());
        assert!(check(4, &dm, Operation::DomainInfo { target: 5 }).is_ok(), "its device model");
        assert!(check(4, &dm, Operation::DomainInfo { target: 6 }).is_err());
        let shutdown =
            |target, target_is_control| Operation::RemoteShutdown { target, target_is_control };
        assert!(check(0, &control, shutdown(1, false)).is_ok());
        assert!(check(0, &control, shutdown(1, true)).is_err());
        assert!(check(2, &dm, shutdown(5, false)).is_ok());
        assert!(check(2, &dm, shutdown(6, false)).is_err());
        assert!(check(4, &xenstore, shutdown(1, false)).is_err());
    }
}
