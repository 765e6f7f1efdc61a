from actions.server import SelectiveDomainExecutor


def test_calls_without_a_domain_use_the_last_one_or_an_empty_one() -> None:
    executor = SelectiveDomainExecutor()
    assert executor.update_and_return_domain({}, "action_order_status") == {}
    domain = {"forms": {"order_status_form": {"required_slots": ["order_number"]}}}
    assert (
        executor.update_and_return_domain({"domain": domain}, "validate_order_status_form")
        == domain
    )
    assert executor.update_and_return_domain({}, "action_kb_feedback") == domain
