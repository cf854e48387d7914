"""Node-level features through the SDK: user accounts, remote login, inbound endpoints and network
configuration, VM extensions, and uploading the node's service logs to Azurite."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.batch.models._models import BatchNodeRebootOptions, BatchNodeReimageOptions
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from airflow_batch_provider.testing.azurite import AzuriteServer
from airflow_batch_provider.testing.emulator import BatchEmulatorServer
from tests.emulator.conftest import (
    POLL,
    error_of,
    pool_options,
    sh,
    unique,
    wait_for,
    wait_for_idle_nodes,
    wait_for_task,
)

WINDOWS = m.VirtualMachineConfiguration(
    image_reference=m.BatchVmImageReference(
        publisher="microsoftwindowsserver", offer="windowsserver", sku="2022-datacenter"
    ),
    node_agent_sku_id="batch.node.windows amd64",
)
SUBNET = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.Network/virtualNetworks/vnet/subnets/batch"
)


def nat_pool(
    name: str = "web", backend: int = 8080, start: int = 15000, end: int = 15100, **extra: Any
) -> Any:
    return m.BatchInboundNatPool(
        name=name,
        protocol="tcp",
        backend_port=backend,
        frontend_port_range_start=start,
        frontend_port_range_end=end,
        **extra,
    )


def network(*nat_pools: Any, **extra: Any) -> m.NetworkConfiguration:
    endpoints = m.BatchPoolEndpointConfiguration(inbound_nat_pools=list(nat_pools)) if nat_pools else None
    return m.NetworkConfiguration(endpoint_configuration=endpoints, **extra)


def idle_pool(client: BatchClient, count: int = 1, **overrides: Any) -> tuple[str, list[m.BatchNode]]:
    pool_id = unique("pool")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=count, **overrides))
    return pool_id, wait_for_idle_nodes(client, pool_id, count)


def refused(call: Any, *args: Any) -> tuple[int, str, dict[str, str]]:
    """(status, code, error values) of an SDK call the emulator refuses."""
    with pytest.raises(HttpResponseError) as excinfo:
        call(*args)
    status, code = error_of(excinfo)
    response = excinfo.value.response
    assert response is not None
    values = {item["key"]: item["value"] for item in response.json().get("values", [])}
    return status, code, values


@pytest.fixture(scope="module")
def linux_pool(client: BatchClient) -> tuple[str, str]:
    pool_id, nodes = idle_pool(client)
    return pool_id, nodes[0].id


# ---- node user accounts


def test_node_user_create_replace_delete(client: BatchClient, linux_pool: tuple[str, str]) -> None:
    pool_id, node_id = linux_pool
    user = m.BatchNodeUserCreateOptions(name="BatchPythonSDKUser", password="secret", is_admin=False)
    assert client.create_node_user(pool_id, node_id, user) is None
    assert refused(client.create_node_user, pool_id, node_id, user)[:2] == (409, "NodeUserExists")
    replacement = m.BatchNodeUserReplaceOptions(password="liilef#$DdRGSa_ewkjh")
    assert client.replace_node_user(pool_id, node_id, "batchpythonsdkuser", replacement) is None
    assert client.delete_node_user(pool_id, node_id, "BatchPythonSDKUser") is None
    assert refused(client.delete_node_user, pool_id, node_id, "BatchPythonSDKUser")[:2] == (
        404,
        "NodeUserNotFound",
    )
    assert refused(client.replace_node_user, pool_id, node_id, "nobody", replacement)[:2] == (
        404,
        "NodeUserNotFound",
    )


def test_node_user_with_ssh_key_and_expiry(client: BatchClient, linux_pool: tuple[str, str]) -> None:
    pool_id, node_id = linux_pool
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
    user = m.BatchNodeUserCreateOptions(
        name="deploy", ssh_public_key="ssh-rsa AAAAB3NzaC1yc2E", expiry_time=expiry, is_admin=True
    )
    assert client.create_node_user(pool_id, node_id, user) is None
    client.delete_node_user(pool_id, node_id, "deploy")


@pytest.mark.parametrize(
    ("body", "code", "prop"),
    [
        ({"name": "nopassword"}, "MissingRequiredProperty", "password"),
        ({"password": "secret"}, "MissingRequiredProperty", "name"),
        ({"name": "bad name!", "password": "secret"}, "InvalidPropertyValue", "name"),
        ({"name": "root", "password": "secret"}, "InvalidPropertyValue", "name"),
        (
            {"name": "late", "password": "secret", "expiryTime": "2020-01-01T00:00:00Z"},
            "InvalidPropertyValue",
            "expiryTime",
        ),
    ],
)
def test_node_user_validation_on_linux(
    client: BatchClient, linux_pool: tuple[str, str], body: dict[str, Any], code: str, prop: str
) -> None:
    pool_id, node_id = linux_pool
    status, error_code, values = refused(client.create_node_user, pool_id, node_id, body)
    assert (status, error_code, values["PropertyName"]) == (400, code, prop)


def test_windows_node_users_need_a_password_and_no_ssh_key(client: BatchClient) -> None:
    pool_id, nodes = idle_pool(client, virtual_machine_configuration=WINDOWS)
    node_id = nodes[0].id
    with_key = {"name": "admin1", "password": "Secret#123", "sshPublicKey": "ssh-rsa AAAA"}
    assert refused(client.create_node_user, pool_id, node_id, with_key)[:2] == (400, "InvalidPropertyValue")
    no_password = {"name": "admin1"}
    assert refused(client.create_node_user, pool_id, node_id, no_password)[:2] == (
        400,
        "MissingRequiredProperty",
    )
    too_long = {"name": "a" * 21, "password": "Secret#123"}
    assert refused(client.create_node_user, pool_id, node_id, too_long)[:2] == (400, "InvalidPropertyValue")
    assert client.create_node_user(pool_id, node_id, {"name": "admin1", "password": "Secret#123"}) is None


def test_reimage_removes_node_users_and_reboot_keeps_them(client: BatchClient) -> None:
    pool_id, nodes = idle_pool(client)
    node_id = nodes[0].id
    for name in ("kept", "lost"):
        client.create_node_user(pool_id, node_id, {"name": name, "password": "secret"})
    client.begin_reboot_node(
        pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue"), polling_interval=POLL
    ).result()
    wait_for(lambda: client.get_node(pool_id, node_id).state == "idle")
    client.delete_node_user(pool_id, node_id, "kept")
    client.begin_reimage_node(
        pool_id, node_id, BatchNodeReimageOptions(node_reimage_option="requeue"), polling_interval=POLL
    ).result()
    wait_for(lambda: client.get_node(pool_id, node_id).state == "idle")
    assert refused(client.delete_node_user, pool_id, node_id, "lost")[:2] == (404, "NodeUserNotFound")


def test_node_users_need_a_started_node() -> None:
    with BatchEmulatorServer(step_delay=5) as server:
        client = BatchClient(
            server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key)
        )
        pool_id = unique("pool")
        client.create_pool(pool_options(pool_id))
        node = wait_for(lambda: next(iter(client.list_nodes(pool_id)), None), timeout=10)
        status, code, _ = refused(client.create_node_user, pool_id, node.id, {"name": "u", "password": "p"})
        assert (status, code) == (409, "NodeBeingCreated")


# ---- inbound endpoints and remote login


def test_default_login_endpoint_and_remote_login_on_linux(client: BatchClient) -> None:
    pool_id, nodes = idle_pool(client, count=2)
    by_index = sorted(nodes, key=lambda node: node.endpoint_configuration.inbound_endpoints[0].frontend_port)
    for index, node in enumerate(by_index):
        (ssh,) = node.endpoint_configuration.inbound_endpoints
        assert (ssh.name, ssh.protocol, ssh.backend_port, ssh.frontend_port) == (
            "SSH",
            "tcp",
            22,
            50000 + index,
        )
        settings = client.get_node_remote_login_settings(pool_id, node.id)
        assert isinstance(settings, m.BatchNodeRemoteLoginSettings)
        assert (settings.remote_login_ip_address, settings.remote_login_port) == (
            ssh.public_ip_address,
            ssh.frontend_port,
        )
        assert settings.ipv6_remote_login_ip_address is None
        assert node.ipv6_address is None
    assert by_index[0].endpoint_configuration.inbound_endpoints[0].public_ip_address.startswith("203.0.113.")


def test_windows_nodes_log_in_over_rdp(client: BatchClient) -> None:
    pool_id, nodes = idle_pool(client, virtual_machine_configuration=WINDOWS)
    (rdp,) = nodes[0].endpoint_configuration.inbound_endpoints
    assert (rdp.name, rdp.backend_port) == ("RDP", 3389)
    assert client.get_node_remote_login_settings(pool_id, nodes[0].id).remote_login_port == rdp.frontend_port


def test_nat_pool_endpoints_per_node(client: BatchClient) -> None:
    """As in the SDK's ``test_batch_network_configuration``: NAT pool endpoints first, then SSH."""
    config = network(
        nat_pool("TestEndpointConfig", backend=3389, start=15000, end=15100),
        m.BatchInboundNatPool(
            name="udp-game",
            protocol="udp",
            backend_port=7777,
            frontend_port_range_start=20000,
            frontend_port_range_end=20039,
        ),
        public_ip_address_configuration=m.BatchPublicIpAddressConfiguration(ip_families=["IPv4", "IPv6"]),
    )
    pool_id, nodes = idle_pool(client, count=2, network_configuration=config)
    seen_ports = set()
    for node in nodes:
        endpoints = node.endpoint_configuration.inbound_endpoints
        assert [endpoint.name.split(".")[0] for endpoint in endpoints] == [
            "TestEndpointConfig",
            "udp-game",
            "SSH",
        ]
        web, game, ssh = endpoints
        index = int(web.name.split(".")[1])
        assert game.name == f"udp-game.{index}"
        assert (web.protocol, web.backend_port, web.frontend_port) == ("tcp", 3389, 15000 + index)
        assert (game.protocol, game.backend_port, game.frontend_port) == ("udp", 7777, 20000 + index)
        assert len({endpoint.public_ip_address for endpoint in endpoints}) == 1
        assert web.public_fqdn == ssh.public_fqdn and web.public_fqdn.endswith(".invalid")
        seen_ports.add(web.frontend_port)
        assert node.ipv6_address is not None
        settings = client.get_node_remote_login_settings(pool_id, node.id)
        assert settings.remote_login_port == ssh.frontend_port
        assert settings.ipv6_remote_login_ip_address is not None
        assert settings.ipv6_remote_login_port is not None
    assert seen_ports == {15000, 15001}


