#!/bin/sh
# /init of the busybox initramfs that `cargo xtask` packs for Debian's arm64 Linux as a Xenolith
# guest (images/src/debian.rs; manifest: ramdisk = "debian:busybox-initramfs").
#
# It prints one line per check, in this fixed form, for a test to read off the console:
#     XENOLITH-CHECK <name> <ok|fail> <detail, free text>
# then the line XENOLITH-INIT-DONE, then does what `xenolith.then=` on the kernel command line
# asks:
#     wait      (default) stay up: sleep forever
#     poweroff  poweroff -f
#     reboot    reboot -f
#     crash     echo c > /proc/sysrq-trigger
#     balloon   shrink the balloon target by 16 MiB and back, printing check lines
#               (balloon-start, balloon-shrink, balloon-grow), then XENOLITH-BALLOON-DONE; then wait
#     balloon-poweroff  the same, then poweroff -f
#     ticks     print XENOLITH-TICK <n> every second, forever
#     net-ping:<addr>  ping <addr> once a second until it answers (up to 120 tries), then print
#               XENOLITH-NET-PING ok <addr> (or XENOLITH-NET-PING fail <addr> ...); then wait
#     net-recv:<port>  accept one TCP connection on <port> (busybox nc -l -p), store what it
#               sends in /tmp/recv, then print XENOLITH-NET-RECV <bytes> <sha256>; then wait
#     net-loop:<MiB>  the same transfer as net-send inside this guest, over the loopback
#               device (no netfront, no netback): nc listening on 127.0.0.1 stores what a
#               second nc sends; prints XENOLITH-NET-LOOP-TIME <ns> (as net-send's) and
#               XENOLITH-NET-LOOP <bytes> <sent sha256> <received sha256>; then wait
#     net-send:<addr>:<port>:<MiB>  wait for <addr> to answer ping, write <MiB> MiB of data
#               from /dev/urandom to /tmp/send, print XENOLITH-NET-SENT <bytes> <sha256>, send
#               it to <addr>:<port> with nc (retrying the connection for up to 120 s), then
#               print XENOLITH-NET-SEND-TIME <ns> (the guest clock's time, /proc/uptime, 10 ms
#               resolution, from the start of the nc that connected to its end: virtual time
#               under -icount, for `cargo xtask bench net`) and XENOLITH-NET-SEND-DONE (or
#               XENOLITH-NET-SEND fail ...); then wait
#     net-reload:<addr>  unload xen-netfront (its vif closes), load it again (it connects
#               again), give eth0 its xenolith.ip= address again and ping <addr> until it
#               answers: XENOLITH-NET-RELOAD unloaded, then XENOLITH-NET-RELOAD ok <addr> ... (or
#               XENOLITH-NET-RELOAD fail ...); then wait
#     disk-check:<N>  the virtio disk (/dev/vda, virtio_mmio and virtio_blk; waited for up to
#               30 s) mounted as ext4 at /mnt: N files f1..fN of 64 KiB to 1 MiB from
#               /dev/urandom, each written with fsync and then printed as
#               XENOLITH-DISK-WROTE f<i> <KiB> <sha256 of the data written>; then sync, umount,
#               mount again and XENOLITH-DISK-READ f<i> <sha256 read back> for each, the check
#               line `disk` (ok: every file read back equal; fail: which were not, or why the
#               disk could not be mounted), each kernel log line matching "I/O error",
#               "blk_update_request", "EXT4-fs error" or "virtio" as XENOLITH-DISK-DMESG <line>,
#               the check line `disk-dmesg` (fail on any of the first three), and
#               XENOLITH-DISK-DONE; then wait
#     disk-loop:<N>  the same, but for a test that kills the device model while the guest
#               writes: the N files are written one after another as fast as the disk takes
#               them (each with fsync; XENOLITH-DISK-WRITING f<i> <KiB> before and
#               XENOLITH-DISK-WROTE after each, so the test can kill at any point of the
#               stream; its domain's xenstore node data/disk-writing is written as they
#               start), XENOLITH-DISK-WRITTEN <N> after the last, then the same remount,
#               read-back and dmesg checks and XENOLITH-DISK-DONE
#     virtio-net-echo:<N>  for a device model's virtio-net, which loops every frame back
#               (`virtio_net = true`): eth0 (waited for up to 30 s) gets 10.99.0.1/24 and comes
#               up, arping sends N ARP requests for 10.99.0.2 from it, and once eth0 has
#               received what it sent (waited for up to 10 s) the check line `virtio-net` (ok:
#               eth0's driver is virtio_net, it sent at least N packets and received at least as
#               many packets and bytes as it sent; fail: which of these is not so, with the
#               counters), then XENOLITH-VNET-DONE; then wait
#     disk-reboot:<N>  for a test that reboots the guest under its device model: on a disk
#               without /mnt/sums, disk-check:<N>, then the sums kept on the disk as /mnt/sums,
#               umount, XENOLITH-DISK-REBOOTING and `reboot -f`; on a disk with them (the
#               boot after), XENOLITH-DISK-REBOOTED, each file read back as
#               XENOLITH-DISK-READ f<i> <sha256>, the check line `disk-reboot` (ok: every file
#               written before the reboot read back equal), the dmesg check and
#               XENOLITH-DISK-DONE; then wait
# Other parameters: `xenolith.cpus=N`, the vCPUs that should be online (the `cpus` check fails
# on any other count; without it the count is only printed); `xenolith.ip=A.B.C.D/NN`, eth0's
# address: the `net` check waits (up to 30 s) for eth0 to appear (xen-netfront makes it once the
# vif's backend connects), gives it the address and brings it up, waits (up to 30 s) for vif 0
# and its backend to be Connected, then watches both states in the background for the rest of
# the run, printing `XENOLITH-NET-STATE <path>=<value>` whenever one is anything else; it
# prints `XENOLITH-CHECK net ok <addr>...` (or fail, with the reason); without it there is no
# net check. `xenolith.ping=<addr>`: after the checks, ping <addr> as net-ping does and print
# `XENOLITH-NET-PING ok <addr>` (or fail), before the `xenolith.then=` mode. net-send writes
# its domain's `data/net-sending` once its data is ready, as it starts sending.
#
# Checks, in order: module-<name> (each module of /etc/xenolith-modules, loaded with insmod),
# hypervisor (/sys/hypervisor/type is "xen"), xenbus (/sys/bus/xen and the /dev/xen/xenbus device
# exist), xenstore (an XS_READ of this domain's "name" node through /dev/xen/xenbus gets an
# answer: xenstored answered; status 1 no answer, 2 no device), xenstore-tools (the Rust
# xenstore tools in /usr/bin, guest-tools/xenstore: `xenstore-read name` prints the name the
# xenstore check read; `xenstore-write data/xt` (relative: under this domain's home) then
# `xenstore-read data/xt` round-trips an escaped value; `xenstore-ls data` shows it;
# `xenstore-watch -n 2 data/xt` prints `data/xt` for its first event and for a write after it;
# `xenstore-rm data/xt` removes it, after which `xenstore-read data/xt` exits 1 as Xen's does;
# the detail names the first step that went wrong), cpus, memtotal, clock (the year is not
# 1970), net (only with `xenolith.ip=`), then dmesg (no BUG, WARNING, Oops or Call trace in the kernel log), last, so that
# it covers everything before it.

