"""``python -m neutrino.testing.vlanping``: ping over an 802.1Q VLAN with raw frames (tests).

A VLAN-aware instance normally talks on a trunk subport through a VLAN
sub-interface (``ip link add link eth0 name eth0.101 type vlan id 101``).
Kernels without 802.1Q support (no ``8021q`` module) cannot make one, so the
full-stack tests speak the subport's VLAN from user space instead: ARP for
the peer, send ICMP echo requests tagged with the VLAN, and wait for a
tagged echo reply (answering the peer's ARP requests for our address
meanwhile).  Stdlib only; needs ``CAP_NET_RAW`` in the instance's namespace.

    python -m neutrino.testing.vlanping --dev eth0 --vlan 101 \\
        --mac fa:16:3e:00:00:01 --ip 10.2.0.5 --dst 10.2.0.6 [--count 3] [--timeout 5]

Exit status 0 when a reply arrived, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
BROADCAST = b"\xff" * 6


def _mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(dst: bytes, src: bytes, vlan: int, eth_type: int, payload: bytes) -> bytes:
    """An Ethernet frame with an 802.1Q tag."""
    return dst + src + struct.pack("!HHH", ETH_P_8021Q, vlan & 0xFFF, eth_type) + payload


def arp(op: int, sha: bytes, spa: str, tha: bytes, tpa: str) -> bytes:
    return struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, op) + sha + socket.inet_aton(spa) + tha + socket.inet_aton(tpa)


def icmp_echo(src: str, dst: str, ident: int, seq: int) -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"neutrino-vlanping"
    body = body[:2] + struct.pack("!H", _checksum(body)) + body[4:]
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), seq, 0, 64, 1, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + body


def receive(sock: socket.socket) -> tuple[int | None, bytes, bytes] | None:
    """(VLAN or None, source MAC, payload after the Ethernet/VLAN header) of one frame."""
    data, anc, _flags, _addr = sock.recvmsg(65535, socket.CMSG_SPACE(32))
    vlan = None
    for level, kind, value in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= 20:
            status, _len, _snap, _mac, _net, tci = struct.unpack("IIIHHH", value[:18])
            if status & TP_STATUS_VLAN_VALID:
                vlan = tci & 0xFFF
    if len(data) < 14:
        return None
    src, (eth_type,) = data[6:12], struct.unpack("!H", data[12:14])
    payload = data[14:]
    if eth_type == ETH_P_8021Q and len(data) >= 18:  # the tag left in the frame
        vlan = struct.unpack("!H", data[14:16])[0] & 0xFFF
        eth_type = struct.unpack("!H", data[16:18])[0]
        payload = data[18:]
    return vlan, src, struct.pack("!H", eth_type) + payload


def ping(dev: str, vlan: int, mac: str, ip: str, dst: str, count: int, timeout: float) -> bool:
    own = _mac(mac)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((dev, 0))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    ident = os.getpid() & 0xFFFF
    peer: bytes | None = None
    deadline = time.monotonic() + timeout
    sent = 0
    next_send = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_send:
            if peer is None:
                sock.send(frame(BROADCAST, own, vlan, ETH_P_ARP, arp(1, own, ip, b"\0" * 6, dst)))
            elif sent < count:
                sent += 1
                sock.send(frame(peer, own, vlan, ETH_P_IP, icmp_echo(ip, dst, ident, sent)))
            next_send = now + 0.5
        ready, _, _ = select.select([sock], [], [], 0.1)
        if not ready:
            continue
        got = receive(sock)
        if got is None or got[0] != vlan:
            continue
        _vlan, src, body = got
        eth_type = struct.unpack("!H", body[:2])[0]
        pkt = body[2:]
        if eth_type == ETH_P_ARP and len(pkt) >= 28:
            op = struct.unpack("!H", pkt[6:8])[0]
            spa, tpa = socket.inet_ntoa(pkt[14:18]), socket.inet_ntoa(pkt[24:28])
            if op == 2 and spa == dst and tpa == ip and peer is None:
                peer, next_send = pkt[8:14], 0.0
            elif op == 1 and tpa == ip:
                sock.send(frame(pkt[8:14], own, vlan, ETH_P_ARP, arp(2, own, ip, pkt[8:14], spa)))
        elif eth_type == ETH_P_IP and len(pkt) >= 28 and pkt[9] == 1:
            hl = (pkt[0] & 0x0F) * 4
            if (
                socket.inet_ntoa(pkt[12:16]) == dst
                and socket.inet_ntoa(pkt[16:20]) == ip
                and pkt[hl] == 0
                and struct.unpack("!H", pkt[hl + 4 : hl + 6])[0] == ident
            ):
                print(f"reply from {dst} on VLAN {vlan} (from {src.hex(':')})")
                return True
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vlanping", description=__doc__.splitlines()[0])
    ap.add_argument("--dev", required=True)
    ap.add_argument("--vlan", type=int, required=True)
    ap.add_argument("--mac", required=True)
    ap.add_argument("--ip", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args(argv)
    ok = ping(a.dev, a.vlan, a.mac, a.ip, a.dst, a.count, a.timeout)
    if not ok:
        print(f"no reply from {a.dst} on VLAN {a.vlan}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
