"""Which endpoint addresses the engine may call (spec 4.3): unless private endpoints are allowed,
loopback, private, link-local and cloud-metadata addresses are refused."""

import ipaddress

_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def refusal(addresses: list[str], allow_private: bool) -> str | None:
    """Why calling these resolved addresses is refused, or None when it is allowed."""
    if not addresses:
        return "the endpoint host does not resolve"
    if allow_private:
        return None
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if address in _METADATA:
            return f"endpoint address {address} is a cloud metadata address"
        if address.is_loopback:
            return f"endpoint address {address} is a loopback address"
        if address.is_link_local:
            return f"endpoint address {address} is a link-local address"
        if address.is_private or address.is_reserved or address.is_unspecified or address.is_multicast:
            return f"endpoint address {address} is a private or reserved address"
    return None
