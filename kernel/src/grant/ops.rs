//! `__HYPERVISOR_grant_table_op` with the version-1 ABI: setting up and querying tables, host
//! mappings into the mapper's stage 2, and copies (`xen/common/grant_table.c`,
//! `xen/arch/arm/mm.c`), in the order the library's `grant` module gives.
//!
//! # Invariants
//! - Called with interrupts masked, holding the whole domain table, or ([`local_op`]: map, unmap
//!   and copy) the caller's domain and one other as one of its readers.
//! - One hypercall handles at most [`BATCH`] operations; the rest is a continuation (the HVC is
//!   re-executed with the arguments advanced, as Xen's `hypercall_create_continuation`).

use core::sync::atomic::Ordering;
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::grant_table::{self as gt, gnttab_copy, gnttab_map_grant_ref};
use xenolith_kernel::grant::Entries;
use xenolith_kernel::grant::{self, grant_handle_t, grant_ref_t, Mapping, Usage, MAX_GRANT_FRAMES};
use xenolith_kernel::mm::frame::FRAME_SIZE;
use xenolith_kernel::mm::lpae::Attributes;
use xenolith_kernel::policy::{DomainId, Operation};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::{forget_mapping, grow, unpin_grant, Domains, FrameEntries, Whole, UNREACHABLE};
use crate::domain::{Caller, Local};
use crate::mm::guest_access::{read_element, read_struct, write_element, GuestMemory};
use crate::mm::memory::{self, IdentityTables};

/// The command's bits of `cmd` (Xen's internal `GNTTABOP_CMD_MASK`).
const CMD_MASK: u64 = (1 << 12) - 1;

/// Operations one `grant_table_op` call handles before it continues itself.
pub const BATCH: u32 = 64;
/// `INVALID_GFN` as a `xen_pfn_t`, for table frames not mapped anywhere.
const INVALID_GFN: u64 = u64::MAX;

/// What a `grant_table_op` call did.
pub enum Done {
    /// Finished: the hypercall's result.
    Result(i64),
    /// Handled part of a batch: call again with these `(cmd, uop, count)`.
    Continue([u64; 3]),
    /// Nothing done: a reader could not reach what the first operation needs, so the whole
    /// table's holder runs the call ([`local_op`] only).
    Whole,
}

/// Whether [`local_op`] runs `grant_table_op(cmd, _, count)` (asked before any lock is taken).
#[inline(always)]
pub fn is_local_op(cmd: u64, count: u64) -> bool {
    let ops = [gt::GNTTABOP_map_grant_ref, gt::GNTTABOP_unmap_grant_ref, gt::GNTTABOP_copy];
    ops.map(u64::from).contains(&cmd) && i32::try_from(count as u32).is_ok()
}

/// `GNTTABOP_map_grant_ref`, `unmap_grant_ref` and `copy` ([`is_local_op`]) by one of the domain
/// table's readers, holding the caller's domain and the one other its operations name: a batch
/// that names another stops there and continues itself ([`Done::Whole`] if the first does).
#[inline(always)]
pub fn local_op(args: [u64; 5], local: &mut Local<'_>) -> Result<Done, XenError> {
    let ([cmd, uop], count) = ([args[0] as u32 as u64, args[1]], args[2] as u32);
    match cmd as u32 {
        gt::GNTTABOP_map_grant_ref => batch(local, [cmd, uop], count, map_one),
        gt::GNTTABOP_unmap_grant_ref => batch(local, [cmd, uop], count, unmap_one),
        _ => batch(local, [cmd, uop], count, copy_one),
    }
}

