"""Pool network configuration: the service's checks, and the endpoints and addresses nodes report.

The emulator has no load balancer and no virtual networks. A pool gets a made-up public address from
the documentation ranges (``203.0.113.0/24``, ``2001:db8::/32``, never routable) and a ``.invalid``
host name; each node gets one frontend port per inbound NAT pool (``frontendPortRangeStart`` plus the
node's index) and the remote login endpoint the service adds (SSH on Linux, RDP on Windows, from port
50000). A ``subnetId`` must be one the emulator was told about (``EmulatorSettings.known_subnets``,
``--subnet``): any other is refused as the service refuses a subnet it cannot find.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow_batch_provider.emulator.errors import BatchError, invalid_property, missing_property
from airflow_batch_provider.emulator.models.base import get_enum, get_int, get_list, get_object, get_str

_PATH = "networkConfiguration"
_NAT_PATH = f"{_PATH}/endpointConfiguration/inboundNATPools"

MAX_NAT_POOLS = 5
MAX_NSG_RULES = 25
MIN_FRONTEND_PORTS = 40
#: Backend ports the node agent uses.
RESERVED_BACKEND_PORTS = (29876, 29877)
#: Frontend ports the service keeps for the remote login endpoints it adds.
RESERVED_FRONTEND_PORTS = (50000, 55000)
NSG_PRIORITIES = (150, 4096)
PROVISIONING_TYPES = ("batchmanaged", "usermanaged", "nopublicipaddresses")
#: Nodes the service places behind one user-managed public IP address, per kind (dedicated or Spot).
NODES_PER_PUBLIC_IP = 100

_NAT_POOL_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,75}[A-Za-z0-9_])?$")
_SUBNET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+"
    r"/subnets/[^/]+$",
    re.IGNORECASE,
)
_PORT_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class LoginEndpoint:
    """The endpoint the service adds on every node for remote login."""

    name: str
    backend_port: int


SSH = LoginEndpoint("SSH", 22)
RDP = LoginEndpoint("RDP", 3389)
#: First frontend port of the added login endpoint; node ``n`` gets ``LOGIN_FRONTEND_PORT + n``.
LOGIN_FRONTEND_PORT = RESERVED_FRONTEND_PORTS[0]


def validate_network(network: Any, known_subnets: Iterable[str], target_nodes: int) -> None:
    """400 for a ``networkConfiguration`` the service refuses, naming the property and the rule."""
    if network is None:
        return
    _validate_subnet(network, known_subnets)
    endpoints = get_object(network, "endpointConfiguration", f"{_PATH}/endpointConfiguration")
    if endpoints is not None:
        _validate_nat_pools(endpoints)
    public_ip = get_object(network, "publicIPAddressConfiguration", f"{_PATH}/publicIPAddressConfiguration")
    if public_ip is not None:
        _validate_public_ip(public_ip)
        provision = provisioning(network)
        if provision != "batchmanaged" and not network.get("subnetId"):
            raise invalid_property(
                f"{_PATH}/subnetId",
                None,
                f"A pool with provision: {provision} must be in a virtual network: set subnetId.",
            )
    check_capacity(network, target_nodes)


def check_capacity(network: dict[str, Any] | None, target_nodes: int) -> None:
    """400 when more nodes are asked for than a NAT pool's frontend range or the public IPs hold."""
    if not network:
        return
    for index, nat_pool in enumerate(nat_pools(network)):
        size = int(nat_pool["frontendPortRangeEnd"]) - int(nat_pool["frontendPortRangeStart"]) + 1
        if target_nodes > size:
            raise invalid_property(
                f"{_NAT_PATH}[{index}]/frontendPortRangeEnd",
                nat_pool["frontendPortRangeEnd"],
                f"The frontend port range holds {size} ports, fewer than the {target_nodes} nodes "
                "requested: each node needs its own frontend port. Widen the range or request fewer nodes.",
            )
    _check_public_ip_capacity(network.get("publicIPAddressConfiguration") or {}, target_nodes)


def _check_public_ip_capacity(public_ip: dict[str, Any], target_nodes: int) -> None:
    if str(public_ip.get("provision", "")).lower() != "usermanaged":
        return
    count = len(public_ip.get("ipAddressIds") or [])
    if target_nodes > NODES_PER_PUBLIC_IP * count:
        raise invalid_property(
            f"{_PATH}/publicIPAddressConfiguration/ipAddressIds",
            count,
            f"{NODES_PER_PUBLIC_IP * count} nodes fit behind these public IP addresses "
            f"({NODES_PER_PUBLIC_IP} each); {target_nodes} were requested. Add public IP addresses or "
            "request fewer nodes.",
        )


