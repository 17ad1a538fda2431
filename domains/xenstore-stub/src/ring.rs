//! The server's side of a xenstore ring page (`xen/include/public/io/xs_wire.h`
//! `struct xenstore_domain_interface`; protocol in Xen's `docs/misc/xenstore-ring.txt`): reading
//! request bytes the guest produced, writing reply bytes for it to consume.
//!
//! The page is the guest's: every index in it may hold anything. The server trusts only its own
//! copies of the indexes it produces or consumes (`req_cons`, `rsp_prod`, kept in the store's
//! snapshot) and checks each index the guest writes against them: a producer more than a ring
//! ahead of the consumer is a broken ring ([`RingError`]), never a reason to read or write
//! outside it.
//!
//! # Invariants
//! - Every offset passed to [`RingPage`] is below [`XENSTORE_RING_SIZE`] within its ring, or one
//!   of the index offsets.
//! - Data is read only after the producer index that covers it (acquire), and an index is
//!   published only after the data it covers (release), as xenstore-ring.txt requires.

use xenolith_abi::xen::xs_wire::{
    mask_xenstore_idx, XENSTORE_RING_SIZE, XS_REQ_CONS, XS_REQ_PROD, XS_RSP_CONS, XS_RSP_PROD,
};
use xenolith_xenstore::{DomId, Store};

/// Byte offset of the request ring in the page.
pub const REQ_RING: usize = 0;
/// Byte offset of the reply ring in the page.
pub const RSP_RING: usize = XENSTORE_RING_SIZE;

/// Access to one ring page shared with a guest. Implementations use volatile or atomic accesses;
/// `load_acquire` orders later reads after it, `store_release` earlier writes before it.
pub trait RingPage {
    /// Reads the 32-bit index at byte `offset` (acquire).
    fn load_acquire(&self, offset: usize) -> u32;
    /// Writes the 32-bit index at byte `offset` (release).
    fn store_release(&self, offset: usize, value: u32);
    /// Copies bytes at `offset` into `out`.
    fn read(&self, offset: usize, out: &mut [u8]);
    /// Copies `bytes` to `offset`.
    fn write(&self, offset: usize, bytes: &[u8]);
}

/// The guest broke its ring: Xen's `XENSTORE_ERROR_RINGIDX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingError {
    /// The producer (or consumer) index the guest wrote.
    pub guest: u32,
    /// The server's own index it was checked against.
    pub ours: u32,
}

/// Copies up to `out.len()` request bytes the guest has produced past `req_cons` into `out`;
/// returns how many. Does not consume them: the caller publishes `req_cons` with
/// [`publish_req_cons`] once it has committed what it did with them.
pub fn read_requests(
    page: &impl RingPage,
    req_cons: u32,
    out: &mut [u8],
) -> Result<usize, RingError> {
    let req_prod = page.load_acquire(XS_REQ_PROD);
    let available = req_prod.wrapping_sub(req_cons);
    if available as usize > XENSTORE_RING_SIZE {
        return Err(RingError { guest: req_prod, ours: req_cons });
    }
    let total = (available as usize).min(out.len());
    let mut done = 0;
    while done < total {
        let start = mask_xenstore_idx(req_cons.wrapping_add(done as u32));
        let chunk = (XENSTORE_RING_SIZE - start).min(total - done);
        page.read(REQ_RING + start, &mut out[done..done + chunk]);
        done += chunk;
    }
    Ok(total)
}

/// Makes the guest's request bytes up to `req_cons` free for it to reuse.
pub fn publish_req_cons(page: &impl RingPage, req_cons: u32) {
    page.store_release(XS_REQ_CONS, req_cons);
}

/// Writes as many of `bytes` as the reply ring has room for at `rsp_prod` and publishes the new
/// producer index; returns how many were written.
pub fn write_replies(
    page: &impl RingPage,
    rsp_prod: u32,
    bytes: &[u8],
) -> Result<usize, RingError> {
    let rsp_cons = page.load_acquire(XS_RSP_CONS);
    let used = rsp_prod.wrapping_sub(rsp_cons);
    if used as usize > XENSTORE_RING_SIZE {
        return Err(RingError { guest: rsp_cons, ours: rsp_prod });
    }
    let total = (XENSTORE_RING_SIZE - used as usize).min(bytes.len());
    let mut done = 0;
    while done < total {
        let start = mask_xenstore_idx(rsp_prod.wrapping_add(done as u32));
        let chunk = (XENSTORE_RING_SIZE - start).min(total - done);
        page.write(RSP_RING + start, &bytes[done..done + chunk]);
        done += chunk;
    }
    if total > 0 {
        page.store_release(XS_RSP_PROD, rsp_prod.wrapping_add(total as u32));
    }
    Ok(total)
}

