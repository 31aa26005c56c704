"""Which endpoint addresses the engine may call (spec 4.3): unless private endpoints are allowed,
loopback, private, shared (carrier-grade NAT), link-local, site-local, reserved and cloud-metadata
addresses are refused, also when an IPv6 form (IPv4-mapped, 6to4, NAT64) carries them.

docs/engine.md#endpoint-address-policy lists the ranges."""

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata and platform addresses: AWS (IPv4, IPv6), Azure's wire server.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("168.63.129.16"),
}
# Ranges refused beyond what the `ipaddress` flags say.
_REFUSED_NETWORKS = (
    ipaddress.ip_network("100.64.0.0/10"),  # shared address space (carrier-grade NAT; Alibaba's metadata)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, 6to4, NAT64, Teredo client)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _why_refused(address: Address) -> str | None:
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if any(address in network for network in _REFUSED_NETWORKS if network.version == address.version):
        return "a private or reserved address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_private or address.is_reserved or address.is_unspecified or address.is_multicast:
        return "a private or reserved address"
    return None


def refusal(addresses: list[str], allow_private: bool) -> str | None:
    """Why calling these resolved addresses is refused, or None when every one is allowed."""
    if not addresses:
        return "the endpoint host does not resolve"
    if allow_private:
        return None
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        reason = _why_refused(address)
        embedded = _embedded_ipv4(address)
        if reason is None and embedded is not None and _why_refused(embedded):
            reason = f"an IPv6 form of {embedded}, {_why_refused(embedded)}"
        if reason:
            return f"endpoint address {address} is {reason}"
    return None
