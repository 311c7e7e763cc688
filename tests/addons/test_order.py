"""The addons' declared order: the shipped one builds, a wrong one is refused at construction."""

from __future__ import annotations

import pytest

from mcpfence.access.exposure import Exposure
from mcpfence.addons.exposure import ExposureAddon
from mcpfence.addons.policy import PolicyAddon, PolicyHolder
from mcpfence.addons.telemetry import TracingAddon, UpstreamTraceAddon
from mcpfence.catalog import ToolCatalog
from mcpfence.pipeline import Pipeline, PipelineOrderError
from mcpfence.policy import PolicySet
from mcpfence.session import SessionMemory
from mcpfence.telemetry import Telemetry


@pytest.fixture
def catalog() -> ToolCatalog:
    return ToolCatalog()


@pytest.fixture
def exposure(catalog: ToolCatalog) -> ExposureAddon:
    return ExposureAddon(Exposure.from_filters(["read"], None, {}), catalog)


@pytest.fixture
def policy(catalog: ToolCatalog) -> PolicyAddon:
    return PolicyAddon(PolicyHolder(PolicySet([], "r1")), catalog, SessionMemory())


def test_the_shipped_order_builds(catalog: ToolCatalog, exposure: ExposureAddon, policy: PolicyAddon) -> None:
    tracing = TracingAddon(Telemetry(), None, lambda: "r1", catalog)
    addons = [tracing, exposure, policy, UpstreamTraceAddon()]
    assert Pipeline(addons).addons == addons


def test_exposure_after_policy_is_refused_naming_both(exposure: ExposureAddon, policy: PolicyAddon) -> None:
    with pytest.raises(PipelineOrderError, match="ExposureAddon must come before PolicyAddon"):
        Pipeline([policy, exposure])


def test_the_upstream_span_before_the_policy_is_refused(policy: PolicyAddon) -> None:
    with pytest.raises(PipelineOrderError, match="PolicyAddon must come before UpstreamTraceAddon"):
        Pipeline([UpstreamTraceAddon(), policy])
