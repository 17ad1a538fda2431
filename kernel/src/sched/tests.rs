//! Host tests of the shared scheduling types: `CpuMask`, `VcpuQueue` and parameter validation.
//!
//! # Invariants
//! - Deterministic: fixed inputs and seeds, simulated time only; a failure reproduces exactly.

use super::*;

#[test]
fn cpu_mask_basics() {
    let mut mask = CpuMask::EMPTY;
    assert!(mask.is_empty());
    mask.insert(3);
    mask.insert(5);
    mask.insert(MAX_PCPUS); // ignored
    assert_eq!(mask.bits(), 0b10_1000);
    assert_eq!(mask.iter().count(), 2);
    assert!(mask.contains(3) && mask.contains(5) && !mask.contains(4) && !mask.contains(99));
    assert_eq!(mask.first(), Some(3));
    assert_eq!(mask.iter().collect::<Vec<_>>(), [3, 5]);
    mask.remove(3);
    assert_eq!(mask, CpuMask::single(5));
    assert_eq!(CpuMask::all(3).bits(), 0b111);
    assert_eq!(CpuMask::all(0), CpuMask::EMPTY);
    assert_eq!(CpuMask::all(99), CpuMask::all(MAX_PCPUS));
    assert_eq!(CpuMask::from_bits(u64::MAX), CpuMask::all(MAX_PCPUS));
    assert_eq!(CpuMask::single(MAX_PCPUS), CpuMask::EMPTY);
    let (a, b) = (CpuMask::from_bits(0b1100), CpuMask::from_bits(0b1010));
    assert_eq!(a.and(b).bits(), 0b1000);
    assert_eq!(a.or(b).bits(), 0b1110);
    assert_eq!(a.and_not(b).bits(), 0b0100);
    assert!(a.and(b).and_not(a).is_empty() && !a.and_not(b).is_empty());
    assert_eq!(format!("{a:?}"), "CpuMask(0xc)");
    assert_eq!([3, 5, MAX_PCPUS].into_iter().collect::<CpuMask>(), CpuMask::from_bits(0b10_1000));
    let mut extended = CpuMask::single(1);
    extended.extend(None);
    extended.extend(Some(2));
    assert_eq!(extended.bits(), 0b110);
}

#[test]
fn vcpu_queue_keeps_order_without_repeats() {
    let mut queue = VcpuQueue::EMPTY;
    queue.push(4);
    queue.push(2);
    queue.insert(1, 7);
    queue.push(4); // queued already
    assert_eq!(*queue, [4, 7, 2]);
    assert!(queue.remove(7) && !queue.remove(7));
    assert_eq!(*queue, [4, 2]);
    for vcpu in 0..MAX_VCPUS {
        queue.push(vcpu);
    }
    assert_eq!(queue.len(), MAX_VCPUS, "every vCPU once: full, never more");
}

#[test]
fn cpu_mask_cycles_from_a_cpu() {
    let mask = CpuMask::from_bits(0b1001_0010);
    assert_eq!(mask.cycle_from(1), Some(1), "the cpu itself when present");
    assert_eq!(mask.cycle_from(2), Some(4));
    assert_eq!(mask.cycle_from(5), Some(7));
    assert_eq!(mask.cycle_from(8), Some(1), "wraps around");
    assert_eq!(mask.cycle_from(MAX_PCPUS + 3), Some(1));
    assert_eq!(CpuMask::EMPTY.cycle_from(0), None);
}

#[test]
fn params_validation() {
    let good = VcpuParams::new(1);
    assert_eq!(good.validate(4), Ok(()));
    assert_eq!(VcpuParams { weight: 0, ..good }.validate(4), Err(SchedError::InvalidWeight));
    assert_eq!(VcpuParams { weight: u16::MAX, ..good }.validate(4), Ok(()));
    assert_eq!(VcpuParams { cap: 400, ..good }.validate(4), Ok(()));
    assert_eq!(VcpuParams { cap: 401, ..good }.validate(4), Err(SchedError::InvalidCap));
    let empty = VcpuParams { hard_affinity: CpuMask::EMPTY, ..good };
    assert_eq!(empty.validate(4), Err(SchedError::EmptyHardAffinity));
    let beyond = VcpuParams { hard_affinity: CpuMask::single(4), ..good };
    assert_eq!(
        beyond.validate(4),
        Err(SchedError::EmptyHardAffinity),
        "pCPU 4 of 4 does not exist"
    );
    let no_soft = VcpuParams { soft_affinity: CpuMask::EMPTY, ..good };
    assert_eq!(no_soft.validate(4), Ok(()), "an empty soft affinity is no preference");
    assert_eq!(
        SchedError::InvalidCap.to_string(),
        "cap above 100 x pCPUs, or not the domain's cap"
    );
}

#[test]
fn scheduler_ids_match_domctl_h() {
    use super::{credit2::Credit2, null::Null};
    let credit2 = Credit2::new(1);
    let null = Null::new(1);
    assert_eq!((credit2.id(), credit2.name()), (6, "credit2"));
    assert_eq!((null.id(), null.name()), (9, "null"));
}