/// `__HYPERVISOR_grant_table_op(cmd, uop, count)`.
pub fn grant_table_op(args: [u64; 5], caller: &mut Caller<'_>) -> Result<Done, XenError> {
    // Xen takes `cmd` and `count` as unsigned ints, refuses a count that is a negative int, and
    // bits above the command's 12 (`GNTTABOP_CMD_MASK`, xen/common/grant_table.c: where
    // cache_flush keeps its continuation) for any other command.
    let (cmd, uop) = (u64::from(args[0] as u32), args[1]);
    let count = args[2] as u32;
    if i32::try_from(count).is_err()
        || (cmd & !CMD_MASK != 0 && cmd & CMD_MASK != u64::from(gt::GNTTABOP_cache_flush))
    {
        return Err(XenError::EINVAL);
    }
    let single = |caller: &mut Caller<'_>, f: fn(u64, &mut Caller<'_>) -> Result<i64, XenError>| {
        if count == 1 {
            f(uop, caller).map(Done::Result)
        } else {
            Err(XenError::EINVAL)
        }
    };
    let mut whole = Whole(caller.domain, &mut *caller.table);
    match u32::try_from(cmd).map_err(|_| XenError::ENOSYS)? {
        gt::GNTTABOP_map_grant_ref => batch(&mut whole, [cmd, uop], count, map_one),
        gt::GNTTABOP_unmap_grant_ref => batch(&mut whole, [cmd, uop], count, unmap_one),
        gt::GNTTABOP_copy => batch(&mut whole, [cmd, uop], count, copy_one),
        gt::GNTTABOP_setup_table => single(caller, setup_table),
        gt::GNTTABOP_query_size => single(caller, query_size),
        // Xen reads one of these whatever `count` says.
        gt::GNTTABOP_set_version => set_version(uop, caller).map(Done::Result),
        gt::GNTTABOP_get_version => get_version(uop, caller).map(Done::Result),
        gt::GNTTABOP_get_status_frames => single(caller, get_status_frames),
        gt::GNTTABOP_unmap_and_replace => batch(caller, [cmd, uop], count, unmap_and_replace),
        gt::GNTTABOP_swap_grant_ref => batch(caller, [cmd, uop], count, swap),
        gt::GNTTABOP_cache_flush => cache_flush(cmd, uop, count),
        // Page transfer needs Xen's PV support, which Arm builds lack.
        gt::GNTTABOP_transfer => Err(XenError::EOPNOTSUPP),
        _ => Err(XenError::ENOSYS),
    }
}

/// Version 1 has no status frames: asking for any is a general error, for none fine, after
/// Xen's domain and XSM checks (`gnttab_get_status_frames`).
fn get_status_frames(uop: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let op: gt::gnttab_get_status_frames = read_struct(uop)?;
    let id = caller.resolve(op.dom);
    let status = if caller.table.domain(id).is_none() {
        gt::GNTST_bad_domain
    } else if !may_act_for(caller, id) {
        gt::GNTST_permission_denied
    } else if op.nr_frames > 0 {
        gt::GNTST_general_error
    } else {
        gt::GNTST_okay
    };
    GuestMemory.write(uop + 6, &status.to_le_bytes())?;
    Ok(0)
}

/// `unmap_and_replace` as on Arm (`replace_grant_host_mapping`): an unmap, which only a zero
/// `new_addr` may replace (anything else is a general error, the mapping kept).
fn unmap_and_replace(caller: &mut Caller<'_>, op: &mut gt::gnttab_unmap_and_replace) -> bool {
    op.status = if op.new_addr != 0 {
        let domain = caller.table.domain_mut(caller.domain);
        match domain.map(|domain| domain.grants.maptrack.find(op.handle).map(|_| ())) {
            Some(Err(status)) => status,
            _ => gt::GNTST_general_error,
        }
    } else {
        let mut whole = Whole(caller.domain, &mut *caller.table);
        unmap(&mut whole, op.handle, op.host_addr).err().unwrap_or(gt::GNTST_okay)
    };
    true
}

/// `swap_grant_ref`: swaps two of the caller's own version-1 entries, neither pinned.
fn swap(caller: &mut Caller<'_>, op: &mut gt::gnttab_swap_grant_ref) -> bool {
    let Some(domain) = caller.table.domain_mut(caller.domain) else { return true };
    let entries = FrameEntries(&domain.grants.frames, caller.domain);
    let (Some(a), Some(b)) = (entries.words(op.ref_a), entries.words(op.ref_b)) else {
        op.status = gt::GNTST_bad_gntref;
        return true;
    };
    op.status = if op.ref_a == op.ref_b {
        gt::GNTST_okay
    } else if domain.grants.active.is_pinned(op.ref_a) || domain.grants.active.is_pinned(op.ref_b) {
        gt::GNTST_eagain
    } else {
        for (x, y) in [(a.0, b.0), (a.1, b.1)] {
            let value = x.load(core::sync::atomic::Ordering::Acquire);
            x.store(y.swap(value, core::sync::atomic::Ordering::AcqRel), Ordering::Release);
        }
        gt::GNTST_okay
    };
    true
}