def test_nat_pool_on_the_login_port_replaces_the_default_endpoint(client: BatchClient) -> None:
    pool_id, nodes = idle_pool(
        client, network_configuration=network(nat_pool("ssh", backend=22, start=4000, end=4100))
    )
    (ssh,) = nodes[0].endpoint_configuration.inbound_endpoints
    assert (ssh.name, ssh.frontend_port) == ("ssh.0", 4000)
    assert client.get_node_remote_login_settings(pool_id, nodes[0].id).remote_login_port == 4000


def test_removed_node_frees_its_frontend_port(client: BatchClient) -> None:
    pool_id, nodes = idle_pool(client, count=2, network_configuration=network(nat_pool()))
    first = next(
        node for node in nodes if node.endpoint_configuration.inbound_endpoints[0].frontend_port == 15000
    )
    client.begin_remove_nodes(
        pool_id, m.BatchNodeRemoveOptions(node_ids=[first.id]), polling_interval=POLL
    ).result()
    client.begin_resize_pool(
        pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=POLL
    ).result()
    nodes = wait_for_idle_nodes(client, pool_id, 2)
    ports = sorted(node.endpoint_configuration.inbound_endpoints[0].frontend_port for node in nodes)
    assert ports == [15000, 15001]


def test_no_public_ip_addresses_means_no_endpoints_and_no_remote_login(
    emulator_with_subnet: BatchClient,
) -> None:
    client = emulator_with_subnet
    config = network(
        nat_pool(),
        subnet_id=SUBNET,
        public_ip_address_configuration=m.BatchPublicIpAddressConfiguration(
            ip_address_provisioning_type="nopublicipaddresses"
        ),
    )
    pool_id, nodes = idle_pool(client, network_configuration=config)
    assert nodes[0].endpoint_configuration.inbound_endpoints == []
    assert refused(client.get_node_remote_login_settings, pool_id, nodes[0].id)[:2] == (
        409,
        "OperationNotValidOnNode",
    )


