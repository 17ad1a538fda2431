//! What xl does with a domain of its own that has shut down (`handle_domain_death` and
//! `preserve_domain` in Xen 4.17's `tools/xl/xl_vmcontrol.c`): the configuration's action for
//! the reason, coredumps reduced to their destroy or restart.
//!
//! Xen's hypervisor leaves a shut-down domain for the toolstack, and so does Xenolith's core for
//! a domain the control domain created; the control domain applies [`after_shutdown`] whenever
//! `VIRQ_DOM_EXC` says something changed, when a new incarnation of it starts, and while an xl
//! command waits.

use xenolith_abi::xen::sched;
use xenolith_xlcfg::{Action, DomainConfig};

/// What becomes of a domain that shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterShutdown {
    /// Left as it is: suspended (xl logs "Domain has suspended."), or `preserve`.
    Keep,
    /// Destroyed (`destroy`, `coredump-destroy`: Xenolith writes no core dumps).
    Destroy,
    /// Destroyed and created again from the same configuration (`restart`,
    /// `coredump-restart`, and `soft-reset`, which Xenolith does not offer otherwise).
    Restart,
    /// Kept under a new name (`preserve_domain`), and created again from the same
    /// configuration (`rename-restart`).
    RenameRestart,
}

/// The action for a domain of `config` that shut down with `SHUTDOWN_*` `reason`. xl.cfg's
/// `on_watchdog` and `on_soft_reset` are not read: their defaults stand (`destroy`,
/// `soft-reset`); an unknown reason destroys, as xl does.
pub fn after_shutdown(config: &DomainConfig, reason: u32) -> AfterShutdown {
    let action = match reason {
        sched::SHUTDOWN_poweroff => config.on_poweroff,
        sched::SHUTDOWN_reboot => config.on_reboot,
        sched::SHUTDOWN_suspend => return AfterShutdown::Keep,
        sched::SHUTDOWN_crash => config.on_crash,
        sched::SHUTDOWN_watchdog => Action::Destroy,
        sched::SHUTDOWN_soft_reset => Action::SoftReset,
        _ => Action::Destroy,
    };
    match action {
        Action::Preserve => AfterShutdown::Keep,
        Action::Destroy | Action::CoredumpDestroy => AfterShutdown::Destroy,
        Action::Restart | Action::CoredumpRestart | Action::SoftReset => AfterShutdown::Restart,
        Action::RenameRestart => AfterShutdown::RenameRestart,
    }
}

/// The name a `rename-restart` keeps the old domain under: `<name>-d<id>` (xl appends the UTC
/// time, `-%Y%m%dT%H%MZ`; the control domain has no calendar, and the id keeps the name unique).
pub fn preserved_name(name: &str, id: u16) -> alloc::string::String {
    alloc::format!("{name}-d{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use xenolith_abi::xen::sched::{
        SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_soft_reset, SHUTDOWN_suspend,
        SHUTDOWN_watchdog,
    };

    fn config(on_poweroff: Action, on_reboot: Action, on_crash: Action) -> DomainConfig {
        let text = "name = \"g\"\nmemory = 16\nkernel = \"k\"\n";
        let mut config = xenolith_xlcfg::parse_domain(text).expect("parses").config;
        (config.on_poweroff, config.on_reboot, config.on_crash) =
            (on_poweroff, on_reboot, on_crash);
        config
    }

    #[test]
    fn each_reason_takes_its_own_action() {
        use Action::*;
        let c = config(Preserve, Restart, RenameRestart);
        assert_eq!(after_shutdown(&c, SHUTDOWN_poweroff), AfterShutdown::Keep);
        assert_eq!(after_shutdown(&c, SHUTDOWN_reboot), AfterShutdown::Restart);
        assert_eq!(after_shutdown(&c, SHUTDOWN_crash), AfterShutdown::RenameRestart);
        assert_eq!(after_shutdown(&c, SHUTDOWN_suspend), AfterShutdown::Keep);
        assert_eq!(after_shutdown(&c, SHUTDOWN_watchdog), AfterShutdown::Destroy);
        assert_eq!(after_shutdown(&c, SHUTDOWN_soft_reset), AfterShutdown::Restart);
        assert_eq!(after_shutdown(&c, 99), AfterShutdown::Destroy);
        let c = config(CoredumpDestroy, CoredumpRestart, Destroy);
        assert_eq!(after_shutdown(&c, SHUTDOWN_poweroff), AfterShutdown::Destroy);
        assert_eq!(after_shutdown(&c, SHUTDOWN_reboot), AfterShutdown::Restart);
        assert_eq!(after_shutdown(&c, SHUTDOWN_crash), AfterShutdown::Destroy);
    }

    #[test]
    fn the_defaults_are_xls() {
        // xl.cfg(5): destroy on poweroff and crash, restart on reboot.
        let c = xenolith_xlcfg::parse_domain("name = \"g\"\nmemory = 16\nkernel = \"k\"\n")
            .expect("parses")
            .config;
        assert_eq!(after_shutdown(&c, SHUTDOWN_poweroff), AfterShutdown::Destroy);
        assert_eq!(after_shutdown(&c, SHUTDOWN_reboot), AfterShutdown::Restart);
        assert_eq!(after_shutdown(&c, SHUTDOWN_crash), AfterShutdown::Destroy);
        assert_eq!(preserved_name("web", 7), "web-d7");
    }
}