def _validate_subnet(network: dict[str, Any], known_subnets: Iterable[str]) -> None:
    subnet_id = get_str(network, "subnetId", f"{_PATH}/subnetId")
    if subnet_id is None:
        return
    if not _SUBNET_ID.match(subnet_id):
        raise invalid_property(
            f"{_PATH}/subnetId",
            subnet_id,
            "The value must be a subnet's resource id: /subscriptions/{subscription}/resourceGroups/{group}"
            "/providers/Microsoft.Network/virtualNetworks/{network}/subnets/{subnet}.",
        )
    if subnet_id.lower() not in {known.lower() for known in known_subnets}:
        raise invalid_property(
            f"{_PATH}/subnetId",
            subnet_id,
            "Either the specified VNet does not exist, or the Batch service does not have access to it. "
            "(The emulator knows only the subnets it was started with: --subnet or known_subnets.)",
        )


def _validate_nat_pools(endpoints: dict[str, Any]) -> None:
    pools = get_list(endpoints, "inboundNATPools", _NAT_PATH)
    if pools is None:
        raise missing_property(_NAT_PATH)
    if len(pools) > MAX_NAT_POOLS:
        raise invalid_property(
            _NAT_PATH, len(pools), f"A pool can have at most {MAX_NAT_POOLS} inbound NAT pools."
        )
    names: set[str] = set()
    backend_ports: set[int] = set()
    ranges: list[tuple[int, int]] = []
    priorities: set[int] = set()
    rule_count = 0
    for index, nat_pool in enumerate(pools):
        path = f"{_NAT_PATH}[{index}]"
        name = _nat_pool_name(nat_pool, path)
        if name.lower() in names:
            raise invalid_property(f"{path}/name", name, "Inbound NAT pool names must be unique in a pool.")
        names.add(name.lower())
        if get_enum(nat_pool, "protocol", ("tcp", "udp"), None, f"{path}/protocol") is None:
            raise missing_property(f"{path}/protocol")
        backend = _required_int(nat_pool, "backendPort", 1, 65535, path)
        if backend in RESERVED_BACKEND_PORTS:
            raise invalid_property(
                f"{path}/backendPort", backend, "Ports 29876 and 29877 are reserved by the Batch service."
            )
        if backend in backend_ports:
            raise invalid_property(f"{path}/backendPort", backend, "Backend ports must be unique in a pool.")
        backend_ports.add(backend)
        start = _required_int(nat_pool, "frontendPortRangeStart", 1, 65534, path)
        end = _required_int(nat_pool, "frontendPortRangeEnd", 1, 65534, path)
        _validate_frontend_range(start, end, ranges, path)
        ranges.append((start, end))
        rules = get_list(nat_pool, "networkSecurityGroupRules", f"{path}/networkSecurityGroupRules") or []
        rule_count += len(rules)
        if rule_count > MAX_NSG_RULES:
            raise invalid_property(
                f"{path}/networkSecurityGroupRules",
                rule_count,
                f"A pool can have at most {MAX_NSG_RULES} network security group rules across its endpoints.",
            )
        for rule_index, rule in enumerate(rules):
            _validate_rule(rule, f"{path}/networkSecurityGroupRules[{rule_index}]", priorities)


def _nat_pool_name(nat_pool: dict[str, Any], path: str) -> str:
    name = get_str(nat_pool, "name", f"{path}/name")
    if not name:
        raise missing_property(f"{path}/name")
    if not _NAT_POOL_NAME.match(name):
        raise invalid_property(
            f"{path}/name",
            name,
            "Names contain letters, numbers, underscores, periods and hyphens, start with a letter or "
            "number, end with a letter, number or underscore, and have at most 77 characters.",
        )
    return name


def _required_int(body: dict[str, Any], name: str, minimum: int, maximum: int, path: str) -> int:
    if body.get(name) is None:
        raise missing_property(f"{path}/{name}")
    return get_int(body, name, 0, minimum, maximum, f"{path}/{name}")