def _public_ip(resource: str) -> str:
    return (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
        f"Microsoft.Network/publicIPAddresses/{resource}"
    )


def test_user_managed_public_ips_front_the_nodes(emulator_with_subnet: BatchClient) -> None:
    client = emulator_with_subnet

    def user_managed(*resources: str) -> m.NetworkConfiguration:
        return network(
            subnet_id=SUBNET,
            public_ip_address_configuration=m.BatchPublicIpAddressConfiguration(
                ip_address_provisioning_type="usermanaged", ip_address_ids=[_public_ip(r) for r in resources]
            ),
        )

    addresses = []
    for resources in (("ip-a", "ip-b"), ("ip-a",), ("ip-c",)):
        _, nodes = idle_pool(client, network_configuration=user_managed(*resources))
        (ssh,) = nodes[0].endpoint_configuration.inbound_endpoints
        addresses.append(ssh.public_ip_address)
    assert addresses[0] == addresses[1] != addresses[2]  # the first node sits behind the first address
    status, _, values = refused(
        client.create_pool,
        pool_options(unique("pool"), target_dedicated_nodes=101, network_configuration=user_managed("ip-a")),
    )
    assert (status, values["PropertyName"]) == (
        400,
        "networkConfiguration/publicIPAddressConfiguration/ipAddressIds",
    )