/// `cache_flush`'s checks (`_cache_flush`): offset and length within a page and only the clean
/// and invalidate op bits (`-EINVAL`; Xen 4.17 refuses `GNTTAB_CACHE_SOURCE_GREF` there too),
/// nothing to do for an empty one. The address is a machine address, which no domain learns here (Xenolith returns no
/// `dev_bus_addr`): one inside RAM belongs to nobody the caller may name (`-EPERM`), one outside
/// is not a frame (`-EINVAL`). The core keeps guest RAM coherent without it.
fn cache_flush(cmd: u64, uop: u64, count: u32) -> Result<Done, XenError> {
    let now = count.min(BATCH);
    for index in 0..now {
        let op: gt::gnttab_cache_flush = read_element(uop, index)?;
        let (offset, length) = (u64::from(op.offset), u64::from(op.length));
        if offset >= FRAME_SIZE
            || length > FRAME_SIZE
            || offset + length > FRAME_SIZE
            || op.op & !(gt::GNTTAB_CACHE_INVAL | gt::GNTTAB_CACHE_CLEAN) != 0
        {
            return Err(XenError::EINVAL);
        }
        if length == 0 || op.op == 0 {
            continue;
        }
        return Err(if memory::is_ram(op.a) { XenError::EPERM } else { XenError::EINVAL });
    }
    let size = core::mem::size_of::<gt::gnttab_cache_flush>() as u64;
    Ok(if now < count {
        Done::Continue([cmd, uop + u64::from(now) * size, u64::from(count - now)])
    } else {
        Done::Result(0)
    })
}

/// Handles the first [`BATCH`] of the `count` operations `T` at `uop`: reads each, lets `each`
/// act and set its status, and writes it back. An operation `each` could not reach (`false`:
/// [`UNREACHABLE`]) ends the batch there, unwritten.
fn batch<V, T: FromBytes + IntoBytes + Immutable>(
    view: &mut V,
    [cmd, uop]: [u64; 2],
    count: u32,
    each: impl Fn(&mut V, &mut T) -> bool,
) -> Result<Done, XenError> {
    let now = count.min(BATCH);
    let size = core::mem::size_of::<T>() as u64;
    for index in 0..now {
        let mut op: T = read_element(uop, index)?;
        if !each(view, &mut op) {
            let rest = [cmd, uop + u64::from(index) * size, u64::from(count - index)];
            return Ok(if index == 0 { Done::Whole } else { Done::Continue(rest) });
        }
        write_element(uop, index, &op)?;
    }
    Ok(if now < count {
        Done::Continue([cmd, uop + u64::from(now) * size, u64::from(count - now)])
    } else {
        Done::Result(0)
    })
}

/// Xen's XSM check for table queries on another domain's behalf.
fn may_act_for(caller: &Caller<'_>, id: DomainId) -> bool {
    id == caller.domain || caller.allow(Operation::Target { target: id }).is_ok()
}

fn setup_table(uop: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let mut op: gt::gnttab_setup_table = read_struct(uop)?;
    let id = caller.resolve(op.dom);
    op.status = if op.nr_frames > MAX_GRANT_FRAMES {
        gt::GNTST_general_error
    } else if caller.table.domain(id).is_none() {
        gt::GNTST_bad_domain
    } else if !may_act_for(caller, id) {
        gt::GNTST_permission_denied
    } else {
        let domain = caller.table.domain_mut(id).ok_or(XenError::ESRCH)?;
        if grow(&mut domain.grants, op.nr_frames) {
            let mut status = gt::GNTST_okay;
            for (index, gfn) in (0..).zip(&domain.grants.gfns[..op.nr_frames as usize]) {
                let gfn = gfn.unwrap_or(INVALID_GFN);
                if write_element(op.frame_list.address(), index, &gfn).is_err() {
                    status = gt::GNTST_bad_virt_addr;
                }
            }
            status
        } else {
            gt::GNTST_general_error
        }
    };
    GuestMemory.write(uop + 8, &op.status.to_le_bytes())?;
    Ok(0)
}