/// After a restart or a roll-back: how many bytes at the head of the pending output (which
/// starts at the committed `rsp_prod`) were already written and published. The page's `rsp_prod`
/// is ours to write, so it lies between the committed value and that plus the pending length
/// (more than a ring's worth when the guest read while several publishes went out); if the
/// guest scribbled on it past that, nothing is skipped and the server's own index stays
/// authoritative.
pub fn already_published(page: &impl RingPage, committed_rsp_prod: u32, pending: usize) -> usize {
    let published = page.load_acquire(XS_RSP_PROD).wrapping_sub(committed_rsp_prod) as usize;
    if published <= pending {
        published
    } else {
        0
    }
}

/// After `store` was restored from a snapshot (a restart or a roll-back), drops the output it
/// still queues for `domid` that the ring page shows was already published, and moves its
/// `rsp_prod` past it. Output goes out one message per `publish`, several times between two
/// snapshots, so what was published may span many queued messages: the whole queue bounds it.
pub fn skip_published(store: &mut Store, domid: DomId, page: &impl RingPage) {
    let Some(mut transport) = store.transport(domid) else { return };
    let skip = already_published(page, transport.rsp_prod, store.output_len(domid));
    if skip > 0 {
        store.consume_output(domid, skip);
        transport.rsp_prod = transport.rsp_prod.wrapping_add(skip as u32);
        store.set_transport(domid, transport);
    }
}

#[cfg(test)]
mod tests {
    use core::cell::RefCell;

    use super::*;

    struct Page(RefCell<[u8; 4096]>);

