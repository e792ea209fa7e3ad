"""The suite's port picker: ports no kernel allocation can take before their service binds them."""

import socket

from tests.conftest import _ephemeral_ports, _worker_slot, free_ports


def test_ports_are_distinct_bindable_and_below_the_kernels_own_range() -> None:
    index, workers = _worker_slot()
    first, second = free_ports(20), free_ports(20)
    ports = first + second
    assert len(set(ports)) == 40, "a port handed out twice"
    assert all(port < _ephemeral_ports()[0] for port in ports)
    assert all(port % workers == index for port in ports)
    for port in ports:  # free now (nothing of this test binds them)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))