@pytest.mark.parametrize("provision", ["usermanaged", "nopublicipaddresses"])
def test_pools_without_batch_managed_ips_need_a_subnet(
    emulator_with_subnet: BatchClient, provision: str
) -> None:
    config = network(
        public_ip_address_configuration=m.BatchPublicIpAddressConfiguration(
            ip_address_provisioning_type=provision,
            ip_address_ids=[_public_ip("ip-a")] if provision == "usermanaged" else None,
        )
    )
    status, _, values = refused(
        emulator_with_subnet.create_pool, pool_options(unique("pool"), network_configuration=config)
    )
    assert (status, values["PropertyName"]) == (400, "networkConfiguration/subnetId")


# ---- network configuration validation


@pytest.fixture(scope="module")
def emulator_with_subnet() -> Iterator[BatchClient]:
    """An emulator told about one subnet (``known_subnets``), as ``--subnet`` does on the command line."""
    with BatchEmulatorServer(step_delay=0.005, known_subnets=(SUBNET,)) as server:
        yield BatchClient(server.endpoint, AzureNamedKeyCredential(server.account_name, server.account_key))


def test_known_subnet_is_accepted_and_others_are_refused(emulator_with_subnet: BatchClient) -> None:
    client = emulator_with_subnet
    pool_id, _ = idle_pool(client, network_configuration=network(subnet_id=SUBNET.upper()))
    assert client.get_pool(pool_id).network_configuration.subnet_id == SUBNET.upper()
    other = SUBNET.replace("subnets/batch", "subnets/missing")
    status, code, values = refused(
        client.create_pool, pool_options(unique("pool"), network_configuration=network(subnet_id=other))
    )
    assert (status, code, values["PropertyName"]) == (
        400,
        "InvalidPropertyValue",
        "networkConfiguration/subnetId",
    )
    assert "VNet does not exist" in values["Reason"]


def test_cli_subnet_option_reaches_the_settings() -> None:
    from airflow_batch_provider.emulator.cli import build_parser

    args = build_parser().parse_args(["--subnet", SUBNET, "--subnet", SUBNET.replace("batch", "other")])
    assert args.subnet == [SUBNET, SUBNET.replace("batch", "other")]


def test_any_subnet_is_refused_by_an_emulator_that_knows_none(client: BatchClient) -> None:
    status, code, values = refused(
        client.create_pool, pool_options(unique("pool"), network_configuration=network(subnet_id=SUBNET))
    )
    assert (status, code, values["PropertyName"]) == (
        400,
        "InvalidPropertyValue",
        "networkConfiguration/subnetId",
    )


_NAT = "networkConfiguration/endpointConfiguration/inboundNATPools"
_RULE = m.NetworkSecurityGroupRule