    impl RingPage for Page {
        fn load_acquire(&self, offset: usize) -> u32 {
            let page = self.0.borrow();
            u32::from_le_bytes(page[offset..offset + 4].try_into().unwrap())
        }
        fn store_release(&self, offset: usize, value: u32) {
            self.0.borrow_mut()[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        }
        fn read(&self, offset: usize, out: &mut [u8]) {
            assert!(offset + out.len() <= 2 * XENSTORE_RING_SIZE);
            out.copy_from_slice(&self.0.borrow()[offset..offset + out.len()]);
        }
        fn write(&self, offset: usize, bytes: &[u8]) {
            assert!(offset + bytes.len() <= 2 * XENSTORE_RING_SIZE);
            self.0.borrow_mut()[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
    }

    /// The guest's side, for the tests: produce requests, consume replies.
    fn guest_write(page: &Page, bytes: &[u8]) {
        let prod = page.load_acquire(XS_REQ_PROD);
        for (i, &byte) in bytes.iter().enumerate() {
            let at = mask_xenstore_idx(prod.wrapping_add(i as u32));
            page.0.borrow_mut()[REQ_RING + at] = byte;
        }
        page.store_release(XS_REQ_PROD, prod.wrapping_add(bytes.len() as u32));
    }

    fn guest_read(page: &Page) -> Vec<u8> {
        let cons = page.load_acquire(XS_RSP_CONS);
        let prod = page.load_acquire(XS_RSP_PROD);
        let bytes: Vec<u8> = (0..prod.wrapping_sub(cons))
            .map(|i| page.0.borrow()[RSP_RING + mask_xenstore_idx(cons.wrapping_add(i))])
            .collect();
        page.store_release(XS_RSP_CONS, prod);
        bytes
    }

    fn page_at(index: u32) -> Page {
        let page = Page(RefCell::new([0; 4096]));
        for offset in [XS_REQ_CONS, XS_REQ_PROD, XS_RSP_CONS, XS_RSP_PROD] {
            page.store_release(offset, index);
        }
        page
    }

    #[test]
    fn requests_wrap_around_the_ring_and_the_index_space() {
        for start in [0u32, 1000, u32::MAX - 10] {
            let page = page_at(start);
            let message: Vec<u8> = (0..700u32).map(|i| i as u8).collect();
            let mut cons = start;
            for _ in 0..3 {
                guest_write(&page, &message);
                let mut out = vec![0; 2048];
                let got = read_requests(&page, cons, &mut out).unwrap();
                assert_eq!(&out[..got], &message[..]);
                cons = cons.wrapping_add(got as u32);
                publish_req_cons(&page, cons);
            }
        }
    }

    #[test]
    fn partial_reads_leave_the_rest() {
        let page = page_at(5);
        guest_write(&page, b"abcdefgh");
        let mut out = [0; 3];
        assert_eq!(read_requests(&page, 5, &mut out), Ok(3));
        assert_eq!(&out, b"abc");
        let mut rest = [0; 16];
        assert_eq!(read_requests(&page, 8, &mut rest), Ok(5));
        assert_eq!(&rest[..5], b"defgh");
    }

    #[test]
    fn a_full_reply_ring_takes_what_fits() {
        let page = page_at(u32::MAX - 3);
        let reply = vec![0x5a; 1500];
        let mut prod = u32::MAX - 3;
        let written = write_replies(&page, prod, &reply).unwrap();
        assert_eq!(written, XENSTORE_RING_SIZE);
        prod = prod.wrapping_add(written as u32);
        assert_eq!(write_replies(&page, prod, &reply[written..]), Ok(0), "ring full");
        assert_eq!(guest_read(&page), reply[..written]);
        let more = write_replies(&page, prod, &reply[written..]).unwrap();
        assert_eq!(more, 1500 - XENSTORE_RING_SIZE);
        assert_eq!(guest_read(&page), reply[written..]);
    }

    #[test]
    fn broken_indexes_are_errors() {
        let page = page_at(0);
        page.store_release(XS_REQ_PROD, 1025);
        let mut out = [0; 8];
        assert_eq!(read_requests(&page, 0, &mut out), Err(RingError { guest: 1025, ours: 0 }));
        page.store_release(XS_RSP_CONS, 2000);
        assert_eq!(write_replies(&page, 0, b"x"), Err(RingError { guest: 2000, ours: 0 }));
    }

    #[test]
    fn published_bytes_are_not_written_twice_after_a_restart() {
        let page = page_at(100);
        assert_eq!(write_replies(&page, 100, b"0123456789"), Ok(10));
        // The last incarnation committed rsp_prod 100 with 10 bytes pending, then published all
        // 10 before it died: none is written again, however much is pending now.
        assert_eq!(already_published(&page, 100, 10), 10);
        assert_eq!(already_published(&page, 100, 25), 10);
        assert_eq!(already_published(&page, 110, 4), 0);
        // More than a ring's worth went out since the snapshot (the guest read in between).
        page.store_release(XS_RSP_PROD, 100 + 3000);
        assert_eq!(already_published(&page, 100, 4000), 3000);
        page.store_release(XS_RSP_PROD, 110);
        // A guest that scribbles on rsp_prod changes nothing.
        page.store_release(XS_RSP_PROD, 5000);
        assert_eq!(already_published(&page, 100, 10), 0);
    }

    /// A WATCH queues two messages (the reply, then the event the new watch fires at once);
    /// `publish` sends one message at a time, so both can be out before the next snapshot. A
    /// store restored from the snapshot taken before must skip both, not only the first: else
    /// its `rsp_prod` stays behind the page's and the guest's next consumer index looks broken.
    #[test]
    fn a_restored_store_skips_every_message_published_since_its_snapshot() {
        use xenolith_abi::xen::xs_wire::msg::XS_WATCH;
        use xenolith_xenstore::{NewDomain, Ring};

        let mut store = Store::new(Default::default());
        let ring = Some(Ring { gfn: 0x39001, port: 1 });
        store.add_domain(1, &NewDomain { ring, ..NewDomain::new("guest", 1, 16384) }).unwrap();
        let payload = b"/local/domain/1/w\0t\0";
        let mut request = Vec::new();
        for word in [XS_WATCH, 7, 0, payload.len() as u32] {
            request.extend_from_slice(&word.to_le_bytes());
        }
        request.extend_from_slice(payload);
        assert_eq!(store.receive(1, &request), Ok(request.len()));
        let first = store.output(1).len();
        let queued = store.output_len(1);
        assert!(queued > first, "a reply and an event are queued");

        // Publish as the server does: one message per call, the transport moved after each.
        let page = page_at(100);
        let mut transport = store.transport(1).unwrap();
        transport.rsp_prod = 100;
        store.set_transport(1, transport);
        let mut snapshot_at_100 = Vec::new();
        store.encode(&mut snapshot_at_100);
        while !store.output(1).is_empty() {
            let mut transport = store.transport(1).unwrap();
            let written = write_replies(&page, transport.rsp_prod, store.output(1)).unwrap();
            store.consume_output(1, written);
            transport.rsp_prod = transport.rsp_prod.wrapping_add(written as u32);
            store.set_transport(1, transport);
        }
        let published = page.load_acquire(XS_RSP_PROD);
        assert_eq!(published, 100 + queued as u32);

        let mut restored = Store::decode(&snapshot_at_100).unwrap();
        assert_eq!(restored.output_len(1), queued);
        skip_published(&mut restored, 1, &page);
        assert_eq!(restored.output_len(1), 0);
        assert_eq!(restored.transport(1).unwrap().rsp_prod, published);
        // The next reply goes out after what the guest has already read.
        assert_eq!(guest_read(&page).len(), queued);
        assert_eq!(write_replies(&page, published, b"x"), Ok(1));
    }
}
