"""The NetworkPolicy evaluator of tests/k8s/network_policy.py follows the API's semantics, on
hand-made policies: the chart's checks (test_network_policies.py) are only as good as it."""

from __future__ import annotations

from typing import Any

import pytest

from .network_policy import Address, Cluster, Pod, selector_matches

NAMESPACES = {"shop": {"team": "web"}, "db": {"team": "data"}, "monitoring": {}}
WEB = Pod("web", "shop", {"app": "web", "tier": "front"}, {"http": (8080, "TCP")})
API = Pod("api", "shop", {"app": "api", "tier": "back"}, {"http": (9000, "TCP"), "dns": (53, "UDP")})
DB = Pod("db", "db", {"app": "postgres"})
SCRAPER = Pod("prometheus", "monitoring", {"app": "prometheus"})
OUTSIDE = Address("203.0.113.7")


def policy(selector: dict[str, Any], *, namespace: str = "shop", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {"podSelector": selector, **spec},
    }


def cluster(*policies: dict[str, Any]) -> Cluster:
    return Cluster(policies, NAMESPACES, default_namespace="shop")


DENY_ALL = policy({}, policyTypes=["Ingress", "Egress"])


def test_a_pod_no_policy_selects_is_open_both_ways() -> None:
    """Without policies, and for a pod that the policies do not select, everything goes."""
    assert cluster().allows(WEB, API, 1234)
    only_api = cluster(policy({"matchLabels": {"app": "api"}}, policyTypes=["Ingress"]))
    assert only_api.allows(API, WEB, 8080)
    assert only_api.allows(WEB, OUTSIDE, 443)
    assert not only_api.allows(WEB, API, 9000)


def test_a_connection_needs_the_sources_egress_and_the_destinations_ingress() -> None:
    """An egress rule alone, or an ingress rule alone, is not enough once both pods are isolated."""
    egress = policy(
        {"matchLabels": {"app": "web"}},
        policyTypes=["Egress"],
        egress=[{"to": [{"podSelector": {"matchLabels": {"app": "api"}}}]}],
    )
    ingress = policy(
        {"matchLabels": {"app": "api"}},
        policyTypes=["Ingress"],
        ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
    )
    assert not cluster(DENY_ALL, egress).allows(WEB, API, 9000)
    assert not cluster(DENY_ALL, ingress).allows(WEB, API, 9000)
    assert cluster(DENY_ALL, egress, ingress).allows(WEB, API, 9000)


def test_a_selected_pod_may_do_what_any_of_its_policies_allows() -> None:
    """Policies add up: a deny-all and an allow together allow; no order, no deny rule."""
    allow_web = policy(
        {"matchLabels": {"app": "api"}},
        ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 9000}]}],
    )
    allow_outside = policy(
        {"matchLabels": {"app": "api"}}, ingress=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]
    )
    both = cluster(policy({}, policyTypes=["Ingress"]), allow_web, allow_outside)
    assert both.allows(WEB, API, 9000)
    assert both.allows(OUTSIDE, API, 22)
    assert not both.allows(WEB, API, 22)


def test_policy_types_default_to_ingress_plus_egress_when_there_are_egress_rules() -> None:
    """A policy without policyTypes isolates ingress always, egress only if it has egress rules."""
    ingress_only = cluster(policy({}))
    assert not ingress_only.allows(WEB, API, 9000)
    assert ingress_only.allows(WEB, OUTSIDE, 443)
    with_egress = cluster(policy({}, egress=[{"ports": [{"port": 53, "protocol": "UDP"}]}]))
    assert not with_egress.allows(WEB, OUTSIDE, 443)
    assert with_egress.allows(WEB, OUTSIDE, 53, "UDP")


def test_a_rule_without_ports_or_peers_allows_every_port_or_peer() -> None:
    """An absent or empty `ports` is every port; an absent or empty `from`/`to` is every peer."""
    every_port = policy({"matchLabels": {"app": "api"}}, ingress=[{"from": [{"podSelector": {}}]}])
    assert cluster(every_port).allows(WEB, API, 1)
    assert not cluster(every_port).allows(DB, API, 1)  # podSelector alone: the policy's namespace
    every_peer = policy({"matchLabels": {"app": "api"}}, ingress=[{"from": [], "ports": [{"port": 9000}]}])
    assert cluster(every_peer).allows(DB, API, 9000)
    assert cluster(every_peer).allows(OUTSIDE, API, 9000)
    assert not cluster(every_peer).allows(DB, API, 9001)