def _validate_frontend_range(start: int, end: int, others: list[tuple[int, int]], path: str) -> None:
    low, high = RESERVED_FRONTEND_PORTS
    for name, port in (("frontendPortRangeStart", start), ("frontendPortRangeEnd", end)):
        if low <= port <= high:
            raise invalid_property(
                f"{path}/{name}", port, f"Ports {low} to {high} are reserved by the Batch service."
            )
    if start <= low and end >= high:
        raise invalid_property(
            f"{path}/frontendPortRangeEnd", end, f"The range must not include ports {low} to {high}."
        )
    if end - start + 1 < MIN_FRONTEND_PORTS:
        raise invalid_property(
            f"{path}/frontendPortRangeEnd",
            end,
            f"A frontend port range must contain at least {MIN_FRONTEND_PORTS} ports.",
        )
    for other_start, other_end in others:
        if start <= other_end and other_start <= end:
            raise invalid_property(
                f"{path}/frontendPortRangeStart",
                start,
                f"The range {start}-{end} overlaps {other_start}-{other_end}; ranges must not overlap.",
            )


def _validate_rule(rule: dict[str, Any], path: str, priorities: set[int]) -> None:
    priority = _required_int(rule, "priority", *NSG_PRIORITIES, path)
    if priority in priorities:
        raise invalid_property(
            f"{path}/priority", priority, "Network security group rule priorities must be unique in a pool."
        )
    priorities.add(priority)
    if get_enum(rule, "access", ("allow", "deny"), None, f"{path}/access") is None:
        raise missing_property(f"{path}/access")
    prefix = get_str(rule, "sourceAddressPrefix", f"{path}/sourceAddressPrefix")
    if not prefix:
        raise missing_property(f"{path}/sourceAddressPrefix")
    if not _valid_source_prefix(prefix):
        raise invalid_property(
            f"{path}/sourceAddressPrefix",
            prefix,
            "Use a single IP address (10.10.10.10), a subnet (192.168.1.0/24), a service tag, or *.",
        )
    ranges: list[tuple[int, int]] = []
    for entry in get_list(rule, "sourcePortRanges", f"{path}/sourcePortRanges") or []:
        low, high = _port_range(entry, f"{path}/sourcePortRanges")
        if any(low <= other_high and other_low <= high for other_low, other_high in ranges):
            raise invalid_property(f"{path}/sourcePortRanges", entry, "Source port ranges must not overlap.")
        ranges.append((low, high))


def _valid_source_prefix(prefix: str) -> bool:
    if prefix == "*":
        return True
    try:
        ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9.]*", prefix))  # a service tag, e.g. VirtualNetwork
    return True


def _port_range(entry: Any, path: str) -> tuple[int, int]:
    if entry == "*":
        return 0, 65535
    match = _PORT_RANGE.match(str(entry))
    if match:
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if low <= high <= 65535:
            return low, high
    raise invalid_property(path, entry, "Use *, a port (22) or a range (100-200) within 0-65535.")


def _validate_public_ip(public_ip: dict[str, Any]) -> None:
    path = f"{_PATH}/publicIPAddressConfiguration"
    provision = get_enum(public_ip, "provision", PROVISIONING_TYPES, "batchmanaged", f"{path}/provision")
    address_ids = get_list(public_ip, "ipAddressIds", f"{path}/ipAddressIds") or []
    if provision == "usermanaged" and not address_ids:
        raise missing_property(f"{path}/ipAddressIds")
    if provision != "usermanaged" and address_ids:
        raise invalid_property(
            f"{path}/ipAddressIds", len(address_ids), "Public IP address ids need provision: usermanaged."
        )
    families = [
        str(family).lower() for family in get_list(public_ip, "ipFamilies", f"{path}/ipFamilies") or []
    ]
    for family in families:
        if family not in ("ipv4", "ipv6"):
            raise invalid_property(f"{path}/ipFamilies", family, "The value must be one of: IPv4, IPv6.")
    if families and "ipv4" not in families:
        raise invalid_property(
            f"{path}/ipFamilies", ",".join(families), "IPv4 is required: use [IPv4] or [IPv4, IPv6]."
        )


def nat_pools(network: dict[str, Any] | None) -> list[dict[str, Any]]:
    endpoints = (network or {}).get("endpointConfiguration") or {}
    return list(endpoints.get("inboundNATPools") or [])


def provisioning(network: dict[str, Any] | None) -> str:
    public_ip = (network or {}).get("publicIPAddressConfiguration") or {}
    return str(public_ip.get("provision") or "batchmanaged").lower()


def dual_stack(network: dict[str, Any] | None) -> bool:
    public_ip = (network or {}).get("publicIPAddressConfiguration") or {}
    return any(str(family).lower() == "ipv6" for family in public_ip.get("ipFamilies") or [])