@pytest.mark.parametrize(
    ("config", "prop"),
    [
        (network(nat_pool(name="-starts-with-hyphen")), f"{_NAT}[0]/name"),
        (network(nat_pool(name="ends-with-period.")), f"{_NAT}[0]/name"),
        (network(nat_pool(name="x" * 78)), f"{_NAT}[0]/name"),
        (network(nat_pool(), nat_pool(name="WEB", backend=81, start=16000, end=16100)), f"{_NAT}[1]/name"),
        (network(nat_pool(backend=29876)), f"{_NAT}[0]/backendPort"),
        (network(nat_pool(backend=0)), f"{_NAT}[0]/backendPort"),
        (network(nat_pool(), nat_pool(name="b", start=16000, end=16100)), f"{_NAT}[1]/backendPort"),
        (network(nat_pool(start=50010, end=50100)), f"{_NAT}[0]/frontendPortRangeStart"),
        (network(nat_pool(start=49000, end=55000)), f"{_NAT}[0]/frontendPortRangeEnd"),
        (network(nat_pool(start=49000, end=56000)), f"{_NAT}[0]/frontendPortRangeEnd"),
        (network(nat_pool(start=65000, end=65535)), f"{_NAT}[0]/frontendPortRangeEnd"),
        (network(nat_pool(start=15000, end=15038)), f"{_NAT}[0]/frontendPortRangeEnd"),
        (
            network(nat_pool(), nat_pool(name="b", backend=81, start=15050, end=15200)),
            f"{_NAT}[1]/frontendPortRangeStart",
        ),
        (
            network(
                *(
                    nat_pool(name=f"p{i}", backend=1000 + i, start=1000 + 100 * i, end=1099 + 100 * i)
                    for i in range(6)
                )
            ),
            _NAT,
        ),
        (
            network(
                nat_pool(
                    network_security_group_rules=[
                        _RULE(priority=149, access="allow", source_address_prefix="*")
                    ]
                )
            ),
            f"{_NAT}[0]/networkSecurityGroupRules[0]/priority",
        ),
        (
            network(
                nat_pool(
                    network_security_group_rules=[
                        _RULE(priority=4097, access="deny", source_address_prefix="*")
                    ]
                )
            ),
            f"{_NAT}[0]/networkSecurityGroupRules[0]/priority",
        ),
        (
            network(
                nat_pool(
                    network_security_group_rules=[
                        _RULE(priority=200, access="allow", source_address_prefix="*")
                    ]
                ),
                nat_pool(
                    name="b",
                    backend=81,
                    start=16000,
                    end=16100,
                    network_security_group_rules=[
                        _RULE(priority=200, access="deny", source_address_prefix="*")
                    ],
                ),
            ),
            f"{_NAT}[1]/networkSecurityGroupRules[0]/priority",
        ),
        (
            network(
                nat_pool(
                    network_security_group_rules=[
                        _RULE(priority=200, access="maybe", source_address_prefix="*")
                    ]
                )
            ),
            f"{_NAT}[0]/networkSecurityGroupRules[0]/access",
        ),
        (
            network(
                nat_pool(
                    network_security_group_rules=[
                        _RULE(
                            priority=200,
                            access="allow",
                            source_address_prefix="*",
                            source_port_ranges=["100-200", "150"],
                        )
                    ]
                )
            ),
            f"{_NAT}[0]/networkSecurityGroupRules[0]/sourcePortRanges",
        ),
        (
            network(
                public_ip_address_configuration=m.BatchPublicIpAddressConfiguration(
                    ip_address_provisioning_type="usermanaged"
                )
            ),
            "networkConfiguration/publicIPAddressConfiguration/ipAddressIds",
        ),
        (
            network(
                public_ip_address_configuration=m.BatchPublicIpAddressConfiguration(
                    ip_address_provisioning_type="somewhere"
                )
            ),
            "networkConfiguration/publicIPAddressConfiguration/provision",
        ),
        (
            network(
                public_ip_address_configuration=m.BatchPublicIpAddressConfiguration(ip_families=["IPv6"])
            ),
            "networkConfiguration/publicIPAddressConfiguration/ipFamilies",
        ),
    ],
)
def test_network_configuration_is_validated(
    client: BatchClient, config: m.NetworkConfiguration, prop: str
) -> None:
    status, code, values = refused(
        client.create_pool, pool_options(unique("pool"), network_configuration=config)
    )
    assert (status, code) in ((400, "InvalidPropertyValue"), (400, "MissingRequiredProperty"))
    assert values["PropertyName"] == prop


