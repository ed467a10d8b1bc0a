#!/usr/bin/env python3
"""Resolve NAME.local over multicast DNS with python-zeroconf, as a LAN client would.

    mdns-resolve.py NAME.local [TIMEOUT_S]

Prints each address the responder gave (IPv4 and IPv6), one per line, and exits 0; exits 1
if nothing answered within TIMEOUT_S (default 10). Used by image/test-sd-net.sh inside a
network namespace; it sends queries on every interface there.
"""
import sys

from zeroconf import AddressResolver, IPVersion, Zeroconf


def main():
    name = sys.argv[1].rstrip(".") + "."
    timeout_ms = int(float(sys.argv[2] if len(sys.argv) > 2 else 10) * 1000)
    zc = Zeroconf(ip_version=IPVersion.All)
    try:
        r = AddressResolver(name)
        if not r.request(zc, timeout_ms):
            print("no answer for %s within %d ms" % (name, timeout_ms), file=sys.stderr)
            return 1
        for a in r.parsed_scoped_addresses(IPVersion.All):
            print(a)
        return 0
    finally:
        zc.close()


if __name__ == "__main__":
    sys.exit(main())
