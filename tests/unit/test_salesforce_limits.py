import pytest

from sftriggerd.salesforce.limits import ApiBudget, ApiUsage, parse_limit_info


@pytest.mark.parametrize(
    "header",
    [
        "api-usage=10018/100000",
        "api-usage=10018/100000; api-bursts=1/750",
        "api-usage=10018/100000; per-app-api-usage=17/250(appName=x)",
    ],
)
def test_both_header_forms(header: str) -> None:
    assert parse_limit_info(header) == ApiUsage(used=10018, limit=100000)


@pytest.mark.parametrize("header", [None, "", "nonsense", "api-usage=a/b"])
def test_unreadable_headers_are_none(header: str | None) -> None:
    assert parse_limit_info(header) is None


def test_budget_allows_up_to_its_share() -> None:
    budget = ApiBudget(0.5)
    assert budget.may_spend(10**9)  # unknown usage: the first answer will tell
    budget.update(ApiUsage(used=400, limit=1000))
    assert budget.may_spend(100)
    assert not budget.may_spend(101)
    assert budget.headroom_ratio == pytest.approx(0.2)


def test_calls_since_the_last_header_count() -> None:
    budget = ApiBudget(0.5)
    budget.update(ApiUsage(used=495, limit=1000))
    for _ in range(5):
        budget.record_call()
    assert not budget.may_spend(1)
    assert budget.headroom_ratio == 0.0
    budget.update(ApiUsage(used=100, limit=1000))
    assert budget.may_spend(1)


def test_usage_over_the_limit_is_allowed_to_show() -> None:
    assert ApiUsage(used=1200, limit=1000).ratio == pytest.approx(1.2)