/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
# A toolstack's `xl shutdown` or `xl reboot` (control/shutdown) makes Linux run /sbin/poweroff or
# /sbin/reboot (orderly_poweroff, orderly_reboot). Busybox's would signal an init daemon, and
# this script is no such init: they act at once instead.
for command in poweroff reboot halt; do
    rm -f /sbin/$command
    action=$command
    [ $command = halt ] && action=poweroff
    printf '#!/bin/sh\nexec /bin/busybox %s -f\n' $action > /sbin/$command
    chmod 755 /sbin/$command
done

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# Without a console device (hvc0 needs a console domain to serve it), everything goes
# to the kernel log, which Linux's `earlycon=xenboot` prints through the console_io hypercall.
# Boot with `printk.devkmsg=on` so that no line is rate-limited away.
if { true > /dev/console; } 2>/dev/null; then
    console=hvc
else
    console=none
    exec > /dev/kmsg 2>&1
fi

check() {
    echo "XENOLITH-CHECK $1 $2 $3"
    # One fixed marker for any failure, for a test to forbid.
    [ "$2" = ok ] || echo "XENOLITH-CHECK-FAILED $1"
}

# A short pause for polling loops (busybox sleep takes fractions when built with them).
pause() {
    sleep 0.1 2>/dev/null || sleep 1
}