fn query_size(uop: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let mut op: gt::gnttab_query_size = read_struct(uop)?;
    let id = caller.resolve(op.dom);
    op.status = match caller.table.domain(id) {
        None => gt::GNTST_bad_domain,
        Some(_) if !may_act_for(caller, id) => gt::GNTST_permission_denied,
        Some(domain) => {
            op.nr_frames = domain.grants.frames.len() as u32;
            op.max_nr_frames = MAX_GRANT_FRAMES;
            gt::GNTST_okay
        }
    };
    write_element(uop, 0, &op)?;
    Ok(0)
}

/// Version 1 only: as Xen when `gt->max_version` is 1 (always on Arm), 2 is `-ENOSYS`.
fn set_version(uop: u64, _caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let mut op: gt::gnttab_set_version = read_struct(uop)?;
    let result = match op.version {
        1 => Ok(0),
        2 => Err(XenError::ENOSYS),
        _ => Err(XenError::EINVAL),
    };
    op.version = 1;
    write_element(uop, 0, &op)?;
    result
}

fn get_version(uop: u64, caller: &mut Caller<'_>) -> Result<i64, XenError> {
    let mut op: gt::gnttab_get_version = read_struct(uop)?;
    let id = caller.resolve(op.dom);
    caller.table.domain(id).ok_or(XenError::ESRCH)?;
    if !may_act_for(caller, id) {
        return Err(XenError::EPERM);
    }
    op.version = 1;
    write_element(uop, 0, &op)?;
    Ok(0)
}

fn map_one(view: &mut impl Domains, op: &mut gnttab_map_grant_ref) -> bool {
    match map(view, op) {
        Err(UNREACHABLE) => return false,
        Ok(handle) => (op.status, op.handle) = (gt::GNTST_okay, handle),
        Err(status) => op.status = status,
    }
    op.dev_bus_addr = 0;
    true
}