def test_frontend_range_must_hold_every_node(client: BatchClient) -> None:
    small = network(nat_pool(start=15000, end=15039))
    status, code, values = refused(
        client.create_pool,
        pool_options(unique("pool"), target_dedicated_nodes=41, network_configuration=small),
    )
    assert (status, code, values["PropertyName"]) == (
        400,
        "InvalidPropertyValue",
        f"{_NAT}[0]/frontendPortRangeEnd",
    )
    pool_id = unique("pool")
    client.create_pool(pool_options(pool_id, target_dedicated_nodes=0, network_configuration=small))
    status, code, _ = refused(
        client.begin_resize_pool, pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=41)
    )
    assert (status, code) == (400, "InvalidPropertyValue")


# ---- VM extensions


def test_node_extensions_list_the_pools_and_the_agents(client: BatchClient) -> None:
    """As in the SDK's ``test_batch_compute_node_extensions``, plus the instance view."""
    extension = m.VMExtension(
        name="secretext",
        type="KeyVaultForLinux",
        publisher="Microsoft.Azure.KeyVault",
        type_handler_version="1.0",
        auto_upgrade_minor_version=True,
        settings={"pollingIntervalInS": "3600"},
        protected_settings={"token": "do-not-echo"},
    )
    configuration = m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(
            publisher="Canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts"
        ),
        node_agent_sku_id="batch.node.ubuntu 22.04",
        extensions=[extension],
    )
    pool_id, nodes = idle_pool(client, virtual_machine_configuration=configuration)
    node_id = nodes[0].id
    extensions = list(client.list_node_extensions(pool_id, node_id))
    assert [view.vm_extension.name for view in extensions] == ["secretext", "batchNodeExtension"]
    secret = extensions[0]
    assert secret.provisioning_state == "Succeeded"
    assert secret.vm_extension.settings == {"pollingIntervalInS": "3600"}
    assert secret.vm_extension.protected_settings is None
    (status,) = secret.instance_view.statuses
    assert (status.code, status.level, status.display_status) == (
        "ProvisioningState/succeeded",
        "Info",
        "Provisioning succeeded",
    )
    agent = client.get_node_extension(pool_id, node_id, extensions[1].vm_extension.name)
    assert (agent.vm_extension.name, agent.vm_extension.publisher, agent.vm_extension.type) == (
        "batchNodeExtension",
        "Microsoft.Azure.Extensions",
        "CustomScript",
    )
    assert refused(client.get_node_extension, pool_id, node_id, "missing")[:2] == (404, "ExtensionNotFound")


def _with_extensions(*extensions: m.VMExtension) -> m.VirtualMachineConfiguration:
    return m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(
            publisher="canonical", offer="ubuntu-24_04-lts", sku="server"
        ),
        node_agent_sku_id="batch.node.ubuntu 24.04",
        extensions=list(extensions),
    )


@pytest.mark.parametrize(
    ("extensions", "prop"),
    [
        ([{"name": "x", "type": "CustomScript"}], "virtualMachineConfiguration/extensions[0]/publisher"),
        (
            [
                m.VMExtension(name="a", publisher="p", type="t"),
                m.VMExtension(name="A", publisher="p", type="t"),
            ],
            "virtualMachineConfiguration/extensions[1]/name",
        ),
        (
            [m.VMExtension(name="a", publisher="p", type="t", provision_after_extensions=["missing"])],
            "virtualMachineConfiguration/extensions[0]/provisionAfterExtensions",
        ),
    ],
)
def test_pool_extensions_are_validated(client: BatchClient, extensions: list[Any], prop: str) -> None:
    body = pool_options(unique("pool"), virtual_machine_configuration=_with_extensions(*extensions))
    status, _, values = refused(client.create_pool, body)
    assert (status, values["PropertyName"]) == (400, prop)


# ---- service logs


@pytest.fixture(scope="module")
def logs_container(azurite: AzuriteServer) -> tuple[str, str]:
    """A container in Azurite and its write SAS URL."""
    container = unique("logs")
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(container)
    sas = generate_container_sas(
        azurite.account_name,
        container,
        account_key=azurite.account_key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
    )
    return container, f"{azurite.blob_endpoint}/{container}?{sas}"


