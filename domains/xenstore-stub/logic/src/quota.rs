//! Per-domain limits, with Xen's defaults and Xen's errors.
//!
//! Exists so that one unprivileged domain cannot exhaust the store for all: each limit is Xen's
//! (`tools/xenstore/xenstored_core.c`, the `quota_*` globals; names as `xenstore-control quota`
//! shows them, `tools/xenstore/xenstored_control.c` `hard_quotas[]`). Privileged connections are
//! exempt where Xen exempts them; two limits (`outstanding` and `watch-events`) bound memory and
//! therefore apply to every connection.
//!
//! # Invariants
//! - Count limits are inclusive maxima: a domain may hold `nodes` nodes, `watches` watches,
//!   `transactions` open transactions; the request that would exceed one fails.
//! - Every value can be changed at run time with `CONTROL quota set <name> <value>` (value >= 1).

/// The limits, all per domain (or per connection, which is the same here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// `nodes` (`quota_nb_entry_per_domain`, 1000): nodes a domain may own; creating one more
    /// fails with `ENOSPC` (`create_node()`; at commit, `transaction_fix_domains()`).
    pub nodes: u32,
    /// `node-size` (`quota_max_entry_size`, 2048): a node's stored size (24-byte header, 8 bytes
    /// per permission, value, children names) must stay below this, else `ENOSPC`
    /// (`write_node_raw()`).
    pub node_size: u32,
    /// `watches` (`quota_nb_watch_per_domain`, 128): watches per connection; one more fails with
    /// `E2BIG` (`do_watch()`).
    pub watches: u32,
    /// `transactions` (`quota_max_transaction`, 10): open transactions per connection; one more
    /// fails with `ENOSPC` (`do_transaction_start()`).
    pub transactions: u32,
    /// `outstanding` (`quota_req_outstanding`, 20): replies queued but not yet taken by the
    /// binary; at this many the connection's input is no longer consumed (back-pressure,
    /// `domain_can_read()`), nothing fails.
    pub outstanding: u32,
    /// `transaction-nodes` (`quota_trans_nodes`, 1024): distinct nodes one transaction may touch;
    /// one more fails with `ENOSPC` and dooms the transaction (`access_node()`).
    pub transaction_nodes: u32,
    /// `path-max` (`quota_max_path_len`, `XENSTORE_REL_PATH_MAX` = 2048): longest path below
    /// `/local/domain/<domid>/` (or in total elsewhere); longer paths are invalid: `EINVAL`
    /// (`is_valid_nodename()`). Applies to privileged connections too, as in Xen.
    pub path_max: u32,
    /// `permissions` (`quota_nb_perms_per_node`, 5): entries `SET_PERMS` may give a node;
    /// more fail with `ENOSPC` (`do_set_perms()`).
    pub permissions: u32,
    /// `watch-events` (Xenolith's; Xen drops events past its memory quota and after a 20 s
    /// timeout instead, `send_event()`): watch events queued for a connection that is not
    /// reading; further events to it are dropped (the watch may fire spuriously later, as
    /// `docs/misc/xenstore.txt` allows, but a lost event is not re-sent).
    pub watch_events: u32,
}

impl Default for Quotas {
    /// Xen 4.17's defaults (`tools/xenstore/xenstored_core.c`), plus 1024 queued watch events.
    fn default() -> Self {
        Self {
            nodes: 1000,
            node_size: 2048,
            watches: 128,
            transactions: 10,
            outstanding: 20,
            transaction_nodes: 1024,
            path_max: xenolith_abi::xen::xs_wire::XENSTORE_REL_PATH_MAX as u32,
            permissions: 5,
            watch_events: 1024,
        }
    }
}

/// One quota's name (as `CONTROL quota` shows and sets it), description and field.
pub(crate) struct QuotaItem {
    /// Xen's name.
    pub name: &'static str,
    /// Xen's description.
    pub description: &'static str,
    /// Reads the value.
    pub get: fn(&Quotas) -> u32,
    /// Writes the value.
    pub set: fn(&mut Quotas, u32),
}

/// The quotas in Xen's `hard_quotas[]` order (without `memory`, which Xenolith does not account),
/// then Xenolith's own.
pub(crate) const ITEMS: [QuotaItem; 9] = [
    QuotaItem {
        name: "nodes",
        description: "Nodes per domain",
        get: |q| q.nodes,
        set: |q, v| q.nodes = v,
    },
    QuotaItem {
        name: "watches",
        description: "Watches per domain",
        get: |q| q.watches,
        set: |q, v| q.watches = v,
    },
    QuotaItem {
        name: "transactions",
        description: "Transactions per domain",
        get: |q| q.transactions,
        set: |q, v| q.transactions = v,
    },
    QuotaItem {
        name: "outstanding",
        description: "Outstanding requests per domain",
        get: |q| q.outstanding,
        set: |q, v| q.outstanding = v,
    },
    QuotaItem {
        name: "transaction-nodes",
        description: "Max. number of accessed nodes per transaction",
        get: |q| q.transaction_nodes,
        set: |q, v| q.transaction_nodes = v,
    },
    QuotaItem {
        name: "node-size",
        description: "Max. size of a node",
        get: |q| q.node_size,
        set: |q, v| q.node_size = v,
    },
    QuotaItem {
        name: "path-max",
        description: "Max. length of a node path",
        get: |q| q.path_max,
        set: |q, v| q.path_max = v,
    },
    QuotaItem {
        name: "permissions",
        description: "Max. number of permissions per node",
        get: |q| q.permissions,
        set: |q, v| q.permissions = v,
    },
    QuotaItem {
        name: "watch-events",
        description: "Max. number of queued watch events per domain",
        get: |q| q.watch_events,
        set: |q, v| q.watch_events = v,
    },
];

/// A `u32` quota as a `usize` bound.
pub(crate) fn limit(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}
