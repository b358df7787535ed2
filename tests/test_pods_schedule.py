"""Scheduling: cost estimates from earlier pods, longest first, and CPUs that pods never share."""

from __future__ import annotations

from pods_helpers import doubling

from saibench_jupyter.pods import specs_of
from saibench_jupyter.pods._schedule import Allocator, estimate, order


def _specs(*modes):
    return [specs_of(s)[0] for s in doubling(*modes)]


def test_estimates_come_from_the_same_scenario_then_its_family():
    a, b = _specs("ok", "slow")
    family_only = specs_of(doubling("raise")[0])[0]
    history = [(a.identity, a.family, 100.0), (a.identity, a.family, 300.0), ("other", a.family, 1000.0)]
    got = estimate([a, b, family_only], history)
    assert got[a.pod] == 200.0  # the median of its own earlier pods
    assert got[b.pod] == 300.0 == got[family_only.pod]  # no history of its own: the family median of all three
    assert estimate([a], [])[a.pod] is None


def test_unknown_costs_go_first_then_longest_first():
    a, b, c = _specs("ok", "slow", "raise")
    assert [s.pod for s in order([a, b, c], {a.pod: 10.0, b.pod: None, c.pod: 50.0})] == [b.pod, c.pod, a.pod]


def test_the_allocator_hands_out_distinct_cpus_and_respects_jobs():
    (spec,) = _specs("ok")
    two = spec.replace(identity="2" * 16, resources={**spec.resources, "cpus": 2})
    one_a, one_b = spec.replace(identity="a" * 16), spec.replace(identity="b" * 16)
    slots = Allocator(jobs=2, cpus=[4, 5])
    assert slots.fits(two)
    assert slots.take(two) == ((4, 5), None)
    assert not slots.fits(one_a)  # both cores are taken
    slots.give_back(two.pod)
    assert slots.take(one_a)[0] == (4,) and slots.take(one_b)[0] == (5,)
    assert not slots.fits(two)
    slots.give_back(one_a.pod)
    assert not slots.fits(two) and slots.fits(spec)  # one core free: enough for a 1-CPU pod only
    # More CPUs than the machine has: capped, so the pod still runs (alone).
    huge = spec.replace(identity="h" * 16, resources={**spec.resources, "cpus": 64})
    assert Allocator(jobs=4, cpus=[0, 1]).take(huge)[0] == (0, 1)


def test_jobs_cap_the_pods_running_at_once():
    a, b = _specs("ok", "slow")
    slots = Allocator(jobs=1, cpus=[0, 1])
    slots.take(a)
    assert not slots.fits(b)