@pytest.mark.integration
def test_upload_node_logs_to_azurite(
    client: BatchClient, azurite: AzuriteServer, logs_container: tuple[str, str]
) -> None:
    container, container_url = logs_container
    pool_id, nodes = idle_pool(client, start_task=m.BatchStartTask(command_line=sh("exit 0")))
    job_id = unique("job")
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(job_id, m.BatchTaskCreateOptions(id="logged", command_line=sh("exit 0")))
    wait_for_task(client, job_id, "logged")
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=6)
    result = client.upload_node_logs(
        pool_id, nodes[0].id, m.UploadBatchServiceLogsOptions(container_url=container_url, start_time=since)
    )
    assert result.number_of_files_uploaded == 1
    assert result.virtual_directory_name.startswith(f"{pool_id}/{nodes[0].id}/")
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        container
    )
    names = wait_for(
        lambda: [b.name for b in blobs.list_blobs(name_starts_with=result.virtual_directory_name)]
    )
    assert names == [f"{result.virtual_directory_name}/batch-agent.log"]
    text = blobs.download_blob(names[0]).readall().decode()
    assert f"node {nodes[0].id} allocated to pool {pool_id}" in text
    assert f"task {job_id}/logged placed on the node" in text
    assert "start task success, exit code 0" in text


def test_upload_node_logs_outside_the_time_range_uploads_nothing(
    client: BatchClient, linux_pool: tuple[str, str]
) -> None:
    pool_id, node_id = linux_pool
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    result = client.upload_node_logs(
        pool_id,
        node_id,
        m.UploadBatchServiceLogsOptions(
            container_url="https://example.blob.core.windows.net/logs", start_time=later
        ),
    )
    assert result.number_of_files_uploaded == 0


def test_upload_node_logs_answers_before_the_upload_like_the_service(
    client: BatchClient, linux_pool: tuple[str, str]
) -> None:
    """The SDK's ``test_batch_compute_nodes`` names a container that does not exist and gets a count."""
    pool_id, node_id = linux_pool
    result = client.upload_node_logs(
        pool_id,
        node_id,
        m.UploadBatchServiceLogsOptions(
            container_url="https://computecontainer.blob.core.windows.net/",
            start_time=datetime.datetime.utcnow() - datetime.timedelta(minutes=6),
        ),
    )
    assert result.number_of_files_uploaded > 0 and result.virtual_directory_name


@pytest.mark.parametrize(
    ("body", "code", "prop"),
    [
        (
            {"containerUrl": "not a url", "startTime": "2025-01-01T00:00:00Z"},
            "InvalidPropertyValue",
            "containerUrl",
        ),
        (
            {"containerUrl": "ftp://host/c", "startTime": "2025-01-01T00:00:00Z"},
            "InvalidPropertyValue",
            "containerUrl",
        ),
        ({"startTime": "2025-01-01T00:00:00Z"}, "MissingRequiredProperty", "containerUrl"),
        ({"containerUrl": "https://a.blob.core.windows.net/c"}, "MissingRequiredProperty", "startTime"),
        (
            {
                "containerUrl": "https://a.blob.core.windows.net/c",
                "startTime": "2025-01-02T00:00:00Z",
                "endTime": "2025-01-01T00:00:00Z",
            },
            "InvalidPropertyValue",
            "endTime",
        ),
    ],
)
def test_upload_node_logs_validation(
    client: BatchClient, linux_pool: tuple[str, str], body: dict[str, Any], code: str, prop: str
) -> None:
    pool_id, node_id = linux_pool
    status, error_code, values = refused(client.upload_node_logs, pool_id, node_id, body)
    assert (status, error_code, values["PropertyName"]) == (400, code, prop)


def test_bad_container_url_error_hides_the_sas(client: BatchClient, linux_pool: tuple[str, str]) -> None:
    pool_id, node_id = linux_pool
    body = {"containerUrl": "file://host/c?sig=SECRETSIG", "startTime": "2025-01-01T00:00:00Z"}
    with pytest.raises(HttpResponseError) as excinfo:
        client.upload_node_logs(pool_id, node_id, body)
    assert "SECRETSIG" not in excinfo.value.response.text()