/// One `GNTTABOP_map_grant_ref`: the new handle, or a `GNTST_*` status.
fn map<D: Domains>(view: &mut D, op: &gnttab_map_grant_ref) -> Result<grant_handle_t, i16> {
    let me = view.me();
    let readonly = grant::check_map_flags(op.flags)?;
    // By its id only (`rcu_lock_domain_by_id`): DOMID_SELF names no granter.
    let granter_id = op.dom;
    view.domain(granter_id, gt::GNTST_bad_domain)?;
    view.domain(me, gt::GNTST_general_error)?.grants.maptrack.free_handle()?;
    let granter = view.domain(granter_id, gt::GNTST_bad_domain)?;
    let generation = granter.generation;
    let entries = FrameEntries(&granter.grants.frames, granter_id);
    let gfn = grant::pin(&mut granter.grants.active, &entries, me, op.r#ref, readonly, Usage::Map)?;
    let undo = |view: &mut D, status: i16| {
        unpin_grant(view, granter_id, op.r#ref, readonly, Usage::Map);
        status
    };
    let Some(phys) = granter.ram_frame(u64::from(gfn)) else {
        return Err(undo(view, gt::GNTST_bad_page));
    };
    if let Err(status) = grant::check_host_mapping(op.flags) {
        return Err(undo(view, status));
    }
    let ipa = grant::host_page(op.host_addr);
    let mapper = view.domain(me, gt::GNTST_general_error)?;
    let page = Attributes { write: !readonly, ..crate::mm::domain_memory::GUEST_LENT };
    if mapper.stage2.map(&mut IdentityTables, ipa, phys, FRAME_SIZE, page).is_err() {
        return Err(undo(view, gt::GNTST_general_error));
    }
    let (gref, host_addr, frame) = (op.r#ref, ipa, gfn);
    let mapping =
        Mapping { granter: granter_id, gref, readonly, host_addr, frame, phys, generation };
    match mapper.grants.maptrack.insert(mapping) {
        Ok(handle) => Ok(handle),
        Err(status) => {
            let _ = mapper.stage2.unmap(&mut IdentityTables, ipa, FRAME_SIZE);
            crate::arch::guest::flush_current_guest_tlbs();
            Err(undo(view, status))
        }
    }
}

fn unmap_one(view: &mut impl Domains, op: &mut gt::gnttab_unmap_grant_ref) -> bool {
    match unmap(view, op.handle, op.host_addr) {
        Err(UNREACHABLE) => false,
        result => {
            op.status = result.err().unwrap_or(gt::GNTST_okay);
            true
        }
    }
}

/// One `GNTTABOP_unmap_grant_ref` of `handle` by the caller (its stage 2 is the live one: the
/// TLB flush is by its VMID). The granter (or the orphans) is reached before anything changes.
fn unmap(view: &mut impl Domains, handle: grant_handle_t, host_addr: u64) -> Result<(), i16> {
    let me = view.me();
    let mapping = *view.domain(me, gt::GNTST_general_error)?.grants.maptrack.find(handle)?;
    if !grant::check_unmap(&mapping, host_addr)? {
        return Ok(());
    }
    match view.domain(mapping.granter, gt::GNTST_bad_domain) {
        Ok(granter) if granter.generation == mapping.generation => {}
        Err(UNREACHABLE) => return Err(UNREACHABLE),
        _ => drop(view.orphans()?),
    }
    view.domain(me, gt::GNTST_general_error)?
        .stage2
        .unmap(&mut IdentityTables, mapping.host_addr, FRAME_SIZE)
        .map_err(|_| gt::GNTST_general_error)?;
    crate::arch::guest::flush_current_guest_tlbs();
    forget_mapping(view, handle)
}

fn copy_one(view: &mut impl Domains, op: &mut gnttab_copy) -> bool {
    match copy(view, op) {
        Err(UNREACHABLE) => false,
        result => {
            op.status = result.err().unwrap_or(gt::GNTST_okay);
            true
        }
    }
}

/// One end of a copy, acquired: its physical frame and, for a grant, what to unpin.
struct End {
    phys: u64,
    pinned: Option<(DomainId, grant_ref_t, bool)>,
}

fn acquire(
    view: &mut impl Domains,
    end: &gt::gnttab_copy_ptr,
    is_gref: bool,
    readonly: bool,
) -> Result<End, i16> {
    let me = view.me();
    let id = view.resolve(end.domid);
    let domain = view.domain(id, gt::GNTST_bad_domain)?;
    if !is_gref {
        let phys = domain.ram_frame(end.gmfn()).ok_or(gt::GNTST_bad_page)?;
        return Ok(End { phys, pinned: None });
    }
    let entries = FrameEntries(&domain.grants.frames, id);
    let gfn =
        grant::pin(&mut domain.grants.active, &entries, me, end.gref(), readonly, Usage::Copy)?;
    match domain.ram_frame(u64::from(gfn)) {
        Some(phys) => Ok(End { phys, pinned: Some((id, end.gref(), readonly)) }),
        None => {
            unpin_grant(view, id, end.gref(), readonly, Usage::Copy);
            Err(gt::GNTST_bad_page)
        }
    }
}

fn release(view: &mut impl Domains, end: &End) {
    if let Some((id, gref, readonly)) = end.pinned {
        unpin_grant(view, id, gref, readonly, Usage::Copy);
    }
}

/// One `GNTTABOP_copy` segment.
fn copy(view: &mut impl Domains, op: &gnttab_copy) -> Result<(), i16> {
    // Both ends' domains are checked before either is pinned (`gnttab_copy_lock_domains`).
    let source_gref = op.flags & gt::GNTCOPY_source_gref != 0;
    let dest_gref = op.flags & gt::GNTCOPY_dest_gref != 0;
    grant::check_copy_end(op.source.domid, source_gref)?;
    view.domain(view.resolve(op.source.domid), gt::GNTST_bad_domain)?;
    grant::check_copy_end(op.dest.domid, dest_gref)?;
    view.domain(view.resolve(op.dest.domid), gt::GNTST_bad_domain)?;
    let source = acquire(view, &op.source, source_gref, true)?;
    let dest = match acquire(view, &op.dest, dest_gref, false) {
        Ok(dest) => dest,
        Err(status) => {
            release(view, &source);
            return Err(status);
        }
    };
    let result = grant::check_copy_bounds(op).map(|()| {
        memory::copy_phys(
            source.phys + u64::from(op.source.offset),
            dest.phys + u64::from(op.dest.offset),
            usize::from(op.len),
        );
    });
    release(view, &dest);
    release(view, &source);
    result
}