def login_endpoint(windows: bool) -> LoginEndpoint:
    return RDP if windows else SSH


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@dataclass(frozen=True)
class PublicAddresses:
    """Where a pool's nodes are reached from outside, as the service's load balancer would expose them."""

    ipv4: str
    ipv6: str | None
    fqdn: str

    @classmethod
    def of_node(
        cls, account_name: str, pool_id: str, network: dict[str, Any] | None, node_index: int
    ) -> PublicAddresses | None:
        """Node ``node_index``'s public addresses; ``None`` with ``provision: nopublicipaddresses``.

        Batch-managed: one address per pool. User-managed: the pool's ``ipAddressIds`` in turn, each
        in front of up to 100 nodes.
        """
        provision = provisioning(network)
        if provision == "nopublicipaddresses":
            return None
        source = f"{account_name}/{pool_id.lower()}"
        if provision == "usermanaged":
            address_ids = ((network or {}).get("publicIPAddressConfiguration") or {}).get(
                "ipAddressIds"
            ) or []
            if address_ids:
                source = str(
                    address_ids[min(node_index // NODES_PER_PUBLIC_IP, len(address_ids) - 1)]
                ).lower()
        digest = _digest(source)
        ipv4 = str(ipaddress.IPv4Address("203.0.113.0") + 1 + digest[0] % 254)
        ipv6 = None
        if dual_stack(network):
            ipv6 = str(ipaddress.IPv6Address("2001:db8::") + int.from_bytes(digest[1:9], "big"))
        return cls(ipv4, ipv6, f"dns{digest.hex()[:24]}.{account_name}.batch-emulator.invalid")


def inbound_endpoints(
    addresses: PublicAddresses | None, network: dict[str, Any] | None, windows: bool, node_index: int
) -> list[dict[str, Any]]:
    """The node's ``endpointConfiguration.inboundEndpoints``: one per NAT pool, then the login endpoint."""
    if addresses is None:
        return []
    endpoints = []
    pools = nat_pools(network)
    for nat_pool in pools:
        endpoints.append(
            _endpoint(
                addresses,
                f"{nat_pool['name']}.{node_index}",
                str(nat_pool["protocol"]).lower(),
                int(nat_pool["frontendPortRangeStart"]) + node_index,
                int(nat_pool["backendPort"]),
            )
        )
    login = login_endpoint(windows)
    if all(int(nat_pool["backendPort"]) != login.backend_port for nat_pool in pools):
        endpoints.append(
            _endpoint(addresses, login.name, "tcp", LOGIN_FRONTEND_PORT + node_index, login.backend_port)
        )
    return endpoints


def _endpoint(
    addresses: PublicAddresses, name: str, protocol: str, frontend: int, backend: int
) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": protocol,
        "publicIPAddress": addresses.ipv4,
        "publicFQDN": addresses.fqdn,
        "frontendPort": frontend,
        "backendPort": backend,
    }


def remote_login_settings(
    addresses: PublicAddresses | None, network: dict[str, Any] | None, windows: bool, node_index: int
) -> dict[str, Any]:
    """``remoteLoginIPAddress``/``remoteLoginPort`` (and the IPv6 pair on dual-stack pools)."""
    login = login_endpoint(windows)
    endpoint = next(
        (
            endpoint
            for endpoint in inbound_endpoints(addresses, network, windows, node_index)
            if endpoint["backendPort"] == login.backend_port
        ),
        None,
    )
    if addresses is None or endpoint is None:
        raise BatchError(
            409,
            "OperationNotValidOnNode",
            "The specified operation is not valid on the node.",
            {
                "Reason": "The node has no public IP address (publicIPAddressConfiguration.provision is "
                "nopublicipaddresses): reach it from inside its virtual network instead."
            },
        )
    settings: dict[str, Any] = {
        "remoteLoginIPAddress": endpoint["publicIPAddress"],
        "remoteLoginPort": endpoint["frontendPort"],
    }
    if addresses.ipv6 is not None:
        settings["ipv6RemoteLoginIPAddress"] = addresses.ipv6
        settings["ipv6RemoteLoginPort"] = endpoint["frontendPort"]
    return settings


def private_ipv6(node_number: int) -> str:
    """A node's private IPv6 address on a dual-stack pool (unique-local range)."""
    return str(ipaddress.IPv6Address("fd00:10::") + node_number)