then=wait
cpus_expected=
ip_address=
ping_address=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        xenolith.then=*) then=${arg#xenolith.then=} ;;
        xenolith.cpus=*) cpus_expected=${arg#xenolith.cpus=} ;;
        xenolith.ip=*) ip_address=${arg#xenolith.ip=} ;;
        xenolith.ping=*) ping_address=${arg#xenolith.ping=} ;;
    esac
done

# Kernel modules, dependencies first (the list is written by the host tool).
while read -r module; do
    [ -n "$module" ] || continue
    name=${module##*/}
    name=${name%.ko}
    if output=$(insmod "$module" 2>&1); then
        check "module-$name" ok "$module"
    else
        check "module-$name" fail "$(echo $output)"
    fi
done < /etc/xenolith-modules

type=$(cat /sys/hypervisor/type 2>/dev/null)
if [ "$type" = xen ]; then
    check hypervisor ok "type=xen"
else
    check hypervisor fail "type=${type:-missing}"
fi

# The bus exists even on bare metal; /dev/xen/xenbus (xenbus_dev_frontend) only on Xen.
if [ -d /sys/bus/xen ] && [ -c /dev/xen/xenbus ]; then
    check xenbus ok "/sys/bus/xen /dev/xen/xenbus"
else
    check xenbus fail "bus: $(ls -d /sys/bus/xen 2>&1); device: $(ls /dev/xen/xenbus 2>&1)"
fi

# A little-endian u32 (below 65536) as four raw bytes.
u32le() {
    printf "\\$(printf %03o $(($1 & 255)))\\$(printf %03o $((($1 >> 8) & 255)))\\000\\000"
}

# XS_READ (type 2) of path $1 through the xenbus device (xs_wire.h: type, req_id, tx_id, len,
# then the payload). Prints "<reply type> <payload>"; fails if nothing answers within 10 s.
xs_read() {
    device=/dev/xen/xenbus
    [ -e $device ] || device=/proc/xen/xenbus
    [ -e $device ] || return 2
    { u32le 2; u32le 1; u32le 0; u32le $((${#1} + 1)); printf '%s\000' "$1"; } > /tmp/xs.request
    exec 3<>$device
    cat /tmp/xs.request >&3
    timeout 10 dd bs=4096 count=1 <&3 > /tmp/xs.reply 2>/dev/null
    exec 3<&-
    [ -s /tmp/xs.reply ] || return 1
    set -- $(od -An -tu4 -N16 /tmp/xs.reply)
    echo "$1 $(dd if=/tmp/xs.reply bs=1 skip=16 count=$4 2>/dev/null | tr -d '\000')"
}

xs_name=
if reply=$(xs_read name); then
    case "$reply" in
        "2 "*)
            xs_name=${reply#2 }
            check xenstore ok "name=$xs_name"
            ;;
        *) check xenstore ok "answered type=${reply%% *} payload=${reply#* }" ;;
    esac
else
    check xenstore fail "no answer through the xenbus device (status $?)"
fi

# The xenstore tools' round trip (see the header); $1 is the name the xenstore check read.
# Prints what it did, or the step that failed; each tool gets 10 s.
xenstore_tools() {
    value='round\ttrip'
    got=$(timeout 10 xenstore-read name 2>&1) || { echo "xenstore-read name: $got"; return 1; }
    [ "$got" = "$1" ] || { echo "xenstore-read name printed '$got', xenbus read '$1'"; return 1; }
    got=$(timeout 10 xenstore-write data/xt "$value" 2>&1) || {
        echo "xenstore-write data/xt: $got"
        return 1
    }
    got=$(timeout 10 xenstore-read data/xt 2>&1) || { echo "xenstore-read data/xt: $got"; return 1; }
    [ "$got" = "$value" ] || { echo "xenstore-read data/xt printed '$got', not '$value'"; return 1; }
    got=$(timeout 10 xenstore-ls data 2>&1) || { echo "xenstore-ls data: $got"; return 1; }
    printf '%s\n' "$got" | grep -qxF "xt = \"$value\"" || {
        echo "xenstore-ls data printed '$got'"
        return 1
    }
    # A watch's first event comes when it is set; the write after it makes the second.
    timeout 10 xenstore-watch -n 2 data/xt > /tmp/xt.watch 2>&1 &
    watcher=$!
    tries=100
    while [ ! -s /tmp/xt.watch ] && [ $tries -gt 0 ]; do
        pause
        tries=$((tries - 1))
    done
    got=$(timeout 10 xenstore-write data/xt "$value" 2>&1) || {
        echo "xenstore-write data/xt under a watch: $got"
        return 1
    }
    wait $watcher
    status=$?
    got=$(cat /tmp/xt.watch)
    [ $status = 0 ] && [ "$got" = "$(printf 'data/xt\ndata/xt')" ] || {
        echo "xenstore-watch -n 2 data/xt exited $status, printed '$(echo $got)'"
        return 1
    }
    got=$(timeout 10 xenstore-rm data/xt 2>&1) || { echo "xenstore-rm data/xt: $got"; return 1; }
    got=$(timeout 10 xenstore-read data/xt 2>&1)
    status=$?
    [ $status = 1 ] || { echo "xenstore-read of the removed node exited $status: $got"; return 1; }
    echo "name=$1; data/xt written, read, listed, watched, removed; then read exits 1 ($got)"
}

if detail=$(xenstore_tools "$xs_name"); then
    check xenstore-tools ok "$detail"
else
    check xenstore-tools fail "$(echo $detail)"
fi

online=$(cat /sys/devices/system/cpu/online)
count=0
for part in $(echo "$online" | tr , ' '); do
    case "$part" in
        *-*) count=$((count + ${part#*-} - ${part%-*} + 1)) ;;
        *) count=$((count + 1)) ;;
    esac
done
if [ -z "$cpus_expected" ] || [ "$count" = "$cpus_expected" ]; then
    check cpus ok "online=$online count=$count expected=${cpus_expected:-unset}"
else
    check cpus fail "online=$online count=$count expected=$cpus_expected"
fi

memtotal=$(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' /proc/meminfo)
if [ -n "$memtotal" ]; then
    check memtotal ok "MemTotal=${memtotal}kB"
else
    check memtotal fail "no MemTotal in /proc/meminfo"
fi

year=$(date +%Y)
if [ "$year" != 1970 ]; then
    check clock ok "year=$year"
else
    check clock fail "year=1970 (no wallclock from the hypervisor)"
fi

# Gives eth0 address $1 (A.B.C.D/NN) once it appears (up to 30 s); prints what it did or why
# it could not.
net_up() {
    case "$1" in
        *.*.*.*/*) ;;
        *) echo "xenolith.ip=$1 is not A.B.C.D/NN"; return 1 ;;
    esac
    tries=300
    while [ ! -e /sys/class/net/eth0 ] && [ $tries -gt 0 ]; do
        pause
        tries=$((tries - 1))
    done
    if [ ! -e /sys/class/net/eth0 ]; then
        echo "no eth0 after 30 s (interfaces: $(ls /sys/class/net | tr '\n' ' '))"
        return 1
    fi
    got=$(ip addr add "$1" dev eth0 2>&1) || { echo "ip addr add $1 dev eth0: $got"; return 1; }
    got=$(ip link set eth0 up 2>&1) || { echo "ip link set eth0 up: $got"; return 1; }
    echo "$1 on eth0 ($(cat /sys/class/net/eth0/address))"
}

# Once vif 0 and its backend are both Connected (4; up to 30 s), watches the two states for the
# rest of the run in the background and prints XENOLITH-NET-STATE <path>=<value> whenever one
# is seen to be anything else (a test forbids it: the vif must never be disconnected).
watch_vif() {
    backend=$(xenstore-read device/vif/0/backend 2>/dev/null) || return 1
    tries=300
    until [ "$(xenstore-read device/vif/0/state 2>/dev/null)" = 4 ] &&
        [ "$(xenstore-read "$backend/state" 2>/dev/null)" = 4 ]; do
        [ $tries -gt 0 ] || return 1
        pause
        tries=$((tries - 1))
    done
    for path in device/vif/0/state "$backend/state"; do
        xenstore-watch "$path" 2>/dev/null | while read -r event; do
            value=$(xenstore-read "$path" 2>&1)
            [ "$value" = 4 ] || echo "XENOLITH-NET-STATE $path=$value"
        done &
    done
}

if [ -n "$ip_address" ]; then
    if detail=$(net_up "$ip_address"); then
        if watch_vif; then
            check net ok "$detail; vif 0 and its backend Connected, watched"
        else
            check net fail "$detail, but vif 0 and its backend not both Connected within 30 s"
        fi
    else
        check net fail "$(echo $detail)"
    fi
fi

case "$then" in
    wait | poweroff | reboot | crash | balloon | balloon-poweroff | ticks) ;;
    net-ping:?* | net-recv:?* | net-send:?*:?*:?* | net-reload:?* | net-loop:?*) ;;
    disk-check:?* | disk-loop:?* | disk-reboot:?* | virtio-net-echo:?*) ;;
    *) check then fail "unknown xenolith.then=$then; staying up" ;;
esac

bad=$(dmesg | grep -E '(^|[^A-Z_])BUG[: ]|WARNING:|Oops|Call trace' | head -n 1)
if [ -z "$bad" ]; then
    check dmesg ok "no BUG, WARNING, Oops or Call trace"
else
    check dmesg fail "$bad"
fi

echo XENOLITH-INIT-DONE

# Waits up to 60 s until the number in file $1 is at most ($2 = le) or at least ($2 = ge) $3.
wait_kb() {
    tries=600
    while [ $tries -gt 0 ]; do
        now=$(cat "$1")
        [ "$2" = le ] && [ "$now" -le "$3" ] && return 0
        [ "$2" = ge ] && [ "$now" -ge "$3" ] && return 0
        pause
        tries=$((tries - 1))
    done
    return 1
}

# Sets the balloon target to $2 KiB and prints check balloon-$1: ok once current_kb is at most
# ($3 = le) or at least ($3 = ge) $4 KiB, fail after 60 s without.
balloon_step() {
    echo $2 > $memory/target_kb
    if wait_kb $memory/info/current_kb $3 $4; then
        check balloon-$1 ok "target_kb=$2 current_kb=$(cat $memory/info/current_kb)"
    else
        check balloon-$1 fail "target_kb=$2 current_kb=$(cat $memory/info/current_kb) after 60 s"
    fi
}

balloon() {
    memory=/sys/devices/system/xen_memory/xen_memory0
    if [ ! -e $memory/target_kb ]; then
        check balloon-start fail "no $memory/target_kb"
        return
    fi
    target=$(cat $memory/target_kb)
    current=$(cat $memory/info/current_kb)
    check balloon-start ok "target_kb=$target current_kb=$current"
    smaller=$((current - 16384))
    balloon_step shrink $smaller le $smaller
    # Stay small for 3 s, so that a hypervisor heartbeat (every second in the tests, on the same
    # counter as this sleep) reports the smaller reservation before it grows back.
    sleep 3
    balloon_step grow $target ge $current
    # And as long again at full size, for the heartbeat to report that too.
    sleep 3
}

# Pings $1 once a second until it answers, up to 120 tries.
ping_until() {
    tries=120
    while [ $tries -gt 0 ]; do
        ping -c 1 -W 1 "$1" > /dev/null 2>&1 && return 0
        sleep 1
        tries=$((tries - 1))
    done
    return 1
}

# net-recv:<port>: one connection's data into /tmp/recv. nc's stdin is a FIFO held open (a
# busybox nc may stop at the end of its input, before the peer has sent anything).
net_recv() {
    rm -f /tmp/recv /tmp/recv.hold
    mkfifo /tmp/recv.hold
    nc -l -p "$1" < /tmp/recv.hold > /tmp/recv &
    receiver=$!
    exec 4> /tmp/recv.hold
    wait $receiver
    exec 4>&-
    set -- $(wc -c < /tmp/recv) $(sha256sum /tmp/recv)
    echo "XENOLITH-NET-RECV $1 $2"
}

# The guest clock's uptime in ns (/proc/uptime's hundredths of a second).
uptime_ns() {
    read -r up _ < /proc/uptime
    seconds=${up%.*}
    hundredths=${up#*.}
    echo $(((seconds * 100 + ${hundredths#0}) * 10000000))
}

# net-send:<addr>:<port>:<MiB>.
# net-reload:<addr>: xen-netfront unloaded (the vif closes) and loaded again (it connects again
# to the same backend), eth0 given its address again, then <addr> pinged.
net_reload() {
    module=$(grep /xen-netfront.ko /etc/xenolith-modules)
    ip link set eth0 down 2>/dev/null
    # xenbus holds the module while a device is bound to it (`xenbus_dev_probe`): the vif is
    # unbound first, which closes it (`xennet_remove`), then the module goes.
    if ! got=$( (echo vif-0 > /sys/bus/xen/drivers/vif/unbind) 2>&1); then
        echo "XENOLITH-NET-RELOAD fail unbinding vif-0: $got"
        return
    fi
    # Tried again for up to 10 s, while anything still holds the module.
    tries=100
    until got=$(rmmod xen_netfront 2>&1); do
        tries=$((tries - 1))
        if [ $tries -eq 0 ]; then
            echo "XENOLITH-NET-RELOAD fail rmmod: $got ($(grep xen_netfront /proc/modules))"
            return
        fi
        pause
    done
    echo "XENOLITH-NET-RELOAD unloaded"
    if ! got=$(insmod "$module" 2>&1); then
        echo "XENOLITH-NET-RELOAD fail insmod: $got"
        return
    fi
    if ! detail=$(net_up "$ip_address"); then
        echo "XENOLITH-NET-RELOAD fail $(echo $detail)"
        return
    fi
    if ping_until "$1"; then
        echo "XENOLITH-NET-RELOAD ok $1 answers again"
    else
        echo "XENOLITH-NET-RELOAD fail $1 did not answer 120 pings"
    fi
}

net_loop() {
    ip link set lo up
    dd if=/dev/urandom of=/tmp/send bs=4096 count=$(($1 * 256)) 2>/dev/null
    rm -f /tmp/recv /tmp/recv.hold
    mkfifo /tmp/recv.hold
    nc -l -p 5002 < /tmp/recv.hold > /tmp/recv &
    receiver=$!
    exec 4> /tmp/recv.hold
    # The listener may not listen yet: a refused connection is tried again.
    tries=100
    while [ $tries -gt 0 ]; do
        started=$(uptime_ns)
        if nc 127.0.0.1 5002 < /tmp/send > /dev/null 2>&1; then
            echo "XENOLITH-NET-LOOP-TIME $(($(uptime_ns) - started))"
            break
        fi
        pause
        tries=$((tries - 1))
    done
    wait $receiver
    exec 4>&-
    echo "XENOLITH-NET-LOOP $(wc -c < /tmp/recv) $(sha256sum < /tmp/send | cut -d' ' -f1) $(sha256sum < /tmp/recv | cut -d' ' -f1)"
}

net_send() {
    if ! ping_until "$1"; then
        echo "XENOLITH-NET-SEND fail $1 never answered ping"
        return
    fi
    # 4 KiB reads of /dev/urandom are never short.
    dd if=/dev/urandom of=/tmp/send bs=4096 count=$(($3 * 256)) 2>/dev/null
    set -- "$1" "$2" "$3" $(wc -c < /tmp/send) $(sha256sum /tmp/send)
    echo "XENOLITH-NET-SENT $4 $5"
    # For a test that acts while the data flows (data/net-sending, this domain's).
    xenstore-write data/net-sending 1 2>/dev/null
    # The receiver may not listen yet: a refused connection is tried again.
    tries=120
    while [ $tries -gt 0 ]; do
        started=$(uptime_ns)
        if nc "$1" "$2" < /tmp/send > /dev/null 2>&1; then
            echo "XENOLITH-NET-SEND-TIME $(($(uptime_ns) - started))"
            echo XENOLITH-NET-SEND-DONE
            return
        fi
        sleep 1
        tries=$((tries - 1))
    done
    echo "XENOLITH-NET-SEND fail $1:$2 refused the connection for 120 s"
}

# The disk modes (see the header). Expected sums are kept in /tmp/disk.sums as "f<i> <sha256>".
disk_mount() {
    mkdir -p /mnt
    tries=300
    while [ ! -b /dev/vda ] && [ $tries -gt 0 ]; do
        pause
        tries=$((tries - 1))
    done
    [ -b /dev/vda ] || { echo "no /dev/vda after 30 s ($(ls /sys/class/block | tr '\n' ' '))"; return 1; }
    got=$(mount -t ext4 /dev/vda /mnt 2>&1) || { echo "mount -t ext4 /dev/vda /mnt: $got"; return 1; }
}

# Writes f$1 (64 KiB to 1 MiB, by its number) to /mnt with fsync; its sum to /tmp/disk.sums.
disk_write() {
    kib=$((64 + ($1 * 389) % 961))
    dd if=/dev/urandom of=/tmp/disk.data bs=1024 count=$kib 2>/dev/null
    sum=$(sha256sum < /tmp/disk.data | cut -d' ' -f1)
    echo "XENOLITH-DISK-WRITING f$1 $kib"
    if ! got=$(dd if=/tmp/disk.data of=/mnt/f$1 bs=65536 conv=fsync 2>&1); then
        echo "XENOLITH-DISK-WRITE-FAILED f$1 $(echo $got)"
    fi
    echo "f$1 $sum" >> /tmp/disk.sums
    echo "XENOLITH-DISK-WROTE f$1 $kib $sum"
}

# After the writes: sync, remount, compare every file with its sum, the kernel log, the end.
disk_verify() {
    sync
    bad=
    if ! got=$(umount /mnt 2>&1); then
        bad="umount: $(echo $got)"
    elif ! detail=$(disk_mount); then
        bad="remount: $(echo $detail)"
    else
        while read -r name sum; do
            now=$(sha256sum < /mnt/$name 2>/dev/null | cut -d' ' -f1)
            echo "XENOLITH-DISK-READ $name ${now:-unreadable}"
            [ "$now" = "$sum" ] || bad="$bad $name"
        done < /tmp/disk.sums
    fi
    files=$(wc -l < /tmp/disk.sums)
    if [ -z "$bad" ]; then
        check disk ok "$files files read back equal after a remount"
    else
        check disk fail "$files files written; not equal after a remount:$bad"
    fi
    disk_dmesg
}

# The kernel log's disk errors, the check line `disk-dmesg`, the end.
disk_dmesg() {
    dmesg | grep -i -E 'I/O error|blk_update_request|EXT4-fs error|virtio' |
        sed 's/^/XENOLITH-DISK-DMESG /'
    errors=$(dmesg | grep -i -E 'I/O error|blk_update_request|EXT4-fs error' | head -n 1)
    if [ -z "$errors" ]; then
        check disk-dmesg ok "no I/O error, blk_update_request or EXT4-fs error"
    else
        check disk-dmesg fail "$errors"
    fi
    echo XENOLITH-DISK-DONE
}

# disk-check:<N> and disk-loop:<N> ($1: which, $2: N).
disk_run() {
    rm -f /tmp/disk.sums
    touch /tmp/disk.sums
    if ! detail=$(disk_mount); then
        check disk fail "$(echo $detail)"
        dmesg | grep -i -E 'I/O error|blk_update_request|EXT4-fs error|virtio' |
            sed 's/^/XENOLITH-DISK-DMESG /'
        echo XENOLITH-DISK-DONE
        return
    fi
    echo "XENOLITH-DISK-MOUNTED $(grep ' /mnt ' /proc/mounts)"
    # For a test that acts while the writes go on (data/disk-writing, this domain's).
    [ $1 = loop ] && xenstore-write data/disk-writing 1 2>/dev/null
    i=1
    while [ $i -le $2 ]; do
        disk_write $i
        i=$((i + 1))
    done
    [ $1 = loop ] && echo "XENOLITH-DISK-WRITTEN $2"
    disk_verify
}

# virtio-net-echo:<N> (the list above).
virtio_net_echo() {
    tries=300
    while [ ! -e /sys/class/net/eth0 ] && [ $tries -gt 0 ]; do
        pause
        tries=$((tries - 1))
    done
    if ! got=$(ip addr add 10.99.0.1/24 dev eth0 2>&1) || ! got=$(ip link set eth0 up 2>&1); then
        check virtio-net fail "eth0: $(echo $got)"
        echo XENOLITH-VNET-DONE
        return
    fi
    driver=$(basename "$(readlink /sys/class/net/eth0/device/driver)" 2>/dev/null)
    arping -c "$1" -w $(($1 + 10)) -I eth0 10.99.0.2 > /dev/null 2>&1
    stats=/sys/class/net/eth0/statistics
    tries=100
    while [ $tries -gt 0 ]; do
        tx=$(cat $stats/tx_packets) rx=$(cat $stats/rx_packets)
        txb=$(cat $stats/tx_bytes) rxb=$(cat $stats/rx_bytes)
        [ "$rx" -ge "$tx" ] && [ "$rxb" -ge "$txb" ] && break
        pause
        tries=$((tries - 1))
    done
    counters="driver=$driver tx=$tx rx=$rx tx_bytes=$txb rx_bytes=$rxb"
    if [ "$driver" != virtio_net ]; then
        check virtio-net fail "eth0 is not virtio_net's: $counters"
    elif [ "$tx" -lt "$1" ]; then
        check virtio-net fail "fewer than $1 packets sent: $counters"
    elif [ "$rx" -lt "$tx" ] || [ "$rxb" -lt "$txb" ]; then
        check virtio-net fail "less received than sent: $counters"
    else
        check virtio-net ok "$counters"
    fi
    echo XENOLITH-VNET-DONE
}

# disk-reboot:<N> (the list above): write and reboot, or, the boot after, read back.
disk_reboot() {
    if ! detail=$(disk_mount); then
        check disk-reboot fail "$(echo $detail)"
        echo XENOLITH-DISK-DONE
        return
    fi
    if [ ! -f /mnt/sums ]; then
        umount /mnt
        disk_run check $1
        # disk_verify left the disk mounted again (unless it failed).
        grep -q ' /mnt ' /proc/mounts || return
        cp /tmp/disk.sums /mnt/sums && sync && umount /mnt
        echo XENOLITH-DISK-REBOOTING
        reboot -f
    fi
    echo XENOLITH-DISK-REBOOTED
    bad=
    while read -r name sum; do
        now=$(sha256sum < /mnt/$name 2>/dev/null | cut -d' ' -f1)
        echo "XENOLITH-DISK-READ $name ${now:-unreadable}"
        [ "$now" = "$sum" ] || bad="$bad $name"
    done < /mnt/sums
    files=$(wc -l < /mnt/sums)
    if [ -z "$bad" ]; then
        check disk-reboot ok "$files files written before the reboot read back equal"
    else
        check disk-reboot fail "$files files written before the reboot; not equal:$bad"
    fi
    disk_dmesg
}

if [ -n "$ping_address" ]; then
    if ping_until "$ping_address"; then
        echo "XENOLITH-NET-PING ok $ping_address"
    else
        echo "XENOLITH-NET-PING fail $ping_address did not answer 120 pings"
    fi
fi

case "$then" in
    net-ping:*)
        peer=${then#net-ping:}
        if ping_until "$peer"; then
            echo "XENOLITH-NET-PING ok $peer"
        else
            echo "XENOLITH-NET-PING fail $peer did not answer 120 pings"
        fi
        ;;
    net-recv:*) net_recv "${then#net-recv:}" ;;
    net-reload:*) net_reload "${then#net-reload:}" ;;
    net-loop:*) net_loop "${then#net-loop:}" ;;
    disk-check:*) disk_run check "${then#disk-check:}" ;;
    disk-loop:*) disk_run loop "${then#disk-loop:}" ;;
    disk-reboot:*) disk_reboot "${then#disk-reboot:}" ;;
    virtio-net-echo:*) virtio_net_echo "${then#virtio-net-echo:}" ;;
    net-send:*)
        spec=${then#net-send:}
        net_send "${spec%%:*}" "$(echo "$spec" | cut -d: -f2)" "${spec##*:}"
        ;;
    poweroff) poweroff -f ;;
    reboot) reboot -f ;;
    crash) echo c > /proc/sysrq-trigger ;;
    balloon | balloon-poweroff)
        balloon
        echo XENOLITH-BALLOON-DONE
        [ "$then" = balloon-poweroff ] && poweroff -f
        ;;
    ticks)
        tick=0
        while :; do
            tick=$((tick + 1))
            echo "XENOLITH-TICK $tick"
            sleep 1
        done
        ;;
esac
# Then an interactive shell on the console (hvc0 when a console domain serves it, or the
# emulated UART ttyAMA0 with `console=ttyAMA0`), started
# again when it exits; without a console, sleep.
if [ "$console" = hvc ]; then
    if reply=$(xs_read name); then
        hostname "${reply#2 }"
    fi
    export PS1='\h:\w\$ '
    while :; do
        setsid cttyhack sh -l
    done
fi
while :; do
    sleep 3600
done