def test_a_namespace_selector_selects_pods_of_the_namespaces_it_matches() -> None:
    """namespaceSelector alone: every pod there; with a podSelector: the pods it selects there."""
    by_namespace = policy(
        {"matchLabels": {"app": "postgres"}},
        namespace="db",
        ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]}],
    )
    assert cluster(by_namespace).allows(WEB, DB, 5432)
    assert cluster(by_namespace).allows(API, DB, 5432)
    assert not cluster(by_namespace).allows(SCRAPER, DB, 5432)
    both = policy(
        {"matchLabels": {"app": "postgres"}},
        namespace="db",
        ingress=[
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
                        "podSelector": {"matchLabels": {"tier": "back"}},
                    }
                ]
            }
        ],
    )
    assert cluster(both).allows(API, DB, 5432)
    assert not cluster(both).allows(WEB, DB, 5432)
    any_namespace = policy({"matchLabels": {"app": "api"}}, ingress=[{"from": [{"namespaceSelector": {}}]}])
    assert cluster(any_namespace).allows(SCRAPER, API, 9000)
    assert not cluster(any_namespace).allows(OUTSIDE, API, 9000)


def test_match_expressions_take_the_four_operators() -> None:
    """In, NotIn, Exists and DoesNotExist, and-ed with each other and with matchLabels."""
    labels = {"app": "api", "tier": "back"}

    def matches(*expressions: dict[str, Any], **match_labels: str) -> bool:
        return selector_matches({"matchLabels": match_labels, "matchExpressions": list(expressions)}, labels)

    assert matches({"key": "tier", "operator": "In", "values": ["back", "batch"]})
    assert not matches({"key": "tier", "operator": "In", "values": ["front"]})
    assert matches({"key": "tier", "operator": "NotIn", "values": ["front"]})
    assert matches({"key": "zone", "operator": "NotIn", "values": ["a"]})
    assert matches({"key": "app", "operator": "Exists"})
    assert not matches({"key": "zone", "operator": "Exists"})
    assert matches({"key": "zone", "operator": "DoesNotExist"})
    assert not matches({"key": "app", "operator": "Exists"}, app="web")
    assert selector_matches({}, labels) and selector_matches(None, {})
    with pytest.raises(ValueError, match="Gt"):
        matches({"key": "app", "operator": "Gt", "values": ["1"]})


def test_an_ip_block_selects_its_cidr_but_its_exceptions_and_never_a_pod() -> None:
    """ipBlock: the CIDR minus `except`, same IP version only; pods are not matched by address."""
    egress = policy(
        {"matchLabels": {"app": "web"}},
        egress=[{"to": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.0/29"]}}]}],
    )
    checked = cluster(egress)
    assert checked.allows(WEB, Address("203.0.113.200"), 443)
    assert not checked.allows(WEB, OUTSIDE, 443)  # .7 is in the exception
    assert not checked.allows(WEB, Address("198.51.100.1"), 443)
    assert not checked.allows(WEB, Address("2001:db8::1"), 443)
    assert not checked.allows(WEB, API, 9000)
    anywhere = cluster(
        policy({"matchLabels": {"app": "web"}}, egress=[{"to": [{"ipBlock": {"cidr": "::/0"}}]}])
    )
    assert anywhere.allows(WEB, Address("2001:db8::1"), 443)
    assert not anywhere.allows(WEB, OUTSIDE, 443)


def test_ports_match_by_number_range_name_and_protocol() -> None:
    """A numeric port, a range with endPort, a named port of the destination pod; TCP by default."""
    ingress = policy(
        {"matchLabels": {"app": "api"}},
        ingress=[
            {
                "ports": [
                    {"port": "http"},
                    {"port": 30000, "endPort": 30010},
                    {"port": "dns", "protocol": "UDP"},
                    {"protocol": "SCTP"},
                ]
            }
        ],
    )
    checked = cluster(ingress)
    assert checked.allows(WEB, API, 9000)  # `http` is 9000 on the api pod
    assert not checked.allows(WEB, API, 8080)  # ... and 8080 on the web pod, not the destination
    assert checked.allows(WEB, API, 30005)
    assert not checked.allows(WEB, API, 30011)
    assert checked.allows(WEB, API, 53, "UDP")
    assert not checked.allows(WEB, API, 53, "TCP")
    assert not checked.allows(WEB, API, 9000, "UDP")
    assert checked.allows(WEB, API, 7, "SCTP")  # a protocol without a port: all its ports
    named_egress = cluster(policy({"matchLabels": {"app": "web"}}, egress=[{"ports": [{"port": "http"}]}]))
    assert named_egress.allows(WEB, API, 9000)
    assert not named_egress.allows(WEB, OUTSIDE, 9000)  # an address has no named port


def test_a_policy_selects_pods_of_its_own_namespace_only() -> None:
    """A deny-all in `shop` leaves the pods of `db` open."""
    deny_shop = cluster(DENY_ALL)
    assert deny_shop.selecting(DB, "Ingress") == []
    assert deny_shop.allows(SCRAPER, DB, 5432)
    assert not deny_shop.allows(SCRAPER, API, 9000)
